/* Process-wide logging with swtpm's --log semantics (fd or file, level filter by
 * leading spaces, prefix). One logger per process: a vtpmd child sets its own. */
#ifndef VTPM_LOG_H
#define VTPM_LOG_H

#include <stdarg.h>

#include "instance/config.h"

/* Apply --log. 0, or -errno if the file cannot be opened / the fd is unusable. */
int log_setup(const struct cfg_log *lc);
/* Log a message; printed iff its count of leading spaces is < level. */
void log_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Hex dump with a title at indentation 1 (shown from level 2 on). */
void log_hexdump(const char *title, const void *buf, size_t len);
/* The fd logs go to (-1 when suppressed); libtpms debug output uses it too. */
int log_get_fd(void);
unsigned log_get_level(void);
const char *log_get_prefix(void);
void log_close(void);

#endif
