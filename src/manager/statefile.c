/* vtpmd state file codec. The input of sf_decode() is a file an operator
 * carried over from another host: every field is checked before use and no
 * length from the file is trusted before it was compared to the buffer. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manager/statefile.h"
#include "vtpm/ctrl_proto.h"

static const char *const sf_types[SF_NBLOBS] = { "permanent", "volatile", "savestate" };

const char *sf_type_name(uint32_t type)
{
	if (type < 1 || type > SF_NBLOBS)
		return NULL;
	return sf_types[type - 1];
}

__attribute__((format(printf, 3, 4))) static int sf_why(char *why, size_t whylen,
						       const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int sf_sha256(const uint8_t *data, size_t len, uint8_t out[32])
{
	unsigned int n = 0;

	/* EVP_Digest wants a non-NULL pointer even for an empty input */
	if (EVP_Digest(len ? data : (const uint8_t *)"", len, out, &n, EVP_sha256(), NULL) != 1 ||
	    n != 32)
		return -EIO;
	return 0;
}

static void sf_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---- encode ---- */

int sf_encode(const struct sf_state *s, uint8_t **out, size_t *outlen)
{
	json_object *hdr = NULL, *arr;
	const char *text;
	size_t hlen, total;
	uint8_t *buf = NULL, *p;
	int ret = -ENOMEM;

	*out = NULL;
	*outlen = 0;
	for (int i = 0; i < SF_NBLOBS; i++)
		if (s->blobs[i].type != (uint32_t)(i + 1) || s->blobs[i].len > SF_MAX_BLOB ||
		    (s->blobs[i].len && !s->blobs[i].data))
			return -EINVAL;
	hdr = json_object_new_object();
	arr = json_object_new_array();
	if (!hdr || !arr) {
		json_object_put(arr);
		goto out;
	}
	/* "format" first: its text is the magic a reader checks */
	json_object_object_add(hdr, "format", json_object_new_string(SF_FORMAT));
	json_object_object_add(hdr, "version", json_object_new_int(SF_VERSION));
	json_object_object_add(hdr, "tpm", json_object_new_string(s->tpm2 ? "2.0" : "1.2"));
	json_object_object_add(hdr, "created", json_object_new_int64(s->created));
	if (s->source_id[0])
		json_object_object_add(hdr, "source-id", json_object_new_string(s->source_id));
	json_object_object_add(hdr, "blobs", arr);
	total = 0;
	for (int i = 0; i < SF_NBLOBS; i++) {
		json_object *b = json_object_new_object();
		uint8_t md[32];
		char hex[65];

		if (!b)
			goto out;
		json_object_array_add(arr, b);
		if (sf_sha256(s->blobs[i].data, s->blobs[i].len, md) < 0) {
			ret = -EIO;
			goto out;
		}
		sf_hex(md, sizeof(md), hex);
		json_object_object_add(b, "type", json_object_new_string(sf_types[i]));
		json_object_object_add(b, "flags", json_object_new_int64(s->blobs[i].flags));
		json_object_object_add(b, "length", json_object_new_int64((int64_t)s->blobs[i].len));
		json_object_object_add(b, "sha256", json_object_new_string(hex));
		total += s->blobs[i].len;
	}
	text = json_object_to_json_string_ext(hdr, JSON_C_TO_STRING_PLAIN);
	if (!text)
		goto out;
	hlen = strlen(text);
	if (hlen + 1 > SF_MAX_HEADER || strncmp(text, SF_MAGIC, strlen(SF_MAGIC)) != 0) {
		ret = -EINVAL;
		goto out;
	}
	buf = malloc(hlen + 1 + total);
	if (!buf)
		goto out;
	memcpy(buf, text, hlen);
	buf[hlen] = '\n';
	p = buf + hlen + 1;
	for (int i = 0; i < SF_NBLOBS; i++) {
		if (s->blobs[i].len)
			memcpy(p, s->blobs[i].data, s->blobs[i].len);
		p += s->blobs[i].len;
	}
	*out = buf;
	*outlen = hlen + 1 + total;
	buf = NULL;
	ret = 0;
out:
	free(buf);
	json_object_put(hdr);
	return ret;
}

/* ---- decode ---- */

/* A non-negative integer member no larger than max. */
static int sf_get_uint(json_object *o, const char *key, int64_t max, int64_t *out)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_get_type(v) != json_type_int)
		return -EINVAL;
	errno = 0;
	*out = json_object_get_int64(v);
	if (errno || *out < 0 || *out > max)
		return -EINVAL;
	return 0;
}

static const char *sf_get_str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_get_type(v) != json_type_string)
		return NULL;
	/* the C view must be the whole JSON string */
	if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
		return NULL;
	return json_object_get_string(v);
}

