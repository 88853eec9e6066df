/* Fuzz target: instance ids (src/manager/id.h), which become directory names
 * under the state root. Checks the verdict against an independent statement
 * of the rule, and that an accepted id can never leave the directory. */
#include <errno.h>

#include "fuzz_common.h"
#include "manager/id.h"

static bool ref_ok(const char *id, size_t len)
{
	if (len == 0 || len > MGR_ID_MAX || id[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = "unset";
	char *id = (char *)fuzz_dup(data, size);
	int r = mgr_id_check(id, size, &why);

	FUZZ_CHECK(r == 0 || r == -EINVAL);
	FUZZ_CHECK((r == 0) == ref_ok(id, size));
	if (r == 0) {
		FUZZ_CHECK(why == NULL);
		FUZZ_CHECK(memchr(id, '/', size) == NULL && memchr(id, '\0', size) == NULL);
		FUZZ_CHECK(!(size == 1 && id[0] == '.') && !(size == 2 && !memcmp(id, "..", 2)));
	} else {
		FUZZ_CHECK(why != NULL && why[0] != '\0');
	}
	/* NULL why is allowed */
	FUZZ_CHECK(mgr_id_check(id, size, NULL) == r);
	free(id);
	return 0;
}
