/* Instance id validation. An id is used verbatim as a directory name under the
 * state root and in log lines, so the rule is an allow-list, not a deny-list. */
#include <errno.h>

#include "manager/id.h"

static int id_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

int mgr_id_check(const char *id, size_t len, const char **why)
{
	const char *dummy;
	size_t i;

	if (!why)
		why = &dummy;
	if (!id || len == 0) {
		*why = "the id is empty";
		return -EINVAL;
	}
	if (len > MGR_ID_MAX) {
		*why = "the id is longer than 64 characters";
		return -EINVAL;
	}
	/* A leading dot covers ".", ".." and hidden names such as our ".lock". */
	if (id[0] == '.') {
		*why = "the id must not start with '.'";
		return -EINVAL;
	}
	for (i = 0; i < len; i++) {
		if (id[i] == '\0') {
			*why = "the id contains a NUL character";
			return -EINVAL;
		}
		if (!id_char_ok(id[i])) {
			*why = "the id may only contain the characters A-Z a-z 0-9 . _ -";
			return -EINVAL;
		}
	}
	*why = NULL;
	return 0;
}
