/* Fuzz target: swtpm's sub-option strings (src/instance/options.h), e.g.
 * "type=unixio,path=/run/x.sock,mode=0600", against the descriptor tables of
 * the real command line (--server, --ctrl, --tpmstate, --log, --flags, ...).
 * Byte 0 picks the table; the rest is the option string (up to a NUL).
 * Checks: a parse either fails with a message or yields typed values within
 * their ranges; "name=raw" joined with ',' parses back to the same values; the
 * typed getters agree with the parsed values. */
#include <errno.h>
#include <limits.h>

#include "fuzz_common.h"
#include "instance/options.h"

/* The tables of src/instance/cli.c (static there). */
static const struct opts_desc server_desc[] = {
	{ "type", OPTS_STRING },   { "port", OPTS_INT },  { "bindaddr", OPTS_STRING },
	{ "ifname", OPTS_STRING }, { "fd", OPTS_INT },	  { "disconnect", OPTS_BOOLEAN },
	{ "path", OPTS_STRING },   { "mode", OPTS_MODE }, { "uid", OPTS_UID },
	{ "gid", OPTS_GID },	   { NULL, 0 },
};
static const struct opts_desc ctrl_desc[] = {
	{ "type", OPTS_STRING },     { "path", OPTS_STRING },	    { "port", OPTS_INT },
	{ "bindaddr", OPTS_STRING }, { "ifname", OPTS_STRING },	    { "fd", OPTS_INT },
	{ "clientfd", OPTS_INT },    { "mode", OPTS_MODE },	    { "uid", OPTS_UID },
	{ "gid", OPTS_GID },	     { "terminate", OPTS_BOOLEAN }, { NULL, 0 },
};
static const struct opts_desc tpmstate_desc[] = {
	{ "dir", OPTS_STRING }, { "backend-uri", OPTS_STRING }, { "mode", OPTS_MODE },
	{ "lock", OPTS_BOOLEAN }, { NULL, 0 },
};
static const struct opts_desc log_desc[] = {
	{ "file", OPTS_STRING },   { "fd", OPTS_INT },		{ "level", OPTS_UINT },
	{ "prefix", OPTS_STRING }, { "truncate", OPTS_BOOLEAN }, { NULL, 0 },
};
static const struct opts_desc flags_desc[] = {
	{ "not-need-init", OPTS_BOOLEAN },	 { "startup-clear", OPTS_BOOLEAN },
	{ "startup-state", OPTS_BOOLEAN },	 { "startup-deactivated", OPTS_BOOLEAN },
	{ "startup-none", OPTS_BOOLEAN },	 { "disable-auto-shutdown", OPTS_BOOLEAN },
	{ NULL, 0 },
};
static const struct opts_desc key_desc[] = {
	{ "file", OPTS_STRING }, { "fd", OPTS_INT },	 { "pwdfile", OPTS_STRING },
	{ "pwdfd", OPTS_INT },	 { "mode", OPTS_STRING }, { "format", OPTS_STRING },
	{ "kdf", OPTS_STRING },	 { "remove", OPTS_BOOLEAN }, { NULL, 0 },
};
static const struct opts_desc misc_desc[] = {
	{ "reject-locality-4", OPTS_BOOLEAN },
	{ "allow-set-locality", OPTS_BOOLEAN },
	{ "incoming", OPTS_BOOLEAN },
	{ "release-lock-outgoing", OPTS_BOOLEAN },
	{ "action", OPTS_STRING },
	{ NULL, 0 },
};
static const struct opts_desc *const tables[] = {
	server_desc, ctrl_desc, tpmstate_desc, log_desc, flags_desc, key_desc, misc_desc,
};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))

static bool in_table(const struct opts_desc *descs, const struct opts_desc *d)
{
	for (const struct opts_desc *p = descs; p->name; p++)
		if (p == d)
			return true;
	return false;
}

