/* Unit tests for the `name=value,...` sub-option parser (src/instance/options.c):
 * syntax, every value type with its error messages, lookups and defaults. */
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "instance/options.h"

static const struct opts_desc desc[] = {
	{ "type", OPTS_STRING }, { "path", OPTS_STRING }, { "fd", OPTS_INT },
	{ "level", OPTS_UINT },	 { "flag", OPTS_BOOLEAN }, { "mode", OPTS_MODE },
	{ "uid", OPTS_UID },	 { "gid", OPTS_GID },	   { "fdx", OPTS_STRING },
	{ NULL, 0 },
};

static char err[OPTS_ERRLEN];

/* Parse expecting success. */
static void ok(const char *s, struct opts_result *r)
{
	int ret = opts_parse(s, desc, r, err, sizeof(err));

	cr_assert_eq(ret, 0, "parse of '%s' failed: %d %s", s, ret, err);
	cr_assert_str_empty(err);
}

/* Parse expecting -EINVAL with exactly this message. */
static void bad(const char *s, const char *msg)
{
	struct opts_result r = { (void *)1, 7 };
	int ret = opts_parse(s, desc, &r, err, sizeof(err));

	cr_assert_eq(ret, -EINVAL, "parse of '%s' returned %d", s, ret);
	cr_assert_str_eq(err, msg);
	cr_assert_null(r.vals, "result not emptied on error");
	cr_assert_eq(r.count, 0);
}

Test(options, empty_and_null_strings)
{
	struct opts_result r;

	ok("", &r);
	cr_assert_eq(r.count, 0);
	cr_assert_not(opts_has(&r, "type"));
	opts_free(&r);

	ok(NULL, &r);
	cr_assert_eq(r.count, 0);
	opts_free(&r);

	ok(",,,", &r);
	cr_assert_eq(r.count, 0);
	opts_free(&r);
}

Test(options, empty_fields_skipped)
{
	struct opts_result r;

	ok(",type=tcp,,,path=/x,", &r);
	cr_assert_eq(r.count, 2);
	cr_assert_str_eq(opts_get_string(&r, "type", NULL), "tcp");
	cr_assert_str_eq(opts_get_string(&r, "path", NULL), "/x");
	opts_free(&r);
}

Test(options, bare_name_is_true)
{
	struct opts_result r;

	ok("flag,type", &r);
	cr_assert(opts_get_bool(&r, "flag", false));
	/* a bare string option gets the literal value "true" */
	cr_assert_str_eq(opts_get_string(&r, "type", NULL), "true");
	opts_free(&r);
}

Test(options, empty_value_is_unknown)
{
	bad("type=", "Unknown option 'type='");
	bad("type=tcp,path=", "Unknown option 'path='");
	bad("flag=", "Unknown option 'flag='");
}

Test(options, unknown_names)
{
	bad("foo", "Unknown option 'foo'");
	bad("foo=bar", "Unknown option 'foo=bar'");
	bad("type=tcp,bogus=1,path=/x", "Unknown option 'bogus=1'");
	/* names match exactly: no prefixes, no extensions, case matters */
	bad("typ=tcp", "Unknown option 'typ=tcp'");
	bad("types=tcp", "Unknown option 'types=tcp'");
	bad("Type=tcp", "Unknown option 'Type=tcp'");
	bad("=tcp", "Unknown option '=tcp'");
	bad(" type=tcp", "Unknown option ' type=tcp'");
}

Test(options, similar_names_match_exactly)
{
	struct opts_result r;

	ok("fdx=abc,fd=3", &r);
	cr_assert_str_eq(opts_get_string(&r, "fdx", NULL), "abc");
	cr_assert_eq(opts_get_int(&r, "fd", -1), 3);
	opts_free(&r);
}

Test(options, value_may_contain_equals)
{
	struct opts_result r;

	ok("path=/a=b==c", &r);
	cr_assert_str_eq(opts_get_string(&r, "path", NULL), "/a=b==c");
	opts_free(&r);
}

Test(options, first_occurrence_wins)
{
	struct opts_result r;

	ok("fd=1,fd=2,type=a,type=b", &r);
	cr_assert_eq(r.count, 4, "all occurrences are stored");
	cr_assert_eq(opts_get_int(&r, "fd", -1), 1);
	cr_assert_str_eq(opts_get_string(&r, "type", NULL), "a");
	opts_free(&r);
}

