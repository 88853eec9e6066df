/* Unit tests for vtpmd's management protocol codec (src/manager/protocol.c)
 * and the spawner's socketpair codec (src/manager/spawner.c): every malformed
 * request we can think of, and the exact shape of replies and events. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager/protocol.h"
#include "manager/spawner.h"

static struct proto_req R;
static struct proto_error E;

static int parse_len(const char *s, size_t len)
{
	proto_req_free(&R);
	return proto_parse(s, len, &R, &E);
}

static int parse(const char *s)
{
	return parse_len(s, strlen(s));
}

static void fini(void)
{
	proto_req_free(&R);
}

TestSuite(mgr_protocol, .fini = fini);

/* the request must fail with class cls and a description containing needle */
static void expect_err(const char *line, const char *cls, const char *needle)
{
	int rc = parse(line);

	cr_expect_eq(rc, -EINVAL, "'%s' should fail (rc %d)", line, rc);
	cr_expect(E.cls && strcmp(E.cls, cls) == 0, "'%s': class %s, expected %s", line,
		  E.cls ? E.cls : "(null)", cls);
	if (needle)
		cr_expect(strstr(E.desc, needle), "'%s': desc '%s' lacks '%s'", line, E.desc,
			  needle);
}

/* ---- valid requests ---- */

Test(mgr_protocol, create_full)
{
	int rc = parse("{\"execute\":\"create\",\"arguments\":{\"id\":\"vm1\",\"argv\":[\"socket\","
		       "\"--tpm2\"],\"start\":true,\"restart\":\"always\"},\"id\":42}");

	cr_assert_eq(rc, 0, "%s", E.desc);
	cr_expect_eq(R.cmd, PROTO_CMD_CREATE);
	cr_expect_str_eq(R.name, "create");
	cr_expect_str_eq(R.inst, "vm1");
	cr_expect_eq(R.argc, 2);
	cr_expect_str_eq(R.argv[0], "socket");
	cr_expect_str_eq(R.argv[1], "--tpm2");
	cr_expect_null(R.argv[2]);
	cr_expect(R.start);
	cr_expect_eq(R.policy, PROTO_RESTART_ALWAYS);
	cr_expect_eq(json_object_get_int(R.id), 42);
}

Test(mgr_protocol, every_swtpm_interface_is_accepted)
{
	static const char *const ifaces[] = { "socket", "chardev", "cuse" };

	for (size_t i = 0; i < 3; i++) {
		char line[160];

		snprintf(line, sizeof(line),
			 "{\"execute\":\"create\",\"arguments\":{\"id\":\"a\",\"argv\":"
			 "[\"%s\",\"--tpm2\"]}}",
			 ifaces[i]);
		cr_assert_eq(parse(line), 0, "%s: %s", ifaces[i], E.desc);
		cr_expect_str_eq(R.argv[0], ifaces[i]);
	}
}

Test(mgr_protocol, create_defaults)
{
	cr_assert_eq(parse("{\"execute\":\"create\",\"arguments\":{\"id\":\"a\",\"argv\":"
			   "[\"socket\"]}}"),
		     0);
	cr_expect_not(R.start);
	cr_expect_eq(R.policy, PROTO_RESTART_ON_FAILURE);
	cr_expect_null(R.id);
}

