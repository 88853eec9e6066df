/* Management protocol codec: every check a request from an untrusted local
 * client goes through before the supervisor sees it, plus message builders. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager/id.h"
#include "manager/protocol.h"

static const char *const proto_policy_names[] = {
	[PROTO_RESTART_ON_FAILURE] = "on-failure",
	[PROTO_RESTART_ALWAYS] = "always",
	[PROTO_RESTART_NEVER] = "never",
};

const char *proto_policy_name(enum proto_policy p)
{
	if ((unsigned)p >= sizeof(proto_policy_names) / sizeof(proto_policy_names[0]))
		return "?";
	return proto_policy_names[p];
}

int proto_policy_parse(const char *s, enum proto_policy *out)
{
	for (unsigned i = 0; i < sizeof(proto_policy_names) / sizeof(proto_policy_names[0]); i++) {
		if (s && strcmp(s, proto_policy_names[i]) == 0) {
			*out = (enum proto_policy)i;
			return 0;
		}
	}
	return -EINVAL;
}

void proto_err_set(struct proto_error *err, const char *cls, const char *fmt, ...)
{
	va_list ap;

	err->cls = cls;
	va_start(ap, fmt);
	vsnprintf(err->desc, sizeof(err->desc), fmt, ap);
	va_end(ap);
}

/* ---- command table ---- */

struct proto_arg {
	const char *name;
	json_type type;
	bool required;
};

struct proto_cmd_spec {
	const char *name;
	enum proto_cmd cmd;
	const struct proto_arg *args; /* terminated by a NULL name */
};

static const struct proto_arg proto_args_none[] = { { NULL, json_type_null, false } };
static const struct proto_arg proto_args_id[] = {
	{ "id", json_type_string, true },
	{ NULL, json_type_null, false },
};
static const struct proto_arg proto_args_create[] = {
	{ "id", json_type_string, true },
	{ "argv", json_type_array, true },
	{ "start", json_type_boolean, false },
	{ "restart", json_type_string, false },
	{ NULL, json_type_null, false },
};
static const struct proto_arg proto_args_destroy[] = {
	{ "id", json_type_string, true },
	{ "purge", json_type_boolean, false },
	{ NULL, json_type_null, false },
};

static const struct proto_arg proto_args_export[] = {
	{ "id", json_type_string, true },
	{ "file", json_type_string, false },
	{ "encrypted", json_type_boolean, false },
	{ NULL, json_type_null, false },
};
static const struct proto_arg proto_args_import[] = {
	{ "id", json_type_string, true },
	{ "file", json_type_string, false },
	{ "data", json_type_string, false },
	{ NULL, json_type_null, false },
};

static const struct proto_cmd_spec proto_cmds[] = {
	{ "create", PROTO_CMD_CREATE, proto_args_create },
	{ "start", PROTO_CMD_START, proto_args_id },
	{ "stop", PROTO_CMD_STOP, proto_args_id },
	{ "restart", PROTO_CMD_RESTART, proto_args_id },
	{ "destroy", PROTO_CMD_DESTROY, proto_args_destroy },
	{ "list", PROTO_CMD_LIST, proto_args_none },
	{ "status", PROTO_CMD_STATUS, proto_args_id },
	{ "query-version", PROTO_CMD_QUERY_VERSION, proto_args_none },
	{ "subscribe", PROTO_CMD_SUBSCRIBE, proto_args_none },
	{ "unsubscribe", PROTO_CMD_UNSUBSCRIBE, proto_args_none },
	{ "export-state", PROTO_CMD_EXPORT_STATE, proto_args_export },
	{ "import-state", PROTO_CMD_IMPORT_STATE, proto_args_import },
};

static const char *proto_type_name(json_type t)
{
	switch (t) {
	case json_type_string:
		return "a string";
	case json_type_boolean:
		return "a boolean";
	case json_type_array:
		return "an array";
	case json_type_object:
		return "an object";
	case json_type_int:
	case json_type_double:
		return "a number";
	default:
		return "null";
	}
}

/* A JSON string as a C string: refuses embedded NULs ("\u0000"), which would
 * make the C view differ from what the client sent. */
static int proto_cstr(json_object *o, const char **out, size_t *lenp)
{
	const char *s = json_object_get_string(o);
	size_t len = (size_t)json_object_get_string_len(o);

	if (!s || memchr(s, '\0', len))
		return -EINVAL;
	*out = s;
	if (lenp)
		*lenp = len;
	return 0;
}

