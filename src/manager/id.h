/* Instance ids: the names that become directories under the state root, so they
 * must never escape it (no '/', no '..', no leading '.', bounded length). */
#ifndef VTPM_MGR_ID_H
#define VTPM_MGR_ID_H

#include <stddef.h>

/* Longest id accepted; keeps STATE_ROOT/ID/... well inside PATH_MAX. */
#define MGR_ID_MAX 64

/* 0 if the len bytes at id form a valid instance id, else -EINVAL with *why
 * (if why is not NULL) pointing to a static explanation. Only
 * [A-Za-z0-9._-], 1..MGR_ID_MAX bytes, no leading '.', no NUL inside. */
int mgr_id_check(const char *id, size_t len, const char **why);

#endif
