/* Registry persistence: config.json and the pid file per instance, their
 * parsers (bounds-checked, unit-tested) and the /proc identity of a child. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <liburing.h>

#include "io/fullio.h"
#include "manager/registry.h"

#define REG_RMTREE_DEPTH 32

static const char *const reg_state_names[] = {
	[REG_STOPPED] = "stopped",
	[REG_RUNNING] = "running",
	[REG_FAILED] = "failed",
};

const char *reg_state_name(enum reg_state s)
{
	if ((unsigned)s >= sizeof(reg_state_names) / sizeof(reg_state_names[0]))
		return "?";
	return reg_state_names[s];
}

int reg_path(char *buf, size_t size, const char *root, const char *id, const char *leaf)
{
	int n;

	if (leaf)
		n = snprintf(buf, size, "%s/%s/%s", root, id, leaf);
	else
		n = snprintf(buf, size, "%s/%s", root, id);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

/* ---- small file helpers ---- */

static int reg_read_small(int dirfd, const char *name, size_t max, char **out, size_t *lenp)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t r;
	int fd, ret;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		goto out;
	}
	if ((size_t)st.st_size > max) {
		ret = -EFBIG;
		goto out;
	}
	buf = malloc(max + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	/* Read up to max + 1 so that a file growing under us is still caught. */
	while (len <= max) {
		r = read(fd, buf + len, max + 1 - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > max) {
		ret = -EFBIG;
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*lenp = len;
	buf = NULL;
	ret = 0;
out:
	free(buf);
	close(fd);
	return ret;
}

/* Replace dir/name atomically. durable: fsync the file and the directory,
 * for data that must survive a power cut (config.json); the pid file only
 * describes a live process, which a power cut ends anyway. */
static int reg_replace(const char *dir, const char *name, const char *data, size_t len,
		       bool durable)
{
	char tmp[NAME_MAX + 1];
	int dfd, fd = -1, ret;

	if (snprintf(tmp, sizeof(tmp), ".%s.tmp", name) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	ret = fio_write_all(fd, data, len);
	if (ret == 0 && durable && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	fd = -1;
	if (ret == 0 && renameat(dfd, tmp, dfd, name) < 0)
		ret = -errno;
	if (ret < 0) {
		unlinkat(dfd, tmp, 0);
		goto out;
	}
	if (durable && fsync(dfd) < 0)
		ret = -errno;
out:
	close(dfd);
	return ret;
}

/* ---- directories ---- */

static int reg_mkdir_owned(int parent, const char *name, mode_t mode, uid_t uid, gid_t gid)
{
	struct stat st;

	if (mkdirat(parent, name, mode) < 0 && errno != EEXIST)
		return -errno;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (uid != (uid_t)-1 && (st.st_uid != uid || st.st_gid != gid) &&
	    fchownat(parent, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

int reg_prepare(const char *root, const char *id, uid_t uid, gid_t gid)
{
	int rfd, dfd = -1, ret;

	rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return -errno;
	/* 0711: a --runas child must reach its state/ below, but nobody else
	 * needs to list the entry. (run/, which held the pid file vtpmd used
	 * to poll for readiness, is no longer made; reg_remove still removes
	 * it from older entries.) */
	ret = reg_mkdir_owned(rfd, id, 0711, (uid_t)-1, (gid_t)-1);
	if (ret < 0)
		goto out;
	dfd = openat(rfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		ret = -errno;
		goto out;
	}
	ret = reg_mkdir_owned(dfd, "state", 0700, uid, gid);
out:
	if (dfd >= 0)
		close(dfd);
	close(rfd);
	return ret;
}

/* ---- config.json ---- */

void reg_config_free(struct reg_config *c)
{
	if (c->argv) {
		for (size_t i = 0; i < c->argc; i++)
			free(c->argv[i]);
		free(c->argv);
	}
	c->argv = NULL;
	c->argc = 0;
}

static int reg_config_store(const char *root, const struct reg_config *c, bool durable);

int reg_config_write(const char *root, const struct reg_config *c)
{
	return reg_config_store(root, c, true);
}

int reg_config_write_nosync(const char *root, const struct reg_config *c)
{
	return reg_config_store(root, c, false);
}

/* fsync every fd, in parallel through io_uring (the kernel's workers, whose
 * device flushes coalesce) if it is available, else one after another.
 * 0 or the first -errno. */
#define REG_RING_DEPTH 64u

/* One ring for the life of the process (set up at the first batch): a ring
 * per batch would also mean new io-wq workers per batch. -1: not set up
 * yet, 0: works, 1: unavailable (fsync one after another). vtpmd is single-
 * threaded; the ring is never used by two batches at once. */
static struct io_uring reg_ring;
static int reg_ring_state = -1;

static int reg_fsync_all(const int *fds, size_t n)
{
	struct io_uring *ring = &reg_ring;
	struct io_uring_cqe *cqe;
	size_t done = 0;
	int ret = 0;

	if (reg_ring_state < 0 && n >= 2)
		reg_ring_state = io_uring_queue_init(REG_RING_DEPTH, ring, 0) < 0 ? 1 : 0;
	while (done < n && n >= 2 && reg_ring_state == 0) {
		size_t batch = 0, seen = 0;

		while (done + batch < n && batch < REG_RING_DEPTH) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

			if (!sqe)
				break;
			io_uring_prep_fsync(sqe, fds[done + batch], 0);
			batch++;
		}
		if (io_uring_submit_and_wait(ring, (unsigned)batch) >= 0) {
			for (; seen < batch; seen++) {
				if (io_uring_wait_cqe(ring, &cqe) < 0)
					break;
				if (cqe->res < 0 && ret == 0)
					ret = cqe->res;
				io_uring_cqe_seen(ring, cqe);
			}
		}
		if (seen < batch) {
			/* The ring's state is unknown now (completions may still
			 * come): give it up, and fsync this batch and the rest by
			 * hand. */
			io_uring_queue_exit(ring);
			reg_ring_state = 1;
			break;
		}
		done += batch;
	}
	for (size_t i = done; i < n; i++)
		if (fsync(fds[i]) < 0 && ret == 0)
			ret = -errno;
	return ret;
}

int reg_sync_entries(const char *root, const char *const *ids, size_t n)
{
	char sub[MGR_ID_MAX + 16];
	size_t nfd = 0;
	int rfd, *fds, ret = 0;

	if (n == 0)
		return 0;
	rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return -errno;
	fds = calloc(2 * n + 1, sizeof(*fds));
	if (!fds) {
		close(rfd);
		return -ENOMEM;
	}
	/* each config.json, each STATE_ROOT/ID (entries state/, config.json),
	 * and the state root once (entries ID) */
	for (size_t i = 0; i < n && ret == 0; i++) {
		int fd;

		if (snprintf(sub, sizeof(sub), "%s/config.json", ids[i]) >= (int)sizeof(sub)) {
			ret = -ENAMETOOLONG;
			break;
		}
		fd = openat(rfd, sub, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			ret = -errno;
			break;
		}
		fds[nfd++] = fd;
		fd = openat(rfd, ids[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			ret = -errno;
			break;
		}
		fds[nfd++] = fd;
	}
	fds[nfd++] = rfd;
	if (ret == 0)
		ret = reg_fsync_all(fds, nfd);
	for (size_t i = 0; i < nfd; i++)
		close(fds[i]);
	free(fds);
	return ret;
}

static int reg_config_store(const char *root, const struct reg_config *c, bool durable)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	char dir[PATH_MAX];
	const char *s;
	size_t len;
	int ret;

	if (!o || !a) {
		json_object_put(o);
		json_object_put(a);
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->argc; i++)
		json_object_array_add(a, json_object_new_string(c->argv[i]));
	json_object_object_add(o, "version", json_object_new_int(1));
	json_object_object_add(o, "id", json_object_new_string(c->id));
	json_object_object_add(o, "argv", a);
	json_object_object_add(o, "restart", json_object_new_string(proto_policy_name(c->policy)));
	json_object_object_add(o, "created", json_object_new_int64(c->created));
	json_object_object_add(o, "state", json_object_new_string(reg_state_name(c->state)));
	s = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	ret = reg_path(dir, sizeof(dir), root, c->id, NULL);
	if (ret == 0 && s) {
		/* a trailing newline for people reading the file */
		char *buf = malloc(len + 1);

		if (!buf) {
			ret = -ENOMEM;
		} else {
			memcpy(buf, s, len);
			buf[len] = '\n';
			ret = reg_replace(dir, "config.json", buf, len + 1, durable);
			free(buf);
		}
	} else if (ret == 0) {
		ret = -ENOMEM;
	}
	json_object_put(o);
	return ret;
}

static int reg_why(char *why, size_t whylen, const char *msg)
{
	if (why && whylen)
		snprintf(why, whylen, "%s", msg);
	return -EINVAL;
}

static int reg_get_string(json_object *o, const char *key, const char **out)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return -EINVAL;
	*out = json_object_get_string(v);
	if (memchr(*out, '\0', (size_t)json_object_get_string_len(v)))
		return -EINVAL;
	return 0;
}

int reg_config_parse(const char *text, size_t len, const char *id, struct reg_config *c,
		     char *why, size_t whylen)
{
	struct json_tokener *tok;
	json_object *o, *v, *a;
	const char *s;
	size_t n, total = 0;
	int ret = -EINVAL;

	memset(c, 0, sizeof(*c));
	if (len > REG_MAX_CONFIG || memchr(text, '\0', len))
		return reg_why(why, whylen, "config.json is too large or contains NUL bytes");
	tok = json_tokener_new_ex(PROTO_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	if (!o || !json_object_is_type(o, json_type_object)) {
		reg_why(why, whylen, "config.json is not a JSON object");
		goto out;
	}
	if (reg_get_string(o, "id", &s) < 0 || strcmp(s, id) != 0) {
		reg_why(why, whylen, "config.json: 'id' is missing or differs from the directory");
		goto out;
	}
	snprintf(c->id, sizeof(c->id), "%s", id);
	if (!json_object_object_get_ex(o, "argv", &a) || !json_object_is_type(a, json_type_array)) {
		reg_why(why, whylen, "config.json: 'argv' is missing or not an array");
		goto out;
	}
	n = json_object_array_length(a);
	if (n == 0 || n > PROTO_MAX_ARGC) {
		reg_why(why, whylen, "config.json: 'argv' has a bad number of elements");
		goto out;
	}
	c->argv = calloc(n + 1, sizeof(*c->argv));
	if (!c->argv) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		v = json_object_array_get_idx(a, i);
		if (!json_object_is_type(v, json_type_string) ||
		    memchr(json_object_get_string(v), '\0', (size_t)json_object_get_string_len(v)) ||
		    json_object_get_string_len(v) > PROTO_MAX_ARG_LEN) {
			reg_why(why, whylen, "config.json: an 'argv' element is not a valid string");
			goto out;
		}
		total += (size_t)json_object_get_string_len(v) + 1;
		if (total > PROTO_MAX_ARGV_BYTES) {
			reg_why(why, whylen, "config.json: 'argv' is too long");
			goto out;
		}
		c->argv[i] = strdup(json_object_get_string(v));
		if (!c->argv[i]) {
			ret = -ENOMEM;
			goto out;
		}
		c->argc = i + 1;
	}
	if (strcmp(c->argv[0], "socket") != 0) {
		reg_why(why, whylen, "config.json: argv[0] is not 'socket'");
		goto out;
	}
	c->policy = PROTO_RESTART_ON_FAILURE;
	if (json_object_object_get_ex(o, "restart", NULL) &&
	    (reg_get_string(o, "restart", &s) < 0 || proto_policy_parse(s, &c->policy) < 0)) {
		reg_why(why, whylen, "config.json: 'restart' is not a restart policy");
		goto out;
	}
	if (json_object_object_get_ex(o, "created", &v)) {
		if (!json_object_is_type(v, json_type_int)) {
			reg_why(why, whylen, "config.json: 'created' is not an integer");
			goto out;
		}
		c->created = json_object_get_int64(v);
	}
	c->state = REG_STOPPED;
	if (json_object_object_get_ex(o, "state", NULL)) {
		unsigned i;

		if (reg_get_string(o, "state", &s) < 0)
			s = "";
		for (i = 0; i < sizeof(reg_state_names) / sizeof(reg_state_names[0]); i++)
			if (strcmp(s, reg_state_names[i]) == 0)
				break;
		if (i == sizeof(reg_state_names) / sizeof(reg_state_names[0])) {
			reg_why(why, whylen, "config.json: 'state' is not a known state");
			goto out;
		}
		c->state = (enum reg_state)i;
	}
	ret = 0;
out:
	json_object_put(o);
	if (ret < 0)
		reg_config_free(c);
	return ret;
}

int reg_config_read(const char *root, const char *id, struct reg_config *c, char *why,
		    size_t whylen)
{
	char dir[PATH_MAX], *text = NULL;
	size_t len;
	int dfd, ret;

	memset(c, 0, sizeof(*c));
	ret = reg_path(dir, sizeof(dir), root, id, NULL);
	if (ret < 0)
		return ret;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		ret = -errno;
		snprintf(why, whylen, "cannot open %s: %s", dir, strerror(-ret));
		return ret;
	}
	ret = reg_read_small(dfd, "config.json", REG_MAX_CONFIG, &text, &len);
	close(dfd);
	if (ret < 0) {
		snprintf(why, whylen, "cannot read config.json: %s", strerror(-ret));
		return ret;
	}
	ret = reg_config_parse(text, len, id, c, why, whylen);
	free(text);
	return ret;
}

/* ---- pid file ---- */

int reg_pid_format(const struct reg_pid *p, char *buf, size_t size)
{
	int n = snprintf(buf, size, "pid=%d\nstarttime=%llu\nboot_id=%s\nexe=%s\ncomm=%s\n",
			 (int)p->pid, p->starttime, p->boot_id, p->exe, p->comm);

	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return n;
}

static int reg_parse_ull(const char *s, size_t len, unsigned long long max,
			 unsigned long long *out)
{
	unsigned long long v = 0;

	if (len == 0 || len > 20)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (ULLONG_MAX - (unsigned)(s[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static int reg_copy_value(char *dst, size_t size, const char *v, size_t len)
{
	if (len >= size || memchr(v, '\0', len))
		return -EINVAL;
	memcpy(dst, v, len);
	dst[len] = '\0';
	return 0;
}

int reg_pid_parse(const char *text, size_t len, struct reg_pid *p)
{
	unsigned seen = 0;
	const char *line = text, *end = text + len;
	unsigned long long v;

	memset(p, 0, sizeof(*p));
	if (len > REG_MAX_PIDFILE)
		return -EINVAL;
	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *le = nl ? nl : end, *eq;
		size_t klen, vlen;

		eq = memchr(line, '=', (size_t)(le - line));
		if (le == line) { /* empty line */
			line = le + 1;
			continue;
		}
		if (!eq)
			return -EINVAL;
		klen = (size_t)(eq - line);
		vlen = (size_t)(le - eq - 1);
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(line, k, klen) == 0)
		if (KEY("pid")) {
			if (reg_parse_ull(eq + 1, vlen, INT_MAX, &v) < 0 || v < 1)
				return -EINVAL;
			p->pid = (pid_t)v;
			seen |= 1;
		} else if (KEY("starttime")) {
			if (reg_parse_ull(eq + 1, vlen, ULLONG_MAX, &p->starttime) < 0)
				return -EINVAL;
			seen |= 2;
		} else if (KEY("boot_id")) {
			if (reg_copy_value(p->boot_id, sizeof(p->boot_id), eq + 1, vlen) < 0)
				return -EINVAL;
			seen |= 4;
		} else if (KEY("exe")) {
			if (reg_copy_value(p->exe, sizeof(p->exe), eq + 1, vlen) < 0 ||
			    p->exe[0] != '/')
				return -EINVAL;
			seen |= 8;
		} else if (KEY("comm")) {
			if (reg_copy_value(p->comm, sizeof(p->comm), eq + 1, vlen) < 0)
				return -EINVAL;
			seen |= 16;
		}
		/* unknown keys: written by a newer vtpmd, ignored */
#undef KEY
		line = le + 1;
	}
	return seen == 31 ? 0 : -EINVAL;
}

int reg_pid_write(const char *root, const char *id, const struct reg_pid *p)
{
	char dir[PATH_MAX], buf[REG_MAX_PIDFILE];
	int n, ret;

	ret = reg_path(dir, sizeof(dir), root, id, NULL);
	if (ret < 0)
		return ret;
	n = reg_pid_format(p, buf, sizeof(buf));
	if (n < 0)
		return n;
	return reg_replace(dir, "pid", buf, (size_t)n, false);
}

int reg_pid_read(const char *root, const char *id, struct reg_pid *p)
{
	char dir[PATH_MAX], *text = NULL;
	size_t len;
	int dfd, ret;

	ret = reg_path(dir, sizeof(dir), root, id, NULL);
	if (ret < 0)
		return ret;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	ret = reg_read_small(dfd, "pid", REG_MAX_PIDFILE, &text, &len);
	close(dfd);
	if (ret < 0)
		return ret;
	ret = reg_pid_parse(text, len, p);
	free(text);
	return ret;
}

int reg_pid_remove(const char *root, const char *id)
{
	char path[PATH_MAX];
	int ret = reg_path(path, sizeof(path), root, id, "pid");

	if (ret < 0)
		return ret;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* ---- /proc ---- */

int reg_parse_stat_starttime(const char *text, size_t len, unsigned long long *out)
{
	const char *p = NULL, *end = text + len;
	int field;

	/* comm (field 2) is in parentheses and may contain anything, so the
	 * fields are counted from the last ')'. */
	for (const char *q = text; q < end; q++)
		if (*q == ')')
			p = q;
	if (!p)
		return -EINVAL;
	p++;
	/* p is at " S ppid ..."; field 3 follows the next space */
	for (field = 2; field < 22; field++) {
		while (p < end && *p == ' ')
			p++;
		if (field == 21)
			break;
		while (p < end && *p != ' ')
			p++;
		if (p >= end)
			return -EINVAL;
	}
	{
		const char *s = p;

		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p == s || (p < end && *p != ' ' && *p != '\n'))
			return -EINVAL;
		return reg_parse_ull(s, (size_t)(p - s), ULLONG_MAX, out);
	}
}

static int reg_read_proc(const char *path, char *buf, size_t size, size_t *lenp)
{
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	r = read(fd, buf, size - 1);
	close(fd);
	if (r < 0)
		return -errno;
	buf[r] = '\0';
	*lenp = (size_t)r;
	return 0;
}

int reg_proc_identity(pid_t pid, struct reg_pid *p)
{
	char path[64], buf[1024];
	size_t len;
	ssize_t n;
	int ret;

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	ret = reg_read_proc(path, buf, sizeof(buf), &len);
	if (ret < 0)
		return ret;
	ret = reg_parse_stat_starttime(buf, len, &p->starttime);
	if (ret < 0)
		return ret;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	ret = reg_read_proc(path, buf, sizeof(buf), &len);
	if (ret < 0)
		return ret;
	while (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len >= sizeof(p->comm))
		return -EINVAL;
	memcpy(p->comm, buf, len + 1);
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, p->exe, sizeof(p->exe) - 1);
	if (n < 0)
		return -errno;
	if ((size_t)n >= sizeof(p->exe) - 1)
		return -ENAMETOOLONG;
	p->exe[n] = '\0';
	ret = reg_read_proc("/proc/sys/kernel/random/boot_id", buf, sizeof(buf), &len);
	if (ret < 0)
		return ret;
	while (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len >= sizeof(p->boot_id))
		return -EINVAL;
	memcpy(p->boot_id, buf, len + 1);
	return 0;
}

bool reg_identity_match(const struct reg_pid *saved, const struct reg_pid *now)
{
	static const char deleted[] = " (deleted)";
	size_t sl = strlen(saved->exe), nl = strlen(now->exe);

	if (saved->pid != now->pid || saved->starttime != now->starttime)
		return false;
	if (!saved->boot_id[0] || strcmp(saved->boot_id, now->boot_id) != 0)
		return false;
	if (strcmp(saved->comm, now->comm) != 0)
		return false;
	/* After a package upgrade the running child's binary is gone. */
	if (nl == sl + sizeof(deleted) - 1 && memcmp(now->exe + sl, deleted, sizeof(deleted) - 1) == 0)
		nl = sl;
	return nl == sl && memcmp(saved->exe, now->exe, sl) == 0;
}

/* ---- scanning and removal ---- */

int reg_scan(const char *root, int (*fn)(const char *id, void *arg), void *arg)
{
	struct dirent *de;
	struct stat st;
	char sub[MGR_ID_MAX + 16];
	DIR *d;
	int ret = 0;

	d = opendir(root);
	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (mgr_id_check(de->d_name, len, NULL) < 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/config.json", de->d_name);
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		if (fstatat(dirfd(d), sub, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		ret = fn(de->d_name, arg);
		if (ret < 0)
			break;
	}
	closedir(d);
	return ret;
}

static int reg_rmtree_at(int parent, const char *name, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd, ret = 0;

	if (depth > REG_RMTREE_DEPTH)
		return -ELOOP;
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		/* a symlink or file: remove the name only, never its target */
		if (errno == ENOTDIR || errno == ELOOP)
			return unlinkat(parent, name, 0) < 0 ? -errno : 0;
		return errno == ENOENT ? 0 : -errno;
	}
	d = fdopendir(fd);
	if (!d) {
		ret = -errno;
		close(fd);
		return ret;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			continue;
		if (errno == EISDIR || errno == EPERM) {
			int r = reg_rmtree_at(dirfd(d), de->d_name, depth + 1);

			if (r < 0 && ret == 0)
				ret = r;
		} else if (errno != ENOENT && ret == 0) {
			ret = -errno;
		}
	}
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT && ret == 0)
		ret = -errno;
	return ret;
}

int reg_rmtree(int parent, const char *name)
{
	return reg_rmtree_at(parent, name, 0);
}

int reg_remove(const char *root, const char *id, bool purge)
{
	static const char *const leaves[] = { "config.json", "pid" };
	int rfd, dfd, ret = 0;

	if (mgr_id_check(id, strlen(id), NULL) < 0)
		return -EINVAL;
	rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return -errno;
	if (purge) {
		ret = reg_rmtree_at(rfd, id, 0);
		goto out;
	}
	dfd = openat(rfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		ret = errno == ENOENT ? 0 : -errno;
		goto out;
	}
	for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++)
		if (unlinkat(dfd, leaves[i], 0) < 0 && errno != ENOENT && ret == 0)
			ret = -errno;
	{
		int r = reg_rmtree_at(dfd, "run", 0);

		if (r < 0 && ret == 0)
			ret = r;
	}
	close(dfd);
out:
	close(rfd);
	return ret;
}

int reg_log_tail(const char *root, const char *id, char *out, size_t size)
{
	char path[PATH_MAX], buf[2048];
	struct stat st;
	off_t off;
	ssize_t n;
	int fd, ret;

	if (size == 0)
		return -EINVAL;
	out[0] = '\0';
	ret = reg_path(path, sizeof(path), root, id, "log");
	if (ret < 0)
		return ret;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	off = st.st_size > (off_t)(sizeof(buf) - 1) ? st.st_size - (off_t)(sizeof(buf) - 1) : 0;
	n = pread(fd, buf, sizeof(buf) - 1, off);
	close(fd);
	if (n < 0)
		return -errno;
	/* drop trailing blank lines, then take the last one */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	{
		char *start = memrchr(buf, '\n', (size_t)n);

		start = start ? start + 1 : buf;
		/* logs are text, but do not pass control bytes on to clients */
		for (char *c = start; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = '?';
		snprintf(out, size, "%s", start);
	}
	return 0;
}