/* Length of at most 64 bytes of s for an error message, never cutting a UTF-8
 * sequence in two, so that the error reply stays valid UTF-8 JSON. */
static int proto_clip(const char *s)
{
	size_t n = strnlen(s, 65);

	if (n <= 64)
		return (int)n;
	n = 64;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return (int)n;
}

static int proto_check_args(const struct proto_cmd_spec *spec, json_object *args,
			    struct proto_error *err)
{
	const struct proto_arg *a;

	if (args) {
		json_object_object_foreach(args, key, val) {
			for (a = spec->args; a->name; a++)
				if (strcmp(a->name, key) == 0)
					break;
			if (!a->name) {
				proto_err_set(err, PROTO_ERR_ARG,
					      "Parameter '%.*s' is unexpected for command '%s'",
					      proto_clip(key), key, spec->name);
				return -EINVAL;
			}
			if (json_object_get_type(val) != a->type) {
				proto_err_set(err, PROTO_ERR_ARG, "Parameter '%s' expects %s, not %s",
					      a->name, proto_type_name(a->type),
					      proto_type_name(json_object_get_type(val)));
				return -EINVAL;
			}
		}
	}
	for (a = spec->args; a->name; a++) {
		if (a->required && (!args || !json_object_object_get_ex(args, a->name, NULL))) {
			proto_err_set(err, PROTO_ERR_ARG, "Parameter '%s' is missing", a->name);
			return -EINVAL;
		}
	}
	return 0;
}

static int proto_parse_argv(json_object *arr, struct proto_req *req, struct proto_error *err)
{
	size_t n = json_object_array_length(arr), total = 0, len;
	const char *s;

	if (n == 0) {
		proto_err_set(err, PROTO_ERR_ARG, "Parameter 'argv' must not be empty");
		return -EINVAL;
	}
	if (n > PROTO_MAX_ARGC) {
		proto_err_set(err, PROTO_ERR_ARG, "Parameter 'argv' has more than %d elements",
			      PROTO_MAX_ARGC);
		return -EINVAL;
	}
	req->argv = calloc(n + 1, sizeof(*req->argv));
	if (!req->argv) {
		proto_err_set(err, PROTO_ERR_GENERIC, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i);

		if (json_object_get_type(e) != json_type_string) {
			proto_err_set(err, PROTO_ERR_ARG, "argv[%zu] must be a string", i);
			return -EINVAL;
		}
		if (proto_cstr(e, &s, &len) < 0) {
			proto_err_set(err, PROTO_ERR_ARG, "argv[%zu] contains a NUL character", i);
			return -EINVAL;
		}
		if (len > PROTO_MAX_ARG_LEN) {
			proto_err_set(err, PROTO_ERR_ARG, "argv[%zu] is longer than %d bytes", i,
				      PROTO_MAX_ARG_LEN);
			return -EINVAL;
		}
		total += len + 1;
		if (total > PROTO_MAX_ARGV_BYTES) {
			proto_err_set(err, PROTO_ERR_ARG, "argv is longer than %d bytes in total",
				      PROTO_MAX_ARGV_BYTES);
			return -EINVAL;
		}
		req->argv[i] = s;
	}
	req->argc = n;
	/* The interfaces of `swtpm` (the same option parser validates the rest
	 * when the instance is created). */
	if (strcmp(req->argv[0], "socket") != 0 && strcmp(req->argv[0], "chardev") != 0 &&
	    strcmp(req->argv[0], "cuse") != 0) {
		proto_err_set(err, PROTO_ERR_ARG,
			      "argv[0] must be the interface 'socket', 'chardev' or 'cuse' (as in "
			      "'swtpm socket ...'), not '%.*s'",
			      proto_clip(req->argv[0]), req->argv[0]);
		return -EINVAL;
	}
	return 0;
}