static void check_value(const struct opts_value *v)
{
	FUZZ_CHECK(v->raw != NULL && v->raw[0] != '\0');
	FUZZ_CHECK(strchr(v->raw, ',') == NULL);
	switch (v->desc->type) {
	case OPTS_INT:
		FUZZ_CHECK(v->u.num >= INT_MIN && v->u.num <= INT_MAX);
		break;
	case OPTS_UINT:
		FUZZ_CHECK(v->u.num >= 0 && v->u.num <= (long long)UINT_MAX);
		break;
	case OPTS_MODE:
		FUZZ_CHECK(v->u.mode <= 0777);
		break;
	default:
		break;
	}
}

static bool same_value(const struct opts_value *a, const struct opts_value *b)
{
	if (a->desc != b->desc || strcmp(a->raw, b->raw) != 0)
		return false;
	switch (a->desc->type) {
	case OPTS_INT:
	case OPTS_UINT:
		return a->u.num == b->u.num;
	case OPTS_BOOLEAN:
		return a->u.boolean == b->u.boolean;
	case OPTS_MODE:
		return a->u.mode == b->u.mode;
	case OPTS_UID:
		return a->u.uid == b->u.uid;
	case OPTS_GID:
		return a->u.gid == b->u.gid;
	default:
		return true;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct opts_result res, res2;
	const struct opts_desc *descs;
	char err[OPTS_ERRLEN], *str, *joined;
	size_t jlen = 0;
	int r;

	if (size < 1)
		return 0;
	descs = tables[data[0] % NTABLES];
	str = fuzz_strdup(data + 1, size - 1);

	memset(err, 'x', sizeof(err));
	r = opts_parse(str, descs, &res, err, sizeof(err));
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL);
		FUZZ_CHECK(res.vals == NULL && res.count == 0);
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
		opts_free(&res);
		free(str);
		return 0;
	}
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(err[0] == '\0');
	for (size_t i = 0; i < res.count; i++) {
		FUZZ_CHECK(in_table(descs, res.vals[i].desc));
		check_value(&res.vals[i]);
		jlen += strlen(res.vals[i].desc->name) + 1 + strlen(res.vals[i].raw) + 1;
	}

	/* the getters return the first occurrence */
	for (const struct opts_desc *d = descs; d->name; d++) {
		const struct opts_value *first = NULL;

		for (size_t i = 0; i < res.count && !first; i++)
			if (res.vals[i].desc == d)
				first = &res.vals[i];
		FUZZ_CHECK(opts_has(&res, d->name) == (first != NULL));
		if (!first)
			continue;
		switch (d->type) {
		case OPTS_STRING:
			FUZZ_CHECK(opts_get_string(&res, d->name, NULL) == first->raw);
			break;
		case OPTS_INT:
			FUZZ_CHECK(opts_get_int(&res, d->name, -7) == (int)first->u.num);
			break;
		case OPTS_UINT:
			FUZZ_CHECK(opts_get_uint(&res, d->name, 7) == (unsigned int)first->u.num);
			break;
		case OPTS_BOOLEAN:
			FUZZ_CHECK(opts_get_bool(&res, d->name, !first->u.boolean) ==
				   first->u.boolean);
			break;
		case OPTS_MODE:
			FUZZ_CHECK(opts_get_mode(&res, d->name, 01000) == first->u.mode);
			break;
		case OPTS_UID:
			FUZZ_CHECK(opts_get_uid(&res, d->name, 12345) == first->u.uid);
			break;
		case OPTS_GID:
			FUZZ_CHECK(opts_get_gid(&res, d->name, 12345) == first->u.gid);
			break;
		}
	}

	/* parse -> print -> parse */
	joined = calloc(1, jlen + 1);
	if (!joined)
		abort();
	for (size_t i = 0; i < res.count; i++) {
		if (i)
			strcat(joined, ",");
		strcat(joined, res.vals[i].desc->name);
		strcat(joined, "=");
		strcat(joined, res.vals[i].raw);
	}
	r = opts_parse(joined, descs, &res2, err, sizeof(err));
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(res2.count == res.count);
	for (size_t i = 0; i < res.count; i++)
		FUZZ_CHECK(same_value(&res.vals[i], &res2.vals[i]));
	opts_free(&res2);
	free(joined);
	opts_free(&res);
	FUZZ_CHECK(res.vals == NULL && res.count == 0);
	free(str);
	return 0;
}