Test(mgr_protocol, every_command)
{
	static const struct {
		const char *line;
		enum proto_cmd cmd;
	} t[] = {
		{ "{\"execute\":\"start\",\"arguments\":{\"id\":\"x\"}}", PROTO_CMD_START },
		{ "{\"execute\":\"stop\",\"arguments\":{\"id\":\"x\"}}", PROTO_CMD_STOP },
		{ "{\"execute\":\"restart\",\"arguments\":{\"id\":\"x\"}}", PROTO_CMD_RESTART },
		{ "{\"execute\":\"destroy\",\"arguments\":{\"id\":\"x\",\"purge\":true}}",
		  PROTO_CMD_DESTROY },
		{ "{\"execute\":\"status\",\"arguments\":{\"id\":\"x\"}}", PROTO_CMD_STATUS },
		{ "{\"execute\":\"list\"}", PROTO_CMD_LIST },
		{ "{\"execute\":\"list\",\"arguments\":{}}", PROTO_CMD_LIST },
		{ "{\"execute\":\"query-version\"}", PROTO_CMD_QUERY_VERSION },
		{ "{\"execute\":\"subscribe\"}", PROTO_CMD_SUBSCRIBE },
		{ "{\"execute\":\"unsubscribe\"}", PROTO_CMD_UNSUBSCRIBE },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		cr_expect_eq(parse(t[i].line), 0, "%s: %s", t[i].line, E.desc);
		cr_expect_eq(R.cmd, t[i].cmd, "%s", t[i].line);
	}
	cr_assert_eq(parse("{\"execute\":\"destroy\",\"arguments\":{\"id\":\"x\",\"purge\":true}}"),
		     0);
	cr_expect(R.purge);
}

Test(mgr_protocol, whitespace_and_member_order)
{
	cr_expect_eq(parse("  { \"id\" : \"r1\" , \"arguments\" : { \"id\" : \"x\" } , "
			   "\"execute\" : \"status\" }  \r"),
		     0, "%s", E.desc);
	cr_expect_str_eq(json_object_get_string(R.id), "r1");
}

Test(mgr_protocol, blank_lines_are_ignored)
{
	cr_expect_eq(parse(""), 1);
	cr_expect_eq(parse("   "), 1);
	cr_expect_eq(parse("\r"), 1);
	cr_expect_eq(parse(" \t "), 1);
}

/* ---- malformed JSON ---- */