static int proto_parse_args(json_object *args, struct proto_req *req, struct proto_error *err)
{
	json_object *v;
	const char *why, *s;
	size_t len;

	if (args && json_object_object_get_ex(args, "id", &v)) {
		if (proto_cstr(v, &s, &len) < 0) {
			proto_err_set(err, PROTO_ERR_ARG,
				      "Parameter 'id' is not a valid instance id: it contains a NUL "
				      "character");
			return -EINVAL;
		}
		if (mgr_id_check(s, len, &why) < 0) {
			proto_err_set(err, PROTO_ERR_ARG,
				      "Parameter 'id' is not a valid instance id: %s", why);
			return -EINVAL;
		}
		req->inst = s;
	}
	if (args && json_object_object_get_ex(args, "start", &v))
		req->start = json_object_get_boolean(v);
	if (args && json_object_object_get_ex(args, "purge", &v))
		req->purge = json_object_get_boolean(v);
	req->policy = PROTO_RESTART_ON_FAILURE;
	if (args && json_object_object_get_ex(args, "restart", &v)) {
		if (proto_cstr(v, &s, NULL) < 0 || proto_policy_parse(s, &req->policy) < 0) {
			proto_err_set(err, PROTO_ERR_ARG,
				      "Parameter 'restart' must be 'always', 'on-failure' or 'never'");
			return -EINVAL;
		}
	}
	if (args && json_object_object_get_ex(args, "encrypted", &v))
		req->encrypted = json_object_get_boolean(v);
	if (args && json_object_object_get_ex(args, "file", &v)) {
		/* vtpmd's working directory means nothing to the client */
		if (proto_cstr(v, &s, &len) < 0 || len == 0 || s[0] != '/' || len >= 4096) {
			proto_err_set(err, PROTO_ERR_ARG,
				      "Parameter 'file' must be an absolute path (no NUL, < 4096 bytes)");
			return -EINVAL;
		}
		req->file = s;
	}
	if (args && json_object_object_get_ex(args, "data", &v)) {
		if (proto_cstr(v, &s, &len) < 0) {
			proto_err_set(err, PROTO_ERR_ARG, "Parameter 'data' contains a NUL character");
			return -EINVAL;
		}
		req->data = s;
		req->datalen = len;
	}
	if (req->cmd == PROTO_CMD_IMPORT_STATE && !req->file == !req->data) {
		proto_err_set(err, PROTO_ERR_ARG,
			      "import-state needs exactly one of 'file' and 'data'");
		return -EINVAL;
	}
	if (req->cmd == PROTO_CMD_CREATE && args && json_object_object_get_ex(args, "argv", &v))
		return proto_parse_argv(v, req, err);
	return 0;
}

static bool proto_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