Test(options, every_duplicate_is_validated)
{
	bad("fd=1,fd=x", "invalid number 'x'");
}

Test(options, int_values)
{
	struct opts_result r;

	ok("fd=42", &r);
	cr_assert_eq(opts_get_int(&r, "fd", -1), 42);
	opts_free(&r);
	ok("fd=-7", &r);
	cr_assert_eq(opts_get_int(&r, "fd", 0), -7);
	opts_free(&r);
	ok("fd=2147483647", &r);
	cr_assert_eq(opts_get_int(&r, "fd", 0), 2147483647);
	opts_free(&r);
	ok("fd=-2147483648", &r);
	cr_assert_eq(opts_get_int(&r, "fd", 0), -2147483647 - 1);
	opts_free(&r);
	/* base 10 only: a leading zero is not octal */
	ok("fd=010", &r);
	cr_assert_eq(opts_get_int(&r, "fd", 0), 10);
	opts_free(&r);
}

Test(options, int_errors)
{
	bad("fd", "invalid number 'true'");
	bad("fd=abc", "invalid number 'abc'");
	bad("fd=12x", "invalid number '12x'");
	bad("fd=0x10", "invalid number '0x10'");
	bad("fd=1.5", "invalid number '1.5'");
	bad("fd=-", "invalid number '-'");
	bad("fd=2147483648", "number '2147483648' is outside the valid range");
	bad("fd=-2147483649", "number '-2147483649' is outside the valid range");
	bad("fd=99999999999999999999999", "number '99999999999999999999999' is outside the valid range");
}

Test(options, uint_values)
{
	struct opts_result r;

	ok("level=0", &r);
	cr_assert_eq(opts_get_uint(&r, "level", 9), 0);
	opts_free(&r);
	ok("level=4294967295", &r);
	cr_assert_eq(opts_get_uint(&r, "level", 0), 4294967295u);
	opts_free(&r);

	bad("level=abc", "invalid number 'abc'");
	bad("level=-1", "invalid number '-1'");
	bad("level=4294967296", "invalid number '4294967296'");
	bad("level", "invalid number 'true'");
}

