/* Fuzz target: the vtpmd management protocol (src/manager/protocol.h): one
 * request line as a client sends it (without its newline).
 * Checks: an accepted request is complete and validated (instance id, argv
 * bounds, absolute file, exactly one of file/data for import-state); the
 * reply the daemon would send (error or return, echoing the request's "id")
 * is one line of valid JSON, and valid UTF-8 whenever the request was;
 * accepted requests re-serialised parse to the same request. */
#include <errno.h>

#include "fuzz_common.h"
#include "manager/id.h"
#include "manager/protocol.h"

/* RFC 3629 UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
static bool utf8_ok(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t k;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + k >= n)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

static bool needs_id(enum proto_cmd c)
{
	return c != PROTO_CMD_LIST && c != PROTO_CMD_QUERY_VERSION && c != PROTO_CMD_SUBSCRIBE &&
	       c != PROTO_CMD_UNSUBSCRIBE;
}

static void check_req(const struct proto_req *req)
{
	FUZZ_CHECK(req->root != NULL && req->name != NULL);
	if (needs_id(req->cmd)) {
		FUZZ_CHECK(req->inst != NULL);
		FUZZ_CHECK(mgr_id_check(req->inst, strlen(req->inst), NULL) == 0);
	}
	if (req->cmd == PROTO_CMD_CREATE) {
		size_t total = 0;

		FUZZ_CHECK(req->argv != NULL && req->argc >= 1 && req->argc <= PROTO_MAX_ARGC);
		FUZZ_CHECK(req->argv[req->argc] == NULL);
		for (size_t i = 0; i < req->argc; i++) {
			FUZZ_CHECK(req->argv[i] != NULL);
			FUZZ_CHECK(strlen(req->argv[i]) <= PROTO_MAX_ARG_LEN);
			total += strlen(req->argv[i]) + 1;
		}
		FUZZ_CHECK(total <= PROTO_MAX_ARGV_BYTES);
		FUZZ_CHECK(!strcmp(req->argv[0], "socket") || !strcmp(req->argv[0], "chardev") ||
			   !strcmp(req->argv[0], "cuse"));
		FUZZ_CHECK(proto_policy_name(req->policy) != NULL);
	} else {
		FUZZ_CHECK(req->argv == NULL && req->argc == 0);
	}
	if (req->file) {
		FUZZ_CHECK(req->file[0] == '/' && strlen(req->file) < 4096);
	}
	if (req->data)
		FUZZ_CHECK(strlen(req->data) == req->datalen);
	if (req->cmd == PROTO_CMD_IMPORT_STATE)
		FUZZ_CHECK(!req->file != !req->data);
}

/* The reply line: one line, valid JSON, an object. */
static void check_reply(json_object *msg, bool want_utf8)
{
	struct json_tokener *tok;
	json_object *back;
	size_t len = 0;
	char *line;

	FUZZ_CHECK(msg != NULL);
	line = proto_serialize(msg, &len);
	FUZZ_CHECK(line != NULL && len >= 3);
	FUZZ_CHECK(line[len - 1] == '\n' && memchr(line, '\n', len - 1) == NULL);
	tok = json_tokener_new();
	if (!tok)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	back = json_tokener_parse_ex(tok, line, (int)len - 1);
	if (json_tokener_get_error(tok) != json_tokener_success || !back ||
	    !json_object_is_type(back, json_type_object)) {
		fprintf(stderr, "reply is not a JSON object: %s", line);
		FUZZ_CHECK(0);
	}
	json_tokener_free(tok);
	json_object_put(back);
	if (want_utf8 && !utf8_ok((const uint8_t *)line, len)) {
		fprintf(stderr, "reply to a UTF-8 request is not UTF-8: %s", line);
		FUZZ_CHECK(0);
	}
	free(line);
	json_object_put(msg);
}

static void round_trip(const struct proto_req *req)
{
	struct proto_req r2;
	struct proto_error e2;
	size_t n = 0;
	const char *s = json_object_to_json_string_length(
		req->root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	char *copy;
	int r;

	FUZZ_CHECK(s != NULL);
	if (n > PROTO_MAX_LINE)
		return;
	copy = (char *)fuzz_dup((const uint8_t *)s, n);
	r = proto_parse(copy, n, &r2, &e2);
	if (r != 0) {
		fprintf(stderr, "re-serialised request rejected (%s: %s): %.*s\n",
			e2.cls ? e2.cls : "?", e2.desc, (int)n, copy);
		FUZZ_CHECK(0);
	}
	FUZZ_CHECK(r2.cmd == req->cmd);
	FUZZ_CHECK(!r2.inst == !req->inst && (!r2.inst || !strcmp(r2.inst, req->inst)));
	FUZZ_CHECK(r2.argc == req->argc);
	for (size_t i = 0; i < req->argc; i++)
		FUZZ_CHECK(!strcmp(r2.argv[i], req->argv[i]));
	FUZZ_CHECK(r2.start == req->start && r2.purge == req->purge && r2.policy == req->policy);
	FUZZ_CHECK(r2.encrypted == req->encrypted);
	FUZZ_CHECK(!r2.file == !req->file && (!r2.file || !strcmp(r2.file, req->file)));
	FUZZ_CHECK(r2.datalen == req->datalen && !r2.data == !req->data);
	FUZZ_CHECK(!r2.id == !req->id);
	proto_req_free(&r2);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_req req;
	struct proto_error err;
	char *line = (char *)fuzz_dup(data, size); /* not NUL-terminated */
	bool utf8 = utf8_ok(data, size);
	int r;

	r = proto_parse(line, size, &req, &err);
	FUZZ_CHECK(r == 0 || r == 1 || r == -EINVAL || r == -ENOMEM);
	if (r == 1) {
		for (size_t i = 0; i < size; i++)
			FUZZ_CHECK(data[i] == ' ' || data[i] == '\t' || data[i] == '\r');
		FUZZ_CHECK(req.root == NULL);
	} else if (r == 0) {
		check_req(&req);
		check_reply(proto_msg_return(NULL, req.id), utf8);
		round_trip(&req);
	} else {
		FUZZ_CHECK(err.cls != NULL && err.desc[0] != '\0');
		FUZZ_CHECK(memchr(err.desc, '\0', sizeof(err.desc)) != NULL);
		check_reply(proto_msg_error(err.cls, err.desc, req.id), utf8);
	}
	proto_req_free(&req);
	free(line);
	return 0;
}
