/* vtpmctl: command-line client of vtpmd's management socket. One request per
 * run (or a subscription for `events`); tables for people, --json for scripts. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "vtpm_build.h"

#define CTL_DEFAULT_SOCKET "/run/vtpmd/vtpmd.sock"
#define CTL_MAX_LINE (16u * 1024u * 1024u)
#define CTL_REQ_ID 1

static const char *ctl_sock = CTL_DEFAULT_SOCKET;
static bool ctl_json;
static int ctl_timeout_s = 120;
static volatile sig_atomic_t ctl_interrupted;

static void ctl_usage(FILE *f)
{
	fprintf(f,
		"Usage: vtpmctl [--socket PATH] [--json] [--timeout SEC] COMMAND ...\n"
		"Commands:\n"
		"  create ID [--start] [--restart always|on-failure|never] -- SWTPM_ARGS...\n"
		"  start ID\n"
		"  stop ID\n"
		"  restart ID\n"
		"  destroy ID [--purge]\n"
		"  list\n"
		"  status ID\n"
		"  export ID FILE [--encrypted]   save the TPM state of a running instance\n"
		"  import ID FILE         load a state FILE into an instance (started if stopped)\n"
		"  events                 print events until interrupted\n"
		"  version\n"
		"SWTPM_ARGS is a `swtpm socket` command line (\"socket\" may be left out).\n"
		"Default socket: %s. See vtpmctl(8).\n",
		CTL_DEFAULT_SOCKET);
}

static void ctl_on_signal(int sig)
{
	(void)sig;
	ctl_interrupted = 1;
}

/* ---- connection ---- */

struct ctl_conn {
	int fd;
	char *buf;
	size_t len, cap;
};

static int ctl_connect(struct ctl_conn *c)
{
	struct sockaddr_un sa;

	memset(c, 0, sizeof(*c));
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(ctl_sock) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "vtpmctl: socket path too long: %s\n", ctl_sock);
		return -1;
	}
	strcpy(sa.sun_path, ctl_sock);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "vtpmctl: cannot connect to %s: %s\n", ctl_sock, strerror(errno));
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

static int ctl_send(struct ctl_conn *c, json_object *req)
{
	size_t len;
	const char *s = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN, &len);
	char *line = malloc(len + 1);
	size_t off = 0;

	if (!s || !line) {
		free(line);
		return -1;
	}
	memcpy(line, s, len);
	line[len++] = '\n';
	while (off < len) {
		ssize_t w = send(c->fd, line + off, len - off, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "vtpmctl: send: %s\n", strerror(errno));
			free(line);
			return -1;
		}
		off += (size_t)w;
	}
	free(line);
	return 0;
}

/* Next line from the server as JSON. 0, 1 (EOF), -1 (error/timeout/signal).
 * timeout_ms < 0: wait forever (until a signal). */
static int ctl_read_line(struct ctl_conn *c, json_object **out, char **raw, int timeout_ms)
{
	*out = NULL;
	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;

		if (nl) {
			size_t n = (size_t)(nl - c->buf);

			*nl = '\0';
			*out = json_tokener_parse(c->buf);
			if (raw)
				*raw = strdup(c->buf);
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			if (!*out) {
				fprintf(stderr, "vtpmctl: the server sent something that is not JSON\n");
				return -1;
			}
			return 0;
		}
		if (c->len == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 65536;
			char *b;

			if (cap > CTL_MAX_LINE) {
				fprintf(stderr, "vtpmctl: reply too long\n");
				return -1;
			}
			b = realloc(c->buf, cap);
			if (!b)
				return -1;
			c->buf = b;
			c->cap = cap;
		}
		{
			struct pollfd p = { .fd = c->fd, .events = POLLIN };
			int r = poll(&p, 1, timeout_ms);
			ssize_t n;

			if (ctl_interrupted)
				return -1;
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
			if (r == 0) {
				fprintf(stderr, "vtpmctl: no answer from vtpmd within %d s\n",
					timeout_ms / 1000);
				return -1;
			}
			n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				fprintf(stderr, "vtpmctl: recv: %s\n", strerror(errno));
				return -1;
			}
			if (n == 0)
				return 1;
			c->len += (size_t)n;
		}
	}
}

