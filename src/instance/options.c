/* Generic parser for swtpm's `name=value,name,...` sub-option strings.
 * Values are converted when parsed so that every malformed field is reported
 * up front, whichever options the caller later looks at. */
#include "instance/options.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void opts_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* strtol over the whole string; false if anything is left over or it overflows. */
static bool opts_strtoll(const char *s, int base, long long *out, bool *range)
{
	char *end;
	long val;

	*range = false;
	errno = 0;
	val = strtol(s, &end, base);
	if (end == s || *end != '\0')
		return false;
	if (errno == ERANGE)
		*range = true;
	*out = val;
	return true;
}

static int opts_convert(struct opts_value *v, char *err, size_t errlen)
{
	long long num = 0;
	bool range;

	switch (v->desc->type) {
	case OPTS_STRING:
		return 0;
	case OPTS_INT:
		if (!opts_strtoll(v->raw, 10, &num, &range)) {
			opts_seterr(err, errlen, "invalid number '%s'", v->raw);
			return -EINVAL;
		}
		/* swtpm silently truncates here; a wrapped fd or port number is never
		 * what the user meant, so refuse it instead. */
		if (range || num < INT_MIN || num > INT_MAX) {
			opts_seterr(err, errlen, "number '%s' is outside the valid range", v->raw);
			return -EINVAL;
		}
		v->u.num = num;
		return 0;
	case OPTS_UINT:
		if (!opts_strtoll(v->raw, 10, &num, &range) || range || num < 0 ||
		    num > (long long)UINT_MAX) {
			opts_seterr(err, errlen, "invalid number '%s'", v->raw);
			return -EINVAL;
		}
		v->u.num = num;
		return 0;
	case OPTS_BOOLEAN:
		v->u.boolean = !strcasecmp(v->raw, "true") || !strcmp(v->raw, "1");
		return 0;
	case OPTS_MODE:
		if (!opts_strtoll(v->raw, 8, &num, &range)) {
			opts_seterr(err, errlen, "invalid mode type '%s'", v->raw);
			return -EINVAL;
		}
		if (range || num < 0 || num > 0777) {
			opts_seterr(err, errlen, "mode %s is invalid", v->raw);
			return -EINVAL;
		}
		v->u.mode = (mode_t)num;
		return 0;
	case OPTS_UID:
	case OPTS_GID: {
		bool is_uid = v->desc->type == OPTS_UID;

		/* Only plain digits are a number; anything else is a name, so a
		 * user called "-1" is looked up rather than wrapped to UINT_MAX. */
		if (v->raw[strspn(v->raw, "0123456789")] == '\0') {
			unsigned long long id;

			errno = 0;
			id = strtoull(v->raw, NULL, 10);
			if (errno == ERANGE || id > UINT_MAX) {
				opts_seterr(err, errlen, "%s '%s' is outside the valid range",
					    is_uid ? "uid" : "gid", v->raw);
				return -EINVAL;
			}
			if (is_uid)
				v->u.uid = (uid_t)id;
			else
				v->u.gid = (gid_t)id;
			return 0;
		}
		if (is_uid) {
			struct passwd *pw = getpwnam(v->raw);

			if (!pw) {
				opts_seterr(err, errlen, "User '%s' does not exist.", v->raw);
				return -EINVAL;
			}
			v->u.uid = pw->pw_uid;
		} else {
			struct group *gr = getgrnam(v->raw);

			if (!gr) {
				opts_seterr(err, errlen, "Group '%s' does not exist.", v->raw);
				return -EINVAL;
			}
			v->u.gid = gr->gr_gid;
		}
		return 0;
	}
	}
	opts_seterr(err, errlen, "internal error: bad option type");
	return -EINVAL;
}

/* Match one field against the table: `name` alone or `name=<non-empty>`. */
static const struct opts_desc *opts_match(const struct opts_desc *descs, const char *field,
					  const char **value)
{
	for (const struct opts_desc *d = descs; d->name; d++) {
		size_t len = strlen(d->name);

		if (strncmp(field, d->name, len) != 0)
			continue;
		if (field[len] == '\0') {
			*value = "true";
			return d;
		}
		if (field[len] == '=' && field[len + 1] != '\0') {
			*value = field + len + 1;
			return d;
		}
	}
	return NULL;
}

