/* Whole-buffer file I/O: retry on EINTR and short transfers until every byte
 * moved. The state store, the journal, the linear backend, vtpmd's registry
 * and the seccomp precompile's pipe all need exactly this and nothing more. */
#ifndef VTPM_FULLIO_H
#define VTPM_FULLIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* 0, -errno, or -EIO when the file ends (read) or takes nothing (write)
 * before len bytes moved. */
int fio_write_all(int fd, const void *buf, size_t len);
int fio_pwrite_all(int fd, const void *buf, size_t len, off_t off);
int fio_read_all(int fd, void *buf, size_t len);
int fio_pread_all(int fd, void *buf, size_t len, off_t off);

#endif