static void ctl_close(struct ctl_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	c->fd = -1;
	c->buf = NULL;
}

static const char *ctl_str(json_object *o, const char *key, const char *dflt)
{
	json_object *v;

	if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return dflt;
}

/* Print an error reply on stderr. */
static void ctl_print_error(json_object *msg)
{
	json_object *e = NULL;

	json_object_object_get_ex(msg, "error", &e);
	fprintf(stderr, "vtpmctl: %s: %s\n", ctl_str(e, "class", "Error"),
		ctl_str(e, "desc", "(no description)"));
}

/* Send one request and wait for its reply. Returns the "return" value
 * (referenced) or NULL after printing the error. */
static json_object *ctl_call(struct ctl_conn *c, const char *cmd, json_object *args)
{
	json_object *req = json_object_new_object(), *msg, *ret = NULL, *v;
	int r;

	json_object_object_add(req, "execute", json_object_new_string(cmd));
	if (args)
		json_object_object_add(req, "arguments", args);
	json_object_object_add(req, "id", json_object_new_int(CTL_REQ_ID));
	r = ctl_send(c, req);
	json_object_put(req);
	if (r < 0)
		return NULL;
	for (;;) {
		r = ctl_read_line(c, &msg, NULL, ctl_timeout_s > 0 ? ctl_timeout_s * 1000 : -1);
		if (r == 1)
			fprintf(stderr, "vtpmctl: vtpmd closed the connection\n");
		if (r != 0)
			return NULL;
		if (json_object_object_get_ex(msg, "event", NULL)) {
			json_object_put(msg);
			continue;
		}
		if (json_object_object_get_ex(msg, "error", NULL)) {
			/* ours, or a refusal sent before any request (no id) */
			ctl_print_error(msg);
			json_object_put(msg);
			return NULL;
		}
		if (json_object_object_get_ex(msg, "return", &v)) {
			ret = json_object_get(v);
			json_object_put(msg);
			return ret;
		}
		json_object_put(msg);
	}
}

/* ---- output ---- */

static void ctl_print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
}

static int64_t ctl_int(json_object *o, const char *key, int64_t dflt)
{
	json_object *v;

	if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int))
		return json_object_get_int64(v);
	return dflt;
}

