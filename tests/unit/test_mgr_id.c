/* Unit tests for vtpmd instance ids (src/manager/id.c): every way an id could
 * escape the state root or confuse a reader must be refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "manager/id.h"

static int check(const char *s)
{
	return mgr_id_check(s, s ? strlen(s) : 0, NULL);
}

Test(mgr_id, valid_ids)
{
	static const char *const ok[] = { "a", "vm1", "VM-1", "a.b", "a..b", "x_y-z.0", "9",
					  "a.", "-", "_" };
	char max[MGR_ID_MAX + 1];
	const char *why = "unset";

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		cr_expect_eq(check(ok[i]), 0, "'%s' should be valid", ok[i]);
	memset(max, 'x', MGR_ID_MAX);
	max[MGR_ID_MAX] = '\0';
	cr_expect_eq(mgr_id_check(max, MGR_ID_MAX, &why), 0);
	cr_expect_null(why, "why is cleared on success");
}

Test(mgr_id, empty_and_null)
{
	const char *why = NULL;

	cr_expect_eq(mgr_id_check("", 0, &why), -EINVAL);
	cr_expect_not_null(why);
	cr_expect_eq(mgr_id_check(NULL, 3, &why), -EINVAL);
}

Test(mgr_id, dots_and_hidden)
{
	static const char *const bad[] = { ".", "..", ".hidden", ".lock", "..x" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(check(bad[i]), -EINVAL, "'%s' must be refused", bad[i]);
}

Test(mgr_id, separators_and_specials)
{
	static const char *const bad[] = { "a/b", "/abs", "a/", "../x", "a b", "a\tb", "a\nb",
					   "a\\b", "a:b", "a,b", "a*", "$x", "é", "a\x7f", "a=b" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(check(bad[i]), -EINVAL, "'%s' must be refused", bad[i]);
}

Test(mgr_id, embedded_nul)
{
	const char *why = NULL;

	cr_expect_eq(mgr_id_check("a\0b", 3, &why), -EINVAL);
	cr_expect(why && strstr(why, "NUL"), "the reason names the NUL");
}

Test(mgr_id, too_long)
{
	char s[MGR_ID_MAX + 2];
	const char *why = NULL;

	memset(s, 'a', sizeof(s) - 1);
	s[sizeof(s) - 1] = '\0';
	cr_expect_eq(mgr_id_check(s, MGR_ID_MAX + 1, &why), -EINVAL);
	cr_expect(why && strstr(why, "64"));
	/* the length given is what counts, not strlen */
	cr_expect_eq(mgr_id_check(s, MGR_ID_MAX, NULL), 0);
}