static int sf_unhex(const char *hex, uint8_t out[32])
{
	if (!hex || strlen(hex) != 64)
		return -EINVAL;
	for (int i = 0; i < 64; i++) {
		char c = hex[i];
		int v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			return -EINVAL;
		if (i & 1)
			out[i / 2] |= (uint8_t)v;
		else
			out[i / 2] = (uint8_t)(v << 4);
	}
	return 0;
}

static int sf_decode_header(json_object *hdr, int want_tpm, struct sf_state *s,
			    uint8_t sums[SF_NBLOBS][32], char *why, size_t whylen)
{
	json_object *arr;
	const char *str;
	int64_t v;

	str = sf_get_str(hdr, "format");
	if (!str || strcmp(str, SF_FORMAT) != 0)
		return sf_why(why, whylen, "not a vtpmd state file (format is not '%s')", SF_FORMAT);
	if (sf_get_uint(hdr, "version", INT32_MAX, &v) < 0)
		return sf_why(why, whylen, "the header has no valid 'version'");
	if (v != SF_VERSION)
		return sf_why(why, whylen,
			      "unsupported state file version %" PRId64 " (this vtpmd reads version %d)",
			      v, SF_VERSION);
	str = sf_get_str(hdr, "tpm");
	if (!str || (strcmp(str, "2.0") != 0 && strcmp(str, "1.2") != 0))
		return sf_why(why, whylen, "the header's 'tpm' is not \"2.0\" or \"1.2\"");
	s->tpm2 = strcmp(str, "2.0") == 0;
	if (want_tpm >= 0 && s->tpm2 != (want_tpm == 1))
		return sf_why(why, whylen, "the file holds TPM %s state, the instance is a TPM %s",
			      str, want_tpm == 1 ? "2.0" : "1.2");
	if (sf_get_uint(hdr, "created", INT64_MAX, &s->created) < 0)
		return sf_why(why, whylen, "the header has no valid 'created'");
	if (json_object_object_get_ex(hdr, "source-id", NULL)) {
		str = sf_get_str(hdr, "source-id");
		/* an instance id as written by sf_encode: it is logged and echoed
		 * to clients, so no control characters from a hostile file */
		if (!str || (str[0] && mgr_id_check(str, strlen(str), NULL) < 0))
			return sf_why(why, whylen, "the header's 'source-id' is invalid");
		snprintf(s->source_id, sizeof(s->source_id), "%s", str);
	}
	if (!json_object_object_get_ex(hdr, "blobs", &arr) ||
	    json_object_get_type(arr) != json_type_array ||
	    json_object_array_length(arr) != SF_NBLOBS)
		return sf_why(why, whylen, "the header's 'blobs' is not an array of %d entries",
			      SF_NBLOBS);
	for (int i = 0; i < SF_NBLOBS; i++) {
		json_object *b = json_object_array_get_idx(arr, (size_t)i);

		if (json_object_get_type(b) != json_type_object)
			return sf_why(why, whylen, "blobs[%d] is not an object", i);
		str = sf_get_str(b, "type");
		/* fixed order: libtpms validates volatile against permanent */
		if (!str || strcmp(str, sf_types[i]) != 0)
			return sf_why(why, whylen, "blobs[%d] must be of type '%s'", i, sf_types[i]);
		s->blobs[i].type = (uint32_t)(i + 1);
		if (sf_get_uint(b, "flags", UINT32_MAX, &v) < 0 ||
		    (v & ~(int64_t)PTM_STATE_FLAG_ENCRYPTED))
			return sf_why(why, whylen, "blobs[%d] ('%s') has invalid 'flags'", i,
				      sf_types[i]);
		s->blobs[i].flags = (uint32_t)v;
		if (sf_get_uint(b, "length", INT64_MAX, &v) < 0)
			return sf_why(why, whylen, "blobs[%d] ('%s') has no valid 'length'", i,
				      sf_types[i]);
		if (v > (int64_t)SF_MAX_BLOB)
			return sf_why(why, whylen,
				      "blob '%s' is %" PRId64 " bytes, more than the limit of %u",
				      sf_types[i], v, SF_MAX_BLOB);
		s->blobs[i].len = (size_t)v;
		if (sf_unhex(sf_get_str(b, "sha256"), sums[i]) < 0)
			return sf_why(why, whylen, "blobs[%d] ('%s') has no valid 'sha256'", i,
				      sf_types[i]);
	}
	return 0;
}

