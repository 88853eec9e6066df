/* Generic parser for swtpm's `name=value,name,...` sub-option strings (--ctrl,
 * --server, --log, ...): a descriptor table in, typed values out. */
#ifndef VTPM_OPTIONS_H
#define VTPM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum opts_type {
	OPTS_STRING = 0,
	OPTS_INT,     /* strtol base 10, whole string, must fit an int */
	OPTS_UINT,    /* strtol base 10, whole string, 0..UINT_MAX */
	OPTS_BOOLEAN, /* "true"/"1" (any case) -> true, anything else -> false */
	OPTS_MODE,    /* strtol base 8, <= 0777 */
	OPTS_UID,     /* decimal or user name (getpwnam) */
	OPTS_GID,     /* decimal or group name (getgrnam) */
};

/* One accepted option; a table ends with { NULL, 0 }. */
struct opts_desc {
	const char *name;
	enum opts_type type;
};

/* One field of the parsed string, already converted to its type. */
struct opts_value {
	const struct opts_desc *desc;
	char *raw; /* the value text ("true" for a bare name) */
	union {
		long long num; /* INT, UINT */
		bool boolean;
		mode_t mode;
		uid_t uid;
		gid_t gid;
	} u;
};

struct opts_result {
	struct opts_value *vals; /* in the order given; lookups take the first */
	size_t count;
};

/* Size that always holds an error message for a value of reasonable length;
 * longer messages are truncated, never overflowed. */
#define OPTS_ERRLEN 512

/* Format an error message into a caller's buffer (NULL or 0 bytes: dropped);
 * shared by every parser that reports through (err, errlen). */
void opts_seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parse `str` against `descs`. On success fills `res` (release with
 * opts_free) and returns 0. On failure returns -EINVAL (syntax/value error,
 * message in `err`) or -ENOMEM, and `res` is left empty. `str` NULL is treated
 * as "". */
int opts_parse(const char *str, const struct opts_desc *descs, struct opts_result *res,
	       char *err, size_t errlen);
void opts_free(struct opts_result *res);

/* Lookups by name. A missing option, or asking with the wrong type, yields the
 * default. The first occurrence of a repeated name wins. */
bool opts_has(const struct opts_result *res, const char *name);
const char *opts_get_string(const struct opts_result *res, const char *name, const char *def);
int opts_get_int(const struct opts_result *res, const char *name, int def);
unsigned int opts_get_uint(const struct opts_result *res, const char *name, unsigned int def);
bool opts_get_bool(const struct opts_result *res, const char *name, bool def);
mode_t opts_get_mode(const struct opts_result *res, const char *name, mode_t def);
uid_t opts_get_uid(const struct opts_result *res, const char *name, uid_t def);
gid_t opts_get_gid(const struct opts_result *res, const char *name, gid_t def);

#endif