int opts_parse(const char *str, const struct opts_desc *descs, struct opts_result *res,
	       char *err, size_t errlen)
{
	char *copy = NULL, *field, *save = NULL;
	int ret = 0;

	res->vals = NULL;
	res->count = 0;
	if (err && errlen)
		err[0] = '\0';

	copy = strdup(str ? str : "");
	if (!copy) {
		ret = -ENOMEM;
		goto out;
	}

	/* strtok_r skips empty fields, which is exactly the accepted syntax. */
	for (field = strtok_r(copy, ",", &save); field; field = strtok_r(NULL, ",", &save)) {
		const struct opts_desc *d;
		const char *value = NULL;
		struct opts_value *nv;
		char *raw;

		d = opts_match(descs, field, &value);
		if (!d) {
			opts_seterr(err, errlen, "Unknown option '%s'", field);
			ret = -EINVAL;
			goto out;
		}
		raw = strdup(value);
		if (!raw) {
			ret = -ENOMEM;
			goto out;
		}
		nv = realloc(res->vals, (res->count + 1) * sizeof(*nv));
		if (!nv) {
			free(raw);
			ret = -ENOMEM;
			goto out;
		}
		res->vals = nv;
		nv = &res->vals[res->count++];
		*nv = (struct opts_value){ .desc = d, .raw = raw };
		ret = opts_convert(nv, err, errlen);
		if (ret < 0)
			goto out;
	}

out:
	if (ret == -ENOMEM)
		opts_seterr(err, errlen, "Out of memory");
	if (ret < 0)
		opts_free(res);
	free(copy);
	return ret;
}

void opts_free(struct opts_result *res)
{
	if (!res)
		return;
	for (size_t i = 0; i < res->count; i++)
		free(res->vals[i].raw);
	free(res->vals);
	res->vals = NULL;
	res->count = 0;
}

static const struct opts_value *opts_find(const struct opts_result *res, const char *name,
					  enum opts_type type)
{
	if (!res || !name)
		return NULL;
	for (size_t i = 0; i < res->count; i++) {
		const struct opts_value *v = &res->vals[i];

		if (strcmp(v->desc->name, name) != 0)
			continue;
		/* The first occurrence decides, even if the caller asked for the
		 * wrong type: a type mismatch is a programming error, not a cue
		 * to look further. */
		return v->desc->type == type ? v : NULL;
	}
	return NULL;
}

bool opts_has(const struct opts_result *res, const char *name)
{
	if (!res || !name)
		return false;
	for (size_t i = 0; i < res->count; i++)
		if (!strcmp(res->vals[i].desc->name, name))
			return true;
	return false;
}

const char *opts_get_string(const struct opts_result *res, const char *name, const char *def)
{
	const struct opts_value *v = opts_find(res, name, OPTS_STRING);

	return v ? v->raw : def;
}

int opts_get_int(const struct opts_result *res, const char *name, int def)
{
	const struct opts_value *v = opts_find(res, name, OPTS_INT);

	return v ? (int)v->u.num : def;
}

unsigned int opts_get_uint(const struct opts_result *res, const char *name, unsigned int def)
{
	const struct opts_value *v = opts_find(res, name, OPTS_UINT);

	return v ? (unsigned int)v->u.num : def;
}

bool opts_get_bool(const struct opts_result *res, const char *name, bool def)
{
	const struct opts_value *v = opts_find(res, name, OPTS_BOOLEAN);

	return v ? v->u.boolean : def;
}

mode_t opts_get_mode(const struct opts_result *res, const char *name, mode_t def)
{
	const struct opts_value *v = opts_find(res, name, OPTS_MODE);

	return v ? v->u.mode : def;
}

uid_t opts_get_uid(const struct opts_result *res, const char *name, uid_t def)
{
	const struct opts_value *v = opts_find(res, name, OPTS_UID);

	return v ? v->u.uid : def;
}

gid_t opts_get_gid(const struct opts_result *res, const char *name, gid_t def)
{
	const struct opts_value *v = opts_find(res, name, OPTS_GID);

	return v ? v->u.gid : def;
}
