/* Process-wide logging with swtpm's --log semantics (fd or file, level filter by
 * leading spaces, prefix). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "instance/log.h"

static int log_fd = STDERR_FILENO;
static unsigned log_level = 1;
static char log_prefix[128] = "swtpm: ";

int log_setup(const struct cfg_log *lc)
{
	int fd;

	if (!lc->given)
		return 0;
	/* swtpm drops its default prefix as soon as any --log is given. */
	snprintf(log_prefix, sizeof(log_prefix), "%s", lc->prefix ? lc->prefix : "");
	log_level = lc->level ? lc->level : 1;
	if (lc->file) {
		if (strcmp(lc->file, "-") == 0) {
			log_fd = -1;
			return 0;
		}
		fd = open(lc->file,
			  O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
				  (lc->truncate ? O_TRUNC : O_APPEND),
			  0600);
		if (fd < 0)
			return -errno;
		log_fd = fd;
	} else if (lc->fd >= 0) {
		if (fcntl(lc->fd, F_GETFL) < 0)
			return -errno;
		log_fd = lc->fd;
	}
	return 0;
}

static unsigned log_indent(const char *s)
{
	unsigned n = 0;

	while (s[n] == ' ')
		n++;
	return n;
}

static void log_write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(log_fd, buf, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += w;
		len -= (size_t)w;
	}
}

void log_printf(const char *fmt, ...)
{
	char buf[2048];
	size_t plen;
	va_list ap;
	int n;

	if (log_fd < 0)
		return;
	plen = strlen(log_prefix);
	memcpy(buf, log_prefix, plen);
	va_start(ap, fmt);
	n = vsnprintf(buf + plen, sizeof(buf) - plen, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	if (log_indent(buf + plen) >= log_level)
		return;
	if ((size_t)n >= sizeof(buf) - plen)
		n = (int)(sizeof(buf) - plen - 1);
	log_write_all(buf, plen + (size_t)n);
}

void log_hexdump(const char *title, const void *data, size_t len)
{
	const unsigned char *p = data;
	char line[16 * 3 + 4];
	size_t i, o = 0;

	if (log_fd < 0 || log_level < 2)
		return;
	log_printf(" %s: length %zu\n", title, len);
	if (len > 1024)
		len = 1024;
	for (i = 0; i < len; i++) {
		if (o == 0)
			line[o++] = ' ';
		o += (size_t)snprintf(line + o, sizeof(line) - o, "%02X ", p[i]);
		if ((i & 15) == 15 || i + 1 == len) {
			log_printf("%s\n", line);
			o = 0;
		}
	}
}

int log_get_fd(void)
{
	return log_fd;
}

unsigned log_get_level(void)
{
	return log_level;
}

const char *log_get_prefix(void)
{
	return log_prefix;
}

void log_close(void)
{
	if (log_fd > STDERR_FILENO)
		close(log_fd);
	log_fd = STDERR_FILENO;
}