int sf_decode(const uint8_t *buf, size_t len, int want_tpm, struct sf_state *s, char *why,
	      size_t whylen)
{
	uint8_t sums[SF_NBLOBS][32], md[32];
	struct json_tokener *tok;
	json_object *hdr;
	const uint8_t *nl, *p;
	size_t hlen, need, left;
	int r;

	memset(s, 0, sizeof(*s));
	if (len < strlen(SF_MAGIC) || memcmp(buf, SF_MAGIC, strlen(SF_MAGIC)) != 0)
		return sf_why(why, whylen, "not a vtpmd state file (bad magic)");
	nl = memchr(buf, '\n', len < SF_MAX_HEADER ? len : SF_MAX_HEADER);
	if (!nl)
		return sf_why(why, whylen,
			      len < SF_MAX_HEADER ? "truncated: the header line is incomplete"
						  : "the header line is longer than %u bytes",
			      SF_MAX_HEADER);
	hlen = (size_t)(nl - buf);
	if (memchr(buf, '\0', hlen))
		return sf_why(why, whylen, "the header contains a NUL byte");
	tok = json_tokener_new_ex(4);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	hdr = json_tokener_parse_ex(tok, (const char *)buf, (int)hlen);
	r = json_tokener_get_error(tok) == json_tokener_success &&
	    json_tokener_get_parse_end(tok) == hlen && json_object_is_type(hdr, json_type_object);
	json_tokener_free(tok);
	if (!r) {
		json_object_put(hdr);
		return sf_why(why, whylen, "the header line is not a valid JSON object");
	}
	r = sf_decode_header(hdr, want_tpm, s, sums, why, whylen);
	json_object_put(hdr);
	if (r < 0)
		return r;
	/* lengths against the buffer before any blob is touched; each is at
	 * most SF_MAX_BLOB, so the sum cannot overflow */
	need = 0;
	for (int i = 0; i < SF_NBLOBS; i++)
		need += s->blobs[i].len;
	left = len - hlen - 1;
	if (left < need)
		return sf_why(why, whylen, "truncated: %zu bytes of blob data, the header announces %zu",
			      left, need);
	if (left > need)
		return sf_why(why, whylen, "%zu bytes of trailing garbage after the last blob",
			      left - need);
	p = nl + 1;
	for (int i = 0; i < SF_NBLOBS; i++) {
		s->blobs[i].data = s->blobs[i].len ? p : NULL;
		if (sf_sha256(p, s->blobs[i].len, md) < 0)
			return -EIO;
		if (memcmp(md, sums[i], sizeof(md)) != 0)
			return sf_why(why, whylen, "checksum mismatch in the '%s' blob: the file is corrupt",
				      sf_types[i]);
		p += s->blobs[i].len;
	}
	return 0;
}

/* ---- files ---- */

int sf_write_file(const char *path, const uint8_t *buf, size_t len)
{
	char *d1 = NULL, *d2 = NULL, *tmp = NULL;
	const char *dir, *base;
	int fd = -1, dfd = -1, ret = 0;
	bool created = false, renamed = false;
	size_t off = 0;

	d1 = strdup(path);
	d2 = strdup(path);
	if (!d1 || !d2) {
		ret = -ENOMEM;
		goto out;
	}
	dir = dirname(d1);
	base = basename(d2);
	if (!*base || strcmp(base, "/") == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		ret = -EISDIR;
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		ret = -errno;
		goto out;
	}
	if (asprintf(&tmp, ".%s.tmp.%d", base, (int)getpid()) < 0) {
		tmp = NULL;
		ret = -ENOMEM;
		goto out;
	}
	/* created 0600 with O_EXCL: the state is secret, and no window with a
	 * wider mode or someone else's file */
	unlinkat(dfd, tmp, 0);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	created = true;
	while (off < len) {
		ssize_t w = write(fd, buf + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			ret = w < 0 ? -errno : -EIO;
			goto out;
		}
		off += (size_t)w;
	}
	if (fchmod(fd, 0600) < 0 || fsync(fd) < 0) {
		ret = -errno;
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		ret = -errno;
		goto out;
	}
	fd = -1;
	if (renameat(dfd, tmp, dfd, base) < 0) {
		ret = -errno;
		goto out;
	}
	renamed = true;
	if (fsync(dfd) < 0)
		ret = -errno; /* renamed already: the caller still hears of it */
out:
	if (fd >= 0)
		close(fd);
	if (created && !renamed)
		unlinkat(dfd, tmp, 0);
	if (dfd >= 0)
		close(dfd);
	free(tmp);
	free(d1);
	free(d2);
	return ret;
}

int sf_read_file(const char *path, uint8_t **out, size_t *outlen)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t off = 0;
	int fd, ret = 0;

	*out = NULL;
	*outlen = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
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
	if (st.st_size > (off_t)SF_MAX_FILE) {
		ret = -EFBIG;
		goto out;
	}
	/* one byte more than stat said, to notice a file still growing */
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf + off, (size_t)st.st_size + 1 - off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			goto out;
		}
		if (r == 0)
			break;
		off += (size_t)r;
		if (off > (size_t)st.st_size) {
			ret = -EAGAIN; /* changed while we read it */
			goto out;
		}
	}
	*out = buf;
	*outlen = off;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return ret;
}