static void ctl_duration(int64_t s, char *buf, size_t size)
{
	if (s < 0)
		snprintf(buf, size, "-");
	else if (s < 60)
		snprintf(buf, size, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(buf, size, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else if (s < 86400)
		snprintf(buf, size, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else
		snprintf(buf, size, "%lldd%02lldh", (long long)(s / 86400),
			 (long long)(s % 86400 / 3600));
}

static void ctl_exit_desc(json_object *es, char *buf, size_t size)
{
	const char *kind = ctl_str(es, "kind", NULL);

	if (!kind)
		snprintf(buf, size, "-");
	else if (strcmp(kind, "exited") == 0)
		snprintf(buf, size, "exited with status %lld", (long long)ctl_int(es, "value", 0));
	else if (strcmp(kind, "signaled") == 0)
		snprintf(buf, size, "killed by signal %lld (SIG%s)", (long long)ctl_int(es, "value", 0),
			 ctl_str(es, "signal", "?"));
	else
		snprintf(buf, size, "unknown (not a child of this vtpmd)");
}

static void ctl_print_list(json_object *arr)
{
	size_t n = json_object_array_length(arr);
	int wid = 2, wst = 5;
	char up[32];

	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		int l1 = (int)strlen(ctl_str(o, "id", "")), l2 = (int)strlen(ctl_str(o, "state", ""));

		wid = l1 > wid ? l1 : wid;
		wst = l2 > wst ? l2 : wst;
	}
	printf("%-*s  %-*s  %8s  %8s  %8s  %s\n", wid, "ID", wst, "STATE", "PID", "UPTIME",
	       "RESTARTS", "POLICY");
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		int64_t pid = ctl_int(o, "pid", -1);
		char pidbuf[24];

		if (pid > 0)
			snprintf(pidbuf, sizeof(pidbuf), "%lld", (long long)pid);
		else
			snprintf(pidbuf, sizeof(pidbuf), "-");
		ctl_duration(ctl_int(o, "uptime", -1), up, sizeof(up));
		printf("%-*s  %-*s  %8s  %8s  %8lld  %s%s\n", wid, ctl_str(o, "id", "?"), wst,
		       ctl_str(o, "state", "?"), pidbuf, up, (long long)ctl_int(o, "restarts", 0),
		       ctl_str(o, "restart", "?"),
		       json_object_get_boolean(json_object_object_get(o, "adopted")) ? " (adopted)"
										 : "");
	}
}

static void ctl_print_status(json_object *o)
{
	json_object *v;
	char buf[256];
	int64_t pid = ctl_int(o, "pid", -1), created = ctl_int(o, "created", 0);
	time_t t = (time_t)created;
	struct tm tm;

	printf("id:          %s\n", ctl_str(o, "id", "?"));
	printf("state:       %s\n", ctl_str(o, "state", "?"));
	if (pid > 0)
		printf("pid:         %lld%s\n", (long long)pid,
		       json_object_get_boolean(json_object_object_get(o, "adopted"))
			       ? " (adopted from an earlier vtpmd)"
			       : "");
	else
		printf("pid:         -\n");
	ctl_duration(ctl_int(o, "uptime", -1), buf, sizeof(buf));
	printf("uptime:      %s\n", buf);
	printf("restarts:    %lld\n", (long long)ctl_int(o, "restarts", 0));
	printf("restart:     %s\n", ctl_str(o, "restart", "?"));
	if (json_object_object_get_ex(o, "next-restart-ms", &v))
		printf("next try in: %lld ms\n", (long long)json_object_get_int64(v));
	ctl_exit_desc(json_object_object_get(o, "exit-status"), buf, sizeof(buf));
	printf("last exit:   %s\n", buf);
	printf("last error:  %s\n", ctl_str(o, "last-error", "-"));
	if (created > 0 && localtime_r(&t, &tm)) {
		strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S %z", &tm);
		printf("created:     %s\n", buf);
	}
	printf("dir:         %s\n", ctl_str(o, "dir", "-"));
	printf("log:         %s\n", ctl_str(o, "log", "-"));
	printf("argv:       ");
	if (json_object_object_get_ex(o, "argv", &v) && json_object_is_type(v, json_type_array))
		for (size_t i = 0; i < json_object_array_length(v); i++)
			printf(" %s", json_object_get_string(json_object_array_get_idx(v, i)));
	printf("\n");
}

static void ctl_print_event(json_object *msg)
{
	json_object *data = NULL, *ts = NULL;
	time_t sec;
	struct tm tm;
	char when[64];

	json_object_object_get_ex(msg, "data", &data);
	json_object_object_get_ex(msg, "timestamp", &ts);
	sec = (time_t)ctl_int(ts, "seconds", 0);
	localtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%s.%03lld %s", when, (long long)(ctl_int(ts, "microseconds", 0) / 1000),
	       ctl_str(msg, "event", "?"));
	if (data) {
		json_object_object_foreach(data, key, val) {
			if (strcmp(key, "exit-status") == 0) {
				char buf[96];

				ctl_exit_desc(val, buf, sizeof(buf));
				printf(" exit=\"%s\"", buf);
			} else if (json_object_is_type(val, json_type_string)) {
				printf(" %s=\"%s\"", key, json_object_get_string(val));
			} else {
				printf(" %s=%s", key, json_object_to_json_string(val));
			}
		}
	}
	printf("\n");
	fflush(stdout);
}