int proto_parse(const char *line, size_t len, struct proto_req *req, struct proto_error *err)
{
	const struct proto_cmd_spec *spec = NULL;
	struct json_tokener *tok;
	json_object *exec, *args = NULL;
	enum json_tokener_error jerr;
	const char *name;
	size_t end;

	memset(req, 0, sizeof(*req));
	err->cls = NULL;
	err->desc[0] = '\0';
	if (proto_blank(line, len))
		return 1;
	if (len > PROTO_MAX_LINE) {
		proto_err_set(err, PROTO_ERR_TOOLONG, "message longer than %d bytes", PROTO_MAX_LINE);
		return -EINVAL;
	}
	/* json-c would stop at a raw NUL and report success for the prefix,
	 * and it lets raw control characters through inside strings; JSON
	 * allows neither. */
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];

		if (ch == '\0') {
			proto_err_set(err, PROTO_ERR_PARSE, "message contains a NUL byte");
			return -EINVAL;
		}
		if (ch < 0x20 && ch != '\t' && ch != '\r') {
			proto_err_set(err, PROTO_ERR_PARSE,
				      "message contains a raw control character at offset %zu", i);
			return -EINVAL;
		}
	}
	tok = json_tokener_new_ex(PROTO_MAX_DEPTH);
	if (!tok) {
		proto_err_set(err, PROTO_ERR_GENERIC, "out of memory");
		return -ENOMEM;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	req->root = json_tokener_parse_ex(tok, line, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		/* A bare literal ("true", "5") is only complete once something
		 * follows it: the end of the line is such a delimiter. */
		req->root = json_tokener_parse_ex(tok, " ", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
	}
	json_tokener_free(tok);
	if (jerr == json_tokener_continue) {
		json_object_put(req->root);
		req->root = NULL;
		proto_err_set(err, PROTO_ERR_PARSE, "incomplete JSON text");
		return -EINVAL;
	}
	if (jerr != json_tokener_success) {
		json_object_put(req->root);
		req->root = NULL;
		proto_err_set(err, PROTO_ERR_PARSE, "invalid JSON at offset %zu: %s", end,
			      json_tokener_error_desc(jerr));
		return -EINVAL;
	}
	if (!proto_blank(line + end, len - end)) {
		proto_err_set(err, PROTO_ERR_PARSE,
			      "unexpected data after the JSON object at offset %zu "
			      "(one request per line)",
			      end);
		return -EINVAL;
	}
	/* (JSON null parses to a NULL object) */
	if (!req->root || !json_object_is_type(req->root, json_type_object)) {
		proto_err_set(err, PROTO_ERR_REQUEST, "a request must be a JSON object");
		return -EINVAL;
	}
	/* The id first, so that every later error can echo it. */
	json_object_object_get_ex(req->root, "id", &req->id);

	json_object_object_foreach(req->root, key, val) {
		(void)val;
		if (strcmp(key, "execute") && strcmp(key, "arguments") && strcmp(key, "id")) {
			proto_err_set(err, PROTO_ERR_REQUEST, "unknown member '%.*s' in the request",
				      proto_clip(key), key);
			return -EINVAL;
		}
	}
	if (!json_object_object_get_ex(req->root, "execute", &exec)) {
		proto_err_set(err, PROTO_ERR_REQUEST, "the request has no 'execute' member");
		return -EINVAL;
	}
	if (!json_object_is_type(exec, json_type_string) || proto_cstr(exec, &name, NULL) < 0) {
		proto_err_set(err, PROTO_ERR_REQUEST, "'execute' must be a string");
		return -EINVAL;
	}
	if (json_object_object_get_ex(req->root, "arguments", &args) &&
	    !json_object_is_type(args, json_type_object)) {
		proto_err_set(err, PROTO_ERR_REQUEST, "'arguments' must be an object");
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(proto_cmds) / sizeof(proto_cmds[0]); i++) {
		if (strcmp(proto_cmds[i].name, name) == 0) {
			spec = &proto_cmds[i];
			break;
		}
	}
	if (!spec) {
		proto_err_set(err, PROTO_ERR_NOCMD, "The command %.*s has not been found",
			      proto_clip(name), name);
		return -EINVAL;
	}
	req->cmd = spec->cmd;
	req->name = spec->name;
	if (proto_check_args(spec, args, err) < 0)
		return -EINVAL;
	return proto_parse_args(args, req, err) < 0 ? -EINVAL : 0;
}

void proto_req_free(struct proto_req *req)
{
	free(req->argv);
	json_object_put(req->root);
	memset(req, 0, sizeof(*req));
}

/* ---- messages ---- */

static void proto_add_id(json_object *msg, json_object *id)
{
	if (id)
		json_object_object_add(msg, "id", json_object_get(id));
}

json_object *proto_msg_return(json_object *ret, json_object *id)
{
	json_object *msg = json_object_new_object();

	if (!msg) {
		json_object_put(ret);
		return NULL;
	}
	json_object_object_add(msg, "return", ret ? ret : json_object_new_object());
	proto_add_id(msg, id);
	return msg;
}

json_object *proto_msg_error(const char *cls, const char *desc, json_object *id)
{
	json_object *msg = json_object_new_object(), *e = json_object_new_object();

	if (!msg || !e) {
		json_object_put(msg);
		json_object_put(e);
		return NULL;
	}
	json_object_object_add(e, "class", json_object_new_string(cls));
	json_object_object_add(e, "desc", json_object_new_string(desc));
	json_object_object_add(msg, "error", e);
	proto_add_id(msg, id);
	return msg;
}

json_object *proto_msg_event(const char *name, json_object *data, const struct timespec *now)
{
	json_object *msg = json_object_new_object(), *ts = json_object_new_object();

	if (!msg || !ts) {
		json_object_put(msg);
		json_object_put(ts);
		json_object_put(data);
		return NULL;
	}
	json_object_object_add(msg, "event", json_object_new_string(name));
	json_object_object_add(msg, "data", data ? data : json_object_new_object());
	json_object_object_add(ts, "seconds", json_object_new_int64((int64_t)now->tv_sec));
	json_object_object_add(ts, "microseconds", json_object_new_int64(now->tv_nsec / 1000));
	json_object_object_add(msg, "timestamp", ts);
	return msg;
}

char *proto_serialize(json_object *msg, size_t *len)
{
	size_t n;
	const char *s = json_object_to_json_string_length(
		msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	char *out;

	if (!s)
		return NULL;
	out = malloc(n + 2);
	if (!out)
		return NULL;
	memcpy(out, s, n);
	out[n] = '\n';
	out[n + 1] = '\0';
	*len = n + 1;
	return out;
}