Test(mgr_protocol, malformed_json)
{
	static const char *const bad[] = {
		"{",
		"}",
		"not json",
		"{\"execute\":}",
		"{\"execute\":\"list\",}",
		"{'execute':'list'}",
		"{\"execute\":\"list\"",
		"{\"execute\" \"list\"}",
		"{\"execute\":\"li\x01st\"}",
		"{\"execute\":\"list\"}\x1b",
		"{\"execute\":\"list\"}}",
		"{\"execute\":\"list\"} {\"execute\":\"list\"}",
		"{\"execute\":\"list\"} x",
		"{\"execute\":\"\\x41\"}",
		"\xff\xfe",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_err(bad[i], PROTO_ERR_PARSE, NULL);
}

Test(mgr_protocol, raw_nul_byte)
{
	cr_expect_eq(parse_len("{\"execute\":\"list\"}\0junk", 23), -EINVAL);
	cr_expect_str_eq(E.cls, PROTO_ERR_PARSE);
	cr_expect(strstr(E.desc, "NUL"));
}

Test(mgr_protocol, nesting_too_deep)
{
	char buf[256];
	size_t n = 0;

	n += (size_t)snprintf(buf, sizeof(buf), "{\"execute\":\"list\",\"id\":");
	for (int i = 0; i < 40; i++)
		buf[n++] = '[';
	for (int i = 0; i < 40; i++)
		buf[n++] = ']';
	buf[n++] = '}';
	buf[n] = '\0';
	expect_err(buf, PROTO_ERR_PARSE, NULL);
}

Test(mgr_protocol, too_long)
{
	size_t len = PROTO_MAX_LINE + 10;
	char *s = malloc(len + 1);

	cr_assert_not_null(s);
	memset(s, ' ', len);
	s[0] = '{';
	s[len] = '\0';
	s[len - 1] = '}';
	cr_expect_eq(parse_len(s, len), -EINVAL);
	cr_expect_str_eq(E.cls, PROTO_ERR_TOOLONG);
	free(s);
}

/* ---- request structure ---- */

Test(mgr_protocol, not_an_object)
{
	static const char *const bad[] = { "[]", "[1,2]", "\"list\"", "5", "null", "true" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_err(bad[i], PROTO_ERR_REQUEST, "object");
}

Test(mgr_protocol, bad_execute)
{
	expect_err("{}", PROTO_ERR_REQUEST, "execute");
	expect_err("{\"id\":1}", PROTO_ERR_REQUEST, "execute");
	expect_err("{\"execute\":5}", PROTO_ERR_REQUEST, "string");
	expect_err("{\"execute\":null}", PROTO_ERR_REQUEST, "string");
	expect_err("{\"execute\":[\"list\"]}", PROTO_ERR_REQUEST, "string");
	expect_err("{\"execute\":\"li\\u0000st\"}", PROTO_ERR_REQUEST, "string");
}

Test(mgr_protocol, unknown_member)
{
	expect_err("{\"execute\":\"list\",\"args\":{}}", PROTO_ERR_REQUEST, "args");
}

Test(mgr_protocol, arguments_not_object)
{
	expect_err("{\"execute\":\"list\",\"arguments\":[]}", PROTO_ERR_REQUEST, "arguments");
	expect_err("{\"execute\":\"list\",\"arguments\":\"x\"}", PROTO_ERR_REQUEST, "arguments");
	expect_err("{\"execute\":\"list\",\"arguments\":null}", PROTO_ERR_REQUEST, "arguments");
}

Test(mgr_protocol, unknown_command_echoes_id)
{
	expect_err("{\"execute\":\"nope\",\"id\":\"abc\"}", PROTO_ERR_NOCMD, "nope");
	cr_expect_str_eq(json_object_get_string(R.id), "abc");
	expect_err("{\"execute\":\"migrate\",\"arguments\":{\"id\":\"x\"}}", PROTO_ERR_NOCMD,
		   NULL);
	expect_err("{\"execute\":\"LIST\"}", PROTO_ERR_NOCMD, NULL);
	expect_err("{\"execute\":\"\"}", PROTO_ERR_NOCMD, NULL);
}

Test(mgr_protocol, export_import_state)
{
	cr_assert_eq(parse("{\"execute\":\"export-state\",\"arguments\":{\"id\":\"x\"}}"), 0);
	cr_expect_eq(R.cmd, PROTO_CMD_EXPORT_STATE);
	cr_expect_null(R.file);
	cr_expect(!R.encrypted);
	cr_assert_eq(parse("{\"execute\":\"export-state\",\"arguments\":{\"id\":\"x\","
			   "\"file\":\"/tmp/s\",\"encrypted\":true}}"),
		     0);
	cr_expect_str_eq(R.file, "/tmp/s");
	cr_expect(R.encrypted);
	cr_assert_eq(parse("{\"execute\":\"import-state\",\"arguments\":{\"id\":\"x\","
			   "\"data\":\"AAAA\"}}"),
		     0);
	cr_expect_eq(R.cmd, PROTO_CMD_IMPORT_STATE);
	cr_expect_str_eq(R.data, "AAAA");
	cr_expect_eq(R.datalen, 4);
	expect_err("{\"execute\":\"import-state\",\"arguments\":{\"id\":\"x\"}}", PROTO_ERR_ARG,
		   "exactly one");
	expect_err("{\"execute\":\"import-state\",\"arguments\":{\"id\":\"x\",\"file\":\"/a\","
		   "\"data\":\"AAAA\"}}",
		   PROTO_ERR_ARG, "exactly one");
	expect_err("{\"execute\":\"export-state\",\"arguments\":{\"id\":\"x\",\"file\":\"rel\"}}",
		   PROTO_ERR_ARG, "absolute");
	expect_err("{\"execute\":\"export-state\",\"arguments\":{\"id\":\"x\",\"file\":\"\"}}",
		   PROTO_ERR_ARG, "absolute");
	expect_err("{\"execute\":\"export-state\",\"arguments\":{\"id\":\"x\",\"data\":\"A\"}}",
		   PROTO_ERR_ARG, "unexpected");
	expect_err("{\"execute\":\"import-state\",\"arguments\":{\"id\":\"x\",\"encrypted\":true,"
		   "\"file\":\"/a\"}}",
		   PROTO_ERR_ARG, "unexpected");
	expect_err("{\"execute\":\"export-state\",\"arguments\":{\"file\":\"/a\"}}", PROTO_ERR_ARG,
		   "missing");
}

Test(mgr_protocol, id_echoed_on_argument_errors)
{
	expect_err("{\"execute\":\"start\",\"id\":{\"n\":[1,2]}}", PROTO_ERR_ARG, "missing");
	cr_assert_not_null(R.id);
	cr_expect(json_object_is_type(R.id, json_type_object));
}

/* ---- arguments ---- */

Test(mgr_protocol, missing_arguments)
{
	expect_err("{\"execute\":\"start\"}", PROTO_ERR_ARG, "'id' is missing");
	expect_err("{\"execute\":\"stop\",\"arguments\":{}}", PROTO_ERR_ARG, "'id' is missing");
	expect_err("{\"execute\":\"create\",\"arguments\":{\"id\":\"a\"}}", PROTO_ERR_ARG,
		   "'argv' is missing");
	expect_err("{\"execute\":\"create\",\"arguments\":{\"argv\":[\"socket\"]}}", PROTO_ERR_ARG,
		   "'id' is missing");
}

Test(mgr_protocol, unexpected_arguments)
{
	expect_err("{\"execute\":\"list\",\"arguments\":{\"id\":\"x\"}}", PROTO_ERR_ARG,
		   "unexpected");
	expect_err("{\"execute\":\"start\",\"arguments\":{\"id\":\"x\",\"purge\":true}}",
		   PROTO_ERR_ARG, "'purge'");
	expect_err("{\"execute\":\"stop\",\"arguments\":{\"id\":\"x\",\"force\":1}}", PROTO_ERR_ARG,
		   "'force'");
}

Test(mgr_protocol, wrong_types)
{
	expect_err("{\"execute\":\"start\",\"arguments\":{\"id\":5}}", PROTO_ERR_ARG, "string");
	expect_err("{\"execute\":\"start\",\"arguments\":{\"id\":null}}", PROTO_ERR_ARG, "string");
	expect_err("{\"execute\":\"start\",\"arguments\":{\"id\":[\"x\"]}}", PROTO_ERR_ARG,
		   "string");
	expect_err("{\"execute\":\"destroy\",\"arguments\":{\"id\":\"x\",\"purge\":1}}",
		   PROTO_ERR_ARG, "boolean");
	expect_err("{\"execute\":\"destroy\",\"arguments\":{\"id\":\"x\",\"purge\":\"yes\"}}",
		   PROTO_ERR_ARG, "boolean");
	expect_err("{\"execute\":\"create\",\"arguments\":{\"id\":\"x\",\"argv\":\"socket\"}}",
		   PROTO_ERR_ARG, "array");
	expect_err("{\"execute\":\"create\",\"arguments\":{\"id\":\"x\",\"argv\":{}}}",
		   PROTO_ERR_ARG, "array");
	expect_err("{\"execute\":\"create\",\"arguments\":{\"id\":\"x\",\"argv\":[\"socket\"],"
		   "\"start\":\"true\"}}",
		   PROTO_ERR_ARG, "boolean");
	expect_err("{\"execute\":\"create\",\"arguments\":{\"id\":\"x\",\"argv\":[\"socket\"],"
		   "\"restart\":true}}",
		   PROTO_ERR_ARG, "string");
}

Test(mgr_protocol, bad_instance_ids)
{
	static const char *const bad[] = {
		"{\"execute\":\"start\",\"arguments\":{\"id\":\"\"}}",
		"{\"execute\":\"start\",\"arguments\":{\"id\":\"..\"}}",
		"{\"execute\":\"start\",\"arguments\":{\"id\":\"../etc\"}}",
		"{\"execute\":\"start\",\"arguments\":{\"id\":\"a/b\"}}",
		"{\"execute\":\"start\",\"arguments\":{\"id\":\"/x\"}}",
		"{\"execute\":\"start\",\"arguments\":{\"id\":\".x\"}}",
		"{\"execute\":\"start\",\"arguments\":{\"id\":\"a\\u0000b\"}}",
		"{\"execute\":\"start\",\"arguments\":{\"id\":\"a b\"}}",
		"{\"execute\":\"start\",\"arguments\":{\"id\":\"\\u00e9\"}}",
		"{\"execute\":\"start\",\"arguments\":{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaa\"}}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_err(bad[i], PROTO_ERR_ARG, "instance id");
}

Test(mgr_protocol, restart_policies)
{
	static const char *const names[] = { "always", "on-failure", "never" };
	static const enum proto_policy vals[] = { PROTO_RESTART_ALWAYS, PROTO_RESTART_ON_FAILURE,
						  PROTO_RESTART_NEVER };
	char line[200];

	for (int i = 0; i < 3; i++) {
		snprintf(line, sizeof(line),
			 "{\"execute\":\"create\",\"arguments\":{\"id\":\"a\",\"argv\":[\"socket\"],"
			 "\"restart\":\"%s\"}}",
			 names[i]);
		cr_expect_eq(parse(line), 0, "%s", E.desc);
		cr_expect_eq(R.policy, vals[i]);
		cr_expect_str_eq(proto_policy_name(vals[i]), names[i]);
	}
	expect_err("{\"execute\":\"create\",\"arguments\":{\"id\":\"a\",\"argv\":[\"socket\"],"
		   "\"restart\":\"sometimes\"}}",
		   PROTO_ERR_ARG, "restart");
	expect_err("{\"execute\":\"create\",\"arguments\":{\"id\":\"a\",\"argv\":[\"socket\"],"
		   "\"restart\":\"Always\"}}",
		   PROTO_ERR_ARG, "restart");
	expect_err("{\"execute\":\"create\",\"arguments\":{\"id\":\"a\",\"argv\":[\"socket\"],"
		   "\"restart\":\"never\\u0000x\"}}",
		   PROTO_ERR_ARG, "restart");
}

Test(mgr_protocol, policy_parse)
{
	enum proto_policy p;

	cr_expect_eq(proto_policy_parse("never", &p), 0);
	cr_expect_eq(p, PROTO_RESTART_NEVER);
	cr_expect_eq(proto_policy_parse("", &p), -EINVAL);
	cr_expect_eq(proto_policy_parse(NULL, &p), -EINVAL);
	cr_expect_str_eq(proto_policy_name((enum proto_policy)99), "?");
}

/* ---- argv ---- */

static char *create_with_argv(const char *argv_json)
{
	char *s = NULL;

	cr_assert(asprintf(&s, "{\"execute\":\"create\",\"arguments\":{\"id\":\"a\",\"argv\":%s}}",
			   argv_json) > 0);
	return s;
}

Test(mgr_protocol, argv_shapes)
{
	static const struct {
		const char *argv, *needle;
	} bad[] = {
		{ "[]", "empty" },
		{ "[\"socket\",5]", "argv[1] must be a string" },
		{ "[\"socket\",null]", "argv[1] must be a string" },
		{ "[\"socket\",[\"x\"]]", "argv[1] must be a string" },
		{ "[\"socket\",\"--tpm2\\u0000--x\"]", "NUL" },
		{ "[\"sock\",\"--tpm2\"]", "argv[0] must be the interface" },
		{ "[\"swtpm_cuse\",\"-n\",\"x\"]", "argv[0] must be the interface" },
		{ "[\"--tpm2\"]", "argv[0] must be the interface" },
		{ "[\"swtpm\",\"socket\"]", "argv[0] must be the interface" },
		{ "[\"\"]", "argv[0]" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *s = create_with_argv(bad[i].argv);

		expect_err(s, PROTO_ERR_ARG, bad[i].needle);
		free(s);
	}
}

Test(mgr_protocol, argv_bounds)
{
	char *arr = malloc(PROTO_MAX_ARGV_BYTES * 2), *s;
	size_t n = 0;

	cr_assert_not_null(arr);
	/* too many elements */
	n = (size_t)sprintf(arr, "[\"socket\"");
	for (int i = 0; i < PROTO_MAX_ARGC; i++)
		n += (size_t)sprintf(arr + n, ",\"x\"");
	sprintf(arr + n, "]");
	s = create_with_argv(arr);
	expect_err(s, PROTO_ERR_ARG, "more than");
	free(s);

	/* exactly the maximum count is fine */
	n = (size_t)sprintf(arr, "[\"socket\"");
	for (int i = 1; i < PROTO_MAX_ARGC; i++)
		n += (size_t)sprintf(arr + n, ",\"x\"");
	sprintf(arr + n, "]");
	s = create_with_argv(arr);
	cr_expect_eq(parse(s), 0, "%s", E.desc);
	cr_expect_eq(R.argc, PROTO_MAX_ARGC);
	free(s);

	/* one element too long */
	n = (size_t)sprintf(arr, "[\"socket\",\"");
	memset(arr + n, 'y', PROTO_MAX_ARG_LEN + 1);
	n += PROTO_MAX_ARG_LEN + 1;
	sprintf(arr + n, "\"]");
	s = create_with_argv(arr);
	expect_err(s, PROTO_ERR_ARG, "longer than");
	free(s);

	/* many long elements: the total is bounded */
	n = (size_t)sprintf(arr, "[\"socket\"");
	for (int i = 0; i < 9; i++) {
		arr[n++] = ',';
		arr[n++] = '"';
		memset(arr + n, 'z', PROTO_MAX_ARG_LEN);
		n += PROTO_MAX_ARG_LEN;
		arr[n++] = '"';
	}
	sprintf(arr + n, "]");
	s = create_with_argv(arr);
	expect_err(s, PROTO_ERR_ARG, "in total");
	free(s);
	free(arr);
}

/* ---- messages ---- */

static char *ser(json_object *msg)
{
	size_t len;
	char *s = proto_serialize(msg, &len);

	cr_assert_not_null(s);
	cr_expect_eq(strlen(s), len);
	cr_expect_eq(s[len - 1], '\n', "one line, newline-terminated");
	cr_expect_null(memchr(s, '\n', len - 1), "no newline inside");
	json_object_put(msg);
	return s;
}

Test(mgr_protocol, return_message)
{
	json_object *id = json_object_new_int(7), *ret = json_object_new_object();
	char *s;

	json_object_object_add(ret, "path", json_object_new_string("/a/b"));
	s = ser(proto_msg_return(ret, id));
	cr_expect_str_eq(s, "{\"return\":{\"path\":\"/a/b\"},\"id\":7}\n");
	free(s);
	s = ser(proto_msg_return(NULL, NULL));
	cr_expect_str_eq(s, "{\"return\":{}}\n");
	free(s);
	json_object_put(id);
}

Test(mgr_protocol, error_message)
{
	json_object *id = json_object_new_string("x");
	char *s = ser(proto_msg_error(PROTO_ERR_NOCMD, "The command \"q\" has not been found", id));

	cr_expect_str_eq(s, "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"The command "
			    "\\\"q\\\" has not been found\"},\"id\":\"x\"}\n");
	free(s);
	json_object_put(id);
}

Test(mgr_protocol, event_message)
{
	struct timespec ts = { .tv_sec = 1700000000, .tv_nsec = 123456789 };
	json_object *d = json_object_new_object();
	char *s;

	json_object_object_add(d, "id", json_object_new_string("vm1"));
	s = ser(proto_msg_event(PROTO_EV_EXITED, d, &ts));
	cr_expect_str_eq(s, "{\"event\":\"instance-exited\",\"data\":{\"id\":\"vm1\"},"
			    "\"timestamp\":{\"seconds\":1700000000,\"microseconds\":123456}}\n");
	free(s);
}

Test(mgr_protocol, roundtrip_through_parser)
{
	/* what vtpmctl sends must parse, whatever json-c escapes */
	json_object *req = json_object_new_object(), *args = json_object_new_object(),
		    *argv = json_object_new_array();
	size_t len;
	char *s;

	json_object_array_add(argv, json_object_new_string("socket"));
	json_object_array_add(argv, json_object_new_string("--server"));
	json_object_array_add(argv, json_object_new_string("type=unixio,path=/run/\"q\"\\x"));
	json_object_object_add(args, "id", json_object_new_string("vm-1"));
	json_object_object_add(args, "argv", argv);
	json_object_object_add(req, "execute", json_object_new_string("create"));
	json_object_object_add(req, "arguments", args);
	s = proto_serialize(req, &len);
	json_object_put(req);
	cr_assert_eq(parse_len(s, len - 1), 0, "%s", E.desc);
	cr_expect_str_eq(R.argv[2], "type=unixio,path=/run/\"q\"\\x");
	free(s);
}

/* ---- spawner codec ---- */

static void fill_req(struct spawn_req *q)
{
	memset(q, 0, sizeof(*q));
	q->seq = 77;
	q->id = "vm1";
	q->dir = "/var/lib/vtpmd/vm1";
	q->log = "/var/lib/vtpmd/vm1/log";
	q->comm = "vtpm-vm1";
	q->argv[0] = "socket";
	q->argv[1] = "--tpm2";
	q->argv[2] = "";
	q->argc = 3;
}

Test(mgr_protocol, spawn_roundtrip)
{
	static uint8_t buf[SPAWN_MAX_MSG];
	struct spawn_req q, d;
	ssize_t n;

	fill_req(&q);
	n = spawn_encode(&q, buf, sizeof(buf));
	cr_assert_gt(n, 16);
	cr_assert_eq(spawn_decode(buf, (size_t)n, &d), 0);
	cr_expect_eq(d.seq, 77);
	cr_expect_str_eq(d.id, "vm1");
	cr_expect_str_eq(d.dir, q.dir);
	cr_expect_str_eq(d.log, q.log);
	cr_expect_str_eq(d.comm, q.comm);
	cr_expect_eq(d.argc, 3);
	cr_expect_str_eq(d.argv[1], "--tpm2");
	cr_expect_str_eq(d.argv[2], "");
	cr_expect_null(d.argv[3]);
}

Test(mgr_protocol, spawn_pool_flag)
{
	static uint8_t buf[SPAWN_MAX_MSG];
	struct spawn_req q, d;
	ssize_t n;

	fill_req(&q);
	q.pool = true;
	n = spawn_encode(&q, buf, sizeof(buf));
	cr_assert_gt(n, 16);
	cr_assert_eq(spawn_decode(buf, (size_t)n, &d), 0);
	cr_expect(d.pool, "a pool request decodes as one");
	cr_expect_str_eq(d.dir, q.dir);
	fill_req(&q);
	n = spawn_encode(&q, buf, sizeof(buf));
	cr_assert_eq(spawn_decode(buf, (size_t)n, &d), 0);
	cr_expect(!d.pool, "an instance request is not a pool one");
	/* any other magic is refused */
	buf[3] ^= 0x20;
	cr_expect_eq(spawn_decode(buf, (size_t)n, &d), -EINVAL);
}

Test(mgr_protocol, spawn_encode_limits)
{
	uint8_t small[24];
	static uint8_t buf[SPAWN_MAX_MSG];
	struct spawn_req q;

	fill_req(&q);
	cr_expect_eq(spawn_encode(&q, small, sizeof(small)), -EMSGSIZE);
	q.argc = 0;
	cr_expect_eq(spawn_encode(&q, buf, sizeof(buf)), -EINVAL);
	fill_req(&q);
	q.argc = SPAWN_MAX_ARGS + 1;
	cr_expect_eq(spawn_encode(&q, buf, sizeof(buf)), -EINVAL);
	fill_req(&q);
	q.log = NULL;
	cr_expect_eq(spawn_encode(&q, buf, sizeof(buf)), -EINVAL);
}

Test(mgr_protocol, spawn_decode_malformed)
{
	static uint8_t buf[SPAWN_MAX_MSG], copy[SPAWN_MAX_MSG];
	struct spawn_req q, d;
	ssize_t n;

	fill_req(&q);
	n = spawn_encode(&q, buf, sizeof(buf));
	cr_assert_gt(n, 0);

	/* every truncation */
	for (ssize_t len = 0; len < n; len++) {
		memcpy(copy, buf, (size_t)n);
		cr_expect_eq(spawn_decode(copy, (size_t)len, &d), -EINVAL, "len %zd", len);
	}
	/* bad magic */
	memcpy(copy, buf, (size_t)n);
	copy[0] ^= 1;
	cr_expect_eq(spawn_decode(copy, (size_t)n, &d), -EINVAL);
	/* string count off by one either way, and absurd */
	for (int delta = -1; delta <= 1; delta += 2) {
		memcpy(copy, buf, (size_t)n);
		copy[11] = (uint8_t)(copy[11] + delta);
		cr_expect_eq(spawn_decode(copy, (size_t)n, &d), -EINVAL, "delta %d", delta);
	}
	memcpy(copy, buf, (size_t)n);
	copy[8] = 0xff;
	cr_expect_eq(spawn_decode(copy, (size_t)n, &d), -EINVAL);
	/* payload length disagrees with the message */
	memcpy(copy, buf, (size_t)n);
	copy[15] = (uint8_t)(copy[15] + 1);
	cr_expect_eq(spawn_decode(copy, (size_t)n, &d), -EINVAL);
	/* last string not terminated */
	memcpy(copy, buf, (size_t)n);
	copy[n - 1] = 'x';
	cr_expect_eq(spawn_decode(copy, (size_t)n, &d), -EINVAL);
	/* a relative working directory */
	fill_req(&q);
	q.dir = "relative";
	n = spawn_encode(&q, buf, sizeof(buf));
	cr_expect_eq(spawn_decode(buf, (size_t)n, &d), -EINVAL);
}

/* Found by tests/fuzz/fuzz_mgr_protocol.c: names echoed in error messages were
 * cut at 64 bytes in the middle of a UTF-8 sequence, so the error reply to a
 * valid UTF-8 request was not valid UTF-8. The cut now backs off to the start
 * of the character. */
Test(mgr_protocol, error_echo_cut_on_utf8_boundary)
{
	/* 63 ASCII bytes, then "é" (c3 a9) straddling byte 64 */
	char name[63 + 2 + 2 + 1], line[256];
	const char *forms[] = {
		"{\"%s\":1}",
		"{\"execute\":\"%s\"}",
		"{\"execute\":\"start\",\"arguments\":{\"%s\":1}}",
		"{\"execute\":\"create\",\"arguments\":{\"id\":\"x\",\"argv\":[\"%s\"]}}",
	};

	memset(name, 'a', 63);
	memcpy(name + 63, "\xc3\xa9zz", 4);
	name[67] = '\0';
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		char *p;

		snprintf(line, sizeof(line), forms[i], name);
		cr_assert_eq(parse(line), -EINVAL, "%s", line);
		p = strstr(E.desc, "aaaa");
		cr_assert_not_null(p, "%s", E.desc);
		cr_expect_eq(strspn(p, "a"), 63, "%s", E.desc);
		/* the 'a's are followed by the message's own text, not half an é */
		cr_expect((unsigned char)p[63] < 0x80, "%s: byte 0x%02x after the cut", E.desc,
			  (unsigned char)p[63]);
	}
}