/* ---- commands ---- */

static json_object *ctl_id_args(const char *id)
{
	json_object *a = json_object_new_object();

	json_object_object_add(a, "id", json_object_new_string(id));
	return a;
}

static int ctl_need(int argc, int want, const char *cmd)
{
	if (argc != want) {
		fprintf(stderr, "vtpmctl: %s takes %s\n", cmd,
			want == 1 ? "no arguments" : "exactly one ID");
		return -1;
	}
	return 0;
}

static int ctl_create(struct ctl_conn *c, int argc, char **argv)
{
	json_object *args, *av, *ret;
	const char *id, *policy = NULL;
	bool start = false;
	int i, first;

	if (argc < 2) {
		fprintf(stderr, "vtpmctl: create needs an ID\n");
		return 2;
	}
	id = argv[1];
	for (i = 2; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--start") == 0) {
			start = true;
		} else if (strcmp(argv[i], "--restart") == 0 && i + 1 < argc) {
			policy = argv[++i];
		} else if (strncmp(argv[i], "--restart=", 10) == 0) {
			policy = argv[i] + 10;
		} else {
			fprintf(stderr, "vtpmctl: create: unknown option '%s' (swtpm options go "
					"after '--')\n",
				argv[i]);
			return 2;
		}
	}
	if (i >= argc - 1) {
		fprintf(stderr, "vtpmctl: create: the swtpm command line is missing (after '--')\n");
		return 2;
	}
	first = i + 1;
	/* accept a pasted "swtpm socket ..." and a bare option list */
	if (strcmp(argv[first], "swtpm") == 0 ||
	    (strlen(argv[first]) > 6 && strcmp(argv[first] + strlen(argv[first]) - 6, "/swtpm") == 0))
		first++;
	av = json_object_new_array();
	if (first < argc && argv[first][0] == '-')
		json_object_array_add(av, json_object_new_string("socket"));
	for (i = first; i < argc; i++)
		json_object_array_add(av, json_object_new_string(argv[i]));
	args = ctl_id_args(id);
	json_object_object_add(args, "argv", av);
	if (start)
		json_object_object_add(args, "start", json_object_new_boolean(true));
	if (policy)
		json_object_object_add(args, "restart", json_object_new_string(policy));
	ret = ctl_call(c, "create", args);
	if (!ret)
		return 1;
	if (ctl_json)
		ctl_print_json(ret);
	else if (start)
		printf("created and started %s (pid %lld)\n", id, (long long)ctl_int(ret, "pid", -1));
	else
		printf("created %s\n", id);
	json_object_put(ret);
	return 0;
}

static int ctl_simple(struct ctl_conn *c, const char *cmd, const char *id)
{
	json_object *ret = ctl_call(c, cmd, ctl_id_args(id));

	if (!ret)
		return 1;
	if (ctl_json) {
		ctl_print_json(ret);
	} else if (strcmp(cmd, "status") == 0) {
		ctl_print_status(ret);
	} else if (strcmp(cmd, "stop") == 0) {
		printf("stopped %s\n", id);
	} else {
		printf("%s %s (pid %lld)\n", strcmp(cmd, "start") == 0 ? "started" : "restarted", id,
		       (long long)ctl_int(ret, "pid", -1));
	}
	json_object_put(ret);
	return 0;
}

static int ctl_destroy(struct ctl_conn *c, int argc, char **argv)
{
	json_object *args, *ret;
	bool purge = false;
	const char *id = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--purge") == 0)
			purge = true;
		else if (!id && argv[i][0] != '-')
			id = argv[i];
		else {
			fprintf(stderr, "vtpmctl: destroy: unexpected '%s'\n", argv[i]);
			return 2;
		}
	}
	if (!id) {
		fprintf(stderr, "vtpmctl: destroy needs an ID\n");
		return 2;
	}
	args = ctl_id_args(id);
	if (purge)
		json_object_object_add(args, "purge", json_object_new_boolean(true));
	ret = ctl_call(c, "destroy", args);
	if (!ret)
		return 1;
	if (ctl_json)
		ctl_print_json(ret);
	else
		printf("destroyed %s%s\n", id, purge ? " (state purged)" : " (state kept)");
	json_object_put(ret);
	return 0;
}