Test(options, boolean_values)
{
	static const struct {
		const char *s;
		bool v;
	} cases[] = {
		{ "flag", true },	 { "flag=true", true },	 { "flag=TRUE", true },
		{ "flag=TrUe", true },	 { "flag=1", true },	 { "flag=false", false },
		{ "flag=0", false },	 { "flag=yes", false },	 { "flag=11", false },
		{ "flag=on", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct opts_result r;

		ok(cases[i].s, &r);
		cr_assert_eq(opts_get_bool(&r, "flag", !cases[i].v), cases[i].v, "%s", cases[i].s);
		opts_free(&r);
	}
}

Test(options, mode_values)
{
	struct opts_result r;

	ok("mode=0777", &r);
	cr_assert_eq(opts_get_mode(&r, "mode", 0), 0777);
	opts_free(&r);
	ok("mode=640", &r); /* always octal */
	cr_assert_eq(opts_get_mode(&r, "mode", 0), 0640);
	opts_free(&r);
	ok("mode=0", &r);
	cr_assert_eq(opts_get_mode(&r, "mode", 0777), 0);
	opts_free(&r);

	bad("mode=01000", "mode 01000 is invalid");
	bad("mode=-1", "mode -1 is invalid");
	bad("mode=0888", "invalid mode type '0888'");
	bad("mode=rw", "invalid mode type 'rw'");
	bad("mode", "invalid mode type 'true'");
	bad("mode=7777777777777777777777777", "mode 7777777777777777777777777 is invalid");
}

Test(options, uid_gid_values)
{
	struct opts_result r;
	struct passwd *pw = getpwnam("root");
	struct group *gr = getgrnam("root");

	cr_assert_not_null(pw);
	cr_assert_not_null(gr);
	ok("uid=root,gid=root", &r);
	cr_assert_eq(opts_get_uid(&r, "uid", 99), pw->pw_uid);
	cr_assert_eq(opts_get_gid(&r, "gid", 99), gr->gr_gid);
	opts_free(&r);

	/* numbers need not exist in the user database */
	ok("uid=123456,gid=654321", &r);
	cr_assert_eq(opts_get_uid(&r, "uid", 0), 123456);
	cr_assert_eq(opts_get_gid(&r, "gid", 0), 654321);
	opts_free(&r);

	ok("uid=4294967295", &r);
	cr_assert_eq(opts_get_uid(&r, "uid", 0), (uid_t)4294967295u);
	opts_free(&r);
}

Test(options, uid_gid_errors)
{
	bad("uid=no-such-user-xyz", "User 'no-such-user-xyz' does not exist.");
	bad("gid=no-such-group-xyz", "Group 'no-such-group-xyz' does not exist.");
	bad("uid", "User 'true' does not exist.");
	bad("uid=-1", "User '-1' does not exist.");
	bad("uid=4294967296", "uid '4294967296' is outside the valid range");
	bad("gid=99999999999999999999999", "gid '99999999999999999999999' is outside the valid range");
}

Test(options, defaults_and_type_mismatch)
{
	struct opts_result r;

	ok("type=tcp,fd=5", &r);
	cr_assert_eq(opts_get_int(&r, "level", -3), -3, "missing option gives default");
	cr_assert_str_eq(opts_get_string(&r, "path", "dflt"), "dflt");
	cr_assert_null(opts_get_string(&r, "path", NULL));
	cr_assert_eq(opts_get_mode(&r, "mode", 0770), 0770);
	cr_assert_eq(opts_get_uid(&r, "uid", 17), 17);
	cr_assert_eq(opts_get_gid(&r, "gid", 18), 18);
	cr_assert_eq(opts_get_uint(&r, "level", 4), 4);
	cr_assert(opts_get_bool(&r, "flag", true));

	/* asking with the wrong type yields the default */
	cr_assert_eq(opts_get_int(&r, "type", -1), -1);
	cr_assert_null(opts_get_string(&r, "fd", NULL));
	cr_assert_not(opts_get_bool(&r, "fd", false));
	/* a name that is not in the table at all */
	cr_assert_eq(opts_get_int(&r, "nonexistent", -9), -9);
	cr_assert_not(opts_has(&r, "nonexistent"));
	cr_assert(opts_has(&r, "type"));
	cr_assert(opts_has(&r, "fd"));
	cr_assert_not(opts_has(&r, "path"));
	opts_free(&r);

	/* NULL result: defaults, no crash */
	cr_assert_eq(opts_get_int(NULL, "fd", 12), 12);
	cr_assert_not(opts_has(NULL, "fd"));
}

Test(options, oversized_values)
{
	size_t n = 100000;
	char *s = malloc(n + 16);
	struct opts_result r;

	cr_assert_not_null(s);
	strcpy(s, "path=");
	memset(s + 5, 'a', n);
	s[5 + n] = '\0';
	ok(s, &r);
	cr_assert_eq(strlen(opts_get_string(&r, "path", "")), n);
	opts_free(&r);

	/* an oversized bad field: the message is cut, never overflowed */
	memcpy(s, "bogus", 5);
	cr_assert_eq(opts_parse(s, desc, &r, err, sizeof(err)), -EINVAL);
	cr_assert_eq(strlen(err), sizeof(err) - 1);
	cr_assert_eq(strncmp(err, "Unknown option 'bogusaaaa", 25), 0);

	/* and a tiny buffer still gets a terminated prefix */
	char small[8];
	cr_assert_eq(opts_parse("x", desc, &r, small, sizeof(small)), -EINVAL);
	cr_assert_str_eq(small, "Unknown");
	free(s);
}

Test(options, no_error_buffer)
{
	struct opts_result r;

	cr_assert_eq(opts_parse("bogus", desc, &r, NULL, 0), -EINVAL);
	cr_assert_eq(opts_parse("fd=3", desc, &r, NULL, 0), 0);
	cr_assert_eq(opts_get_int(&r, "fd", -1), 3);
	opts_free(&r);
}

Test(options, free_is_idempotent)
{
	struct opts_result r;

	ok("type=a", &r);
	opts_free(&r);
	cr_assert_null(r.vals);
	cr_assert_eq(r.count, 0);
	opts_free(&r);
	opts_free(NULL);
}

Test(options, input_not_modified)
{
	char s[] = "type=a,,fd=1";
	struct opts_result r;

	ok(s, &r);
	cr_assert_str_eq(s, "type=a,,fd=1");
	opts_free(&r);
}
