/* The vtpmd management protocol (QMP-style newline-delimited JSON): request
 * parsing and validation, and the reply/error/event messages. Pure: no I/O. */
#ifndef VTPM_MGR_PROTOCOL_H
#define VTPM_MGR_PROTOCOL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Longest request line (without its newline) a client may send. */
#define PROTO_MAX_LINE 65536
/* Bounds on a create's swtpm command line. */
#define PROTO_MAX_ARGC 128
#define PROTO_MAX_ARG_LEN 4096
#define PROTO_MAX_ARGV_BYTES 32768
/* JSON nesting allowed in a request: requests are flat, so this is generous. */
#define PROTO_MAX_DEPTH 16

/* Error classes (the "class" member of an error reply). */
#define PROTO_ERR_PARSE "ParseError"
#define PROTO_ERR_REQUEST "InvalidRequest"
#define PROTO_ERR_NOCMD "CommandNotFound"
#define PROTO_ERR_ARG "InvalidArgument"
#define PROTO_ERR_NOTFOUND "InstanceNotFound"
#define PROTO_ERR_EXISTS "InstanceExists"
#define PROTO_ERR_STATE "InvalidState"
#define PROTO_ERR_START "StartFailed"
#define PROTO_ERR_GENERIC "GenericError"
#define PROTO_ERR_TOOLONG "MessageTooLong"
#define PROTO_ERR_PERM "PermissionDenied"
#define PROTO_ERR_BUSY "TooManyClients"
/* export-state/import-state: the state file is malformed or corrupt */
#define PROTO_ERR_BADFILE "InvalidStateFile"
/* export-state/import-state: the instance's ctrl channel failed or refused */
#define PROTO_ERR_CTRL "ControlChannelError"

/* Event names. */
#define PROTO_EV_STARTED "instance-started"
#define PROTO_EV_EXITED "instance-exited"
#define PROTO_EV_RESTARTED "instance-restarted"
#define PROTO_EV_FAILED "instance-failed"
#define PROTO_EV_STOPPED "instance-stopped"

enum proto_policy {
	PROTO_RESTART_ON_FAILURE = 0, /* the default */
	PROTO_RESTART_ALWAYS,
	PROTO_RESTART_NEVER,
};

const char *proto_policy_name(enum proto_policy p);
/* 0, or -EINVAL for anything but "always", "on-failure", "never". */
int proto_policy_parse(const char *s, enum proto_policy *out);

enum proto_cmd {
	PROTO_CMD_CREATE = 0,
	PROTO_CMD_START,
	PROTO_CMD_STOP,
	PROTO_CMD_RESTART,
	PROTO_CMD_DESTROY,
	PROTO_CMD_LIST,
	PROTO_CMD_STATUS,
	PROTO_CMD_QUERY_VERSION,
	PROTO_CMD_SUBSCRIBE,
	PROTO_CMD_UNSUBSCRIBE,
	PROTO_CMD_EXPORT_STATE,
	PROTO_CMD_IMPORT_STATE,
};

struct proto_error {
	const char *cls; /* one of PROTO_ERR_* */
	char desc[320];
};

/* A parsed, validated request. Strings point into `root`. */
struct proto_req {
	enum proto_cmd cmd;
	const char *name;  /* command name */
	json_object *root; /* the whole message (owned) */
	json_object *id;   /* the request's "id" member (borrowed) or NULL */
	const char *inst;  /* "id" argument: an instance id, validated */
	const char **argv; /* create: argc strings + NULL (array owned) */
	size_t argc;
	bool start;   /* create */
	bool purge;   /* destroy */
	enum proto_policy policy; /* create */
	const char *file;  /* export-state/import-state: absolute path or NULL */
	const char *data;  /* import-state: base64 state file or NULL */
	size_t datalen;
	bool encrypted;	   /* export-state */
};

/* Parse one line (without its newline). 0: *req is ready. 1: the line is
 * blank and is to be ignored. -EINVAL: *err says why; req->id is still set
 * when the message had a usable "id", so the error can echo it. Always call
 * proto_req_free() afterwards. */
int proto_parse(const char *line, size_t len, struct proto_req *req, struct proto_error *err);
void proto_req_free(struct proto_req *req);

void proto_err_set(struct proto_error *err, const char *cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Messages. Each returns a new object (NULL on allocation failure). `ret`
 * and `data` are consumed; `id` is only referenced. */
json_object *proto_msg_return(json_object *ret, json_object *id);
json_object *proto_msg_error(const char *cls, const char *desc, json_object *id);
json_object *proto_msg_event(const char *name, json_object *data, const struct timespec *now);

/* msg as one line with a trailing "\n" (malloc'd, *len without the NUL). */
char *proto_serialize(json_object *msg, size_t *len);

#endif