/* vtpmd resolves paths in its own working directory: send an absolute one. */
static char *ctl_abspath(const char *file)
{
	char cwd[4096];
	char *out;

	if (file[0] == '/')
		return strdup(file);
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	out = malloc(strlen(cwd) + strlen(file) + 2);
	if (out)
		sprintf(out, "%s/%s", cwd, file);
	return out;
}

static void ctl_print_blobs(json_object *ret)
{
	json_object *b;

	if (json_object_object_get_ex(ret, "blobs", &b))
		printf(" (permanent %lld, volatile %lld, savestate %lld bytes)",
		       (long long)ctl_int(b, "permanent", 0), (long long)ctl_int(b, "volatile", 0),
		       (long long)ctl_int(b, "savestate", 0));
}

/* export ID FILE [--encrypted] / import ID FILE */
static int ctl_state(struct ctl_conn *c, int argc, char **argv)
{
	bool exp = strcmp(argv[0], "export") == 0, encrypted = false;
	const char *id = NULL, *file = NULL;
	json_object *args, *ret;
	char *path;

	for (int i = 1; i < argc; i++) {
		if (exp && strcmp(argv[i], "--encrypted") == 0)
			encrypted = true;
		else if (!id && argv[i][0] != '-')
			id = argv[i];
		else if (!file && argv[i][0] != '-')
			file = argv[i];
		else {
			fprintf(stderr, "vtpmctl: %s: unexpected '%s'\n", argv[0], argv[i]);
			return 2;
		}
	}
	if (!id || !file) {
		fprintf(stderr, "vtpmctl: %s needs an ID and a FILE\n", argv[0]);
		return 2;
	}
	path = ctl_abspath(file);
	if (!path) {
		fprintf(stderr, "vtpmctl: cannot resolve %s: %s\n", file, strerror(errno));
		return 1;
	}
	args = ctl_id_args(id);
	json_object_object_add(args, "file", json_object_new_string(path));
	if (encrypted)
		json_object_object_add(args, "encrypted", json_object_new_boolean(true));
	ret = ctl_call(c, exp ? "export-state" : "import-state", args);
	if (!ret) {
		free(path);
		return 1;
	}
	if (ctl_json) {
		ctl_print_json(ret);
	} else {
		if (exp)
			printf("exported %s to %s, %lld bytes", id, path,
			       (long long)ctl_int(ret, "bytes", 0));
		else
			printf("imported %s into %s", path, id);
		ctl_print_blobs(ret);
		printf("\n");
	}
	free(path);
	json_object_put(ret);
	return 0;
}

