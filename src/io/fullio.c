/* Whole-buffer file I/O (see fullio.h). */
#include <errno.h>
#include <unistd.h>

#include "io/fullio.h"

/* off < 0: write() at the file position; else pwrite() at off. */
static int fio_out(int fd, const uint8_t *p, size_t len, off_t off)
{
	while (len) {
		ssize_t n = off < 0 ? write(fd, p, len) : pwrite(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		if (off >= 0)
			off += n;
	}
	return 0;
}

int fio_write_all(int fd, const void *buf, size_t len)
{
	return fio_out(fd, buf, len, -1);
}

int fio_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	return off < 0 ? -EINVAL : fio_out(fd, buf, len, off);
}

/* off < 0: read() at the file position (pipes too); else pread() at off. */
static int fio_in(int fd, uint8_t *p, size_t len, off_t off)
{
	while (len) {
		ssize_t n = off < 0 ? read(fd, p, len) : pread(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* shorter than the caller knows it must be */
		p += n;
		len -= (size_t)n;
		if (off >= 0)
			off += n;
	}
	return 0;
}

int fio_read_all(int fd, void *buf, size_t len)
{
	return fio_in(fd, buf, len, -1);
}

int fio_pread_all(int fd, void *buf, size_t len, off_t off)
{
	return off < 0 ? -EINVAL : fio_in(fd, buf, len, off);
}