static int ctl_events(struct ctl_conn *c)
{
	json_object *ret = ctl_call(c, "subscribe", NULL), *msg;
	char *raw = NULL;
	int r;

	if (!ret)
		return 1;
	json_object_put(ret);
	if (!ctl_json) {
		printf("# subscribed to vtpmd events on %s (interrupt to stop)\n", ctl_sock);
		fflush(stdout);
	}
	for (;;) {
		r = ctl_read_line(c, &msg, &raw, -1);
		if (r != 0) {
			free(raw);
			if (ctl_interrupted)
				return 0;
			if (r == 1)
				fprintf(stderr, "vtpmctl: vtpmd closed the connection\n");
			return 1;
		}
		if (json_object_object_get_ex(msg, "event", NULL)) {
			if (ctl_json) {
				printf("%s\n", raw);
				fflush(stdout);
			} else {
				ctl_print_event(msg);
			}
		}
		json_object_put(msg);
		free(raw);
		raw = NULL;
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct sigaction sa;
	struct ctl_conn c;
	const char *cmd;
	json_object *ret;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "+hv", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			ctl_sock = optarg;
			break;
		case 'j':
			ctl_json = true;
			break;
		case 't': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (!*optarg || *end || v < 0 || v > 86400) {
				fprintf(stderr, "vtpmctl: bad --timeout '%s'\n", optarg);
				return 2;
			}
			ctl_timeout_s = (int)v;
			break;
		}
		case 'h':
			ctl_usage(stdout);
			return 0;
		case 'v':
			printf("vtpmctl %s\n", VTPM_VERSION);
			return 0;
		default:
			ctl_usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		ctl_usage(stderr);
		return 2;
	}
	cmd = argv[0];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ctl_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* check the command before connecting, so usage errors need no vtpmd */
	if (strcmp(cmd, "create") && strcmp(cmd, "start") && strcmp(cmd, "stop") &&
	    strcmp(cmd, "restart") && strcmp(cmd, "destroy") && strcmp(cmd, "list") &&
	    strcmp(cmd, "status") && strcmp(cmd, "events") && strcmp(cmd, "version") &&
	    strcmp(cmd, "export") && strcmp(cmd, "import")) {
		fprintf(stderr, "vtpmctl: unknown command '%s'\n", cmd);
		ctl_usage(stderr);
		return 2;
	}
	if ((!strcmp(cmd, "start") || !strcmp(cmd, "stop") || !strcmp(cmd, "restart") ||
	     !strcmp(cmd, "status")) &&
	    ctl_need(argc, 2, cmd) < 0)
		return 2;
	if ((!strcmp(cmd, "list") || !strcmp(cmd, "events") || !strcmp(cmd, "version")) &&
	    ctl_need(argc, 1, cmd) < 0)
		return 2;
	if ((!strcmp(cmd, "export") || !strcmp(cmd, "import")) && argc < 3) {
		fprintf(stderr, "vtpmctl: %s needs an ID and a FILE\n", cmd);
		return 2;
	}
	if (ctl_connect(&c) < 0)
		return 1;

	if (strcmp(cmd, "create") == 0) {
		rc = ctl_create(&c, argc, argv);
	} else if (strcmp(cmd, "destroy") == 0) {
		rc = ctl_destroy(&c, argc, argv);
	} else if (strcmp(cmd, "export") == 0 || strcmp(cmd, "import") == 0) {
		rc = ctl_state(&c, argc, argv);
	} else if (strcmp(cmd, "events") == 0) {
		rc = ctl_events(&c);
	} else if (strcmp(cmd, "list") == 0) {
		ret = ctl_call(&c, "list", NULL);
		rc = ret ? 0 : 1;
		if (ret && ctl_json)
			ctl_print_json(ret);
		else if (ret)
			ctl_print_list(ret);
		json_object_put(ret);
	} else if (strcmp(cmd, "version") == 0) {
		json_object *pool;

		ret = ctl_call(&c, "query-version", NULL);
		rc = ret ? 0 : 1;
		if (ret && ctl_json)
			ctl_print_json(ret);
		else if (ret)
			printf("vtpmd %s (swtpm %s compatible, protocol %lld)\nvtpmctl %s\n",
			       ctl_str(ret, "version", "?"), ctl_str(ret, "swtpm-compat", "?"),
			       (long long)ctl_int(ret, "protocol", 0), VTPM_VERSION);
		if (ret && !ctl_json && json_object_object_get_ex(ret, "pool", &pool))
			printf("pool: %lld of %lld instances manufactured ahead\n",
			       (long long)ctl_int(pool, "parked", 0),
			       (long long)ctl_int(pool, "size", 0));
		json_object_put(ret);
	} else {
		rc = ctl_simple(&c, cmd, argv[1]);
	}
	ctl_close(&c);
	return rc;
}
