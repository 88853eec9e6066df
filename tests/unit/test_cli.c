/* Unit tests for the swtpm command line (src/instance/cli.c, config.c): top-level
 * dispatch, every `swtpm socket` option, `swtpm chardev` and the vTPM proxy
 * result handling, error texts, ordering and precedence rules, getopt
 * diagnostics and re-entrancy, --help and --print-capabilities. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <libtpms/tpm_library.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "instance/cli.h"
#include "instance/config.h"
#include "io/vtpm_proxy.h"

/* ------------------------------------------------------------------------ */
/* harness                                                                   */

struct run {
	int rc;
	int code;
	char *out;
	char *err;
	struct vtpm_config cfg;
};

static struct run R;

static void run_clear(void)
{
	free(R.out);
	free(R.err);
	config_free(&R.cfg);
	R.out = R.err = NULL;
	R.rc = R.code = -12345;
}

/* cli_parse on a private copy of args (getopt permutes argv). */
static void run_args(const char **args)
{
	size_t olen, elen;
	int argc = 0;
	char **argv;
	FILE *o, *e;

	run_clear();
	while (args[argc])
		argc++;
	argv = calloc(argc + 1, sizeof(*argv));
	cr_assert_not_null(argv);
	for (int i = 0; i < argc; i++)
		argv[i] = strdup(args[i]);
	o = open_memstream(&R.out, &olen);
	e = open_memstream(&R.err, &elen);
	cr_assert(o && e);
	R.rc = cli_parse(argc, argv, &R.cfg, o, e, &R.code);
	fclose(o);
	fclose(e);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
}

#define RUN(...) run_args((const char *[]){ "socket", __VA_ARGS__, NULL })
#define RUN0() run_args((const char *[]){ "socket", NULL })
#define CRUN(...) run_args((const char *[]){ "chardev", __VA_ARGS__, NULL })

static void expect_ok(void)
{
	cr_assert_eq(R.rc, 0, "rc %d, err: %s", R.rc, R.err);
	cr_assert_str_empty(R.err);
	cr_assert_str_empty(R.out);
}

/* An error exit with exactly this stderr text and nothing on stdout. */
static void expect_fail(const char *msg)
{
	cr_assert_eq(R.rc, 1, "rc %d", R.rc);
	cr_assert_eq(R.code, 1);
	cr_assert_str_eq(R.err, msg);
	cr_assert_str_empty(R.out);
}

/* A getopt complaint: this first line, then the usage text, on stderr. */
static void expect_getopt_fail(const char *line)
{
	cr_assert_eq(R.rc, 1);
	cr_assert_eq(R.code, 1);
	cr_assert_eq(strncmp(R.err, line, strlen(line)), 0, "got: %s", R.err);
	cr_assert_eq(strncmp(R.err + strlen(line), "Usage: ", 7), 0, "no usage after: %s", R.err);
	cr_assert_not_null(strstr(R.err, "The following options are supported:"));
	cr_assert_str_empty(R.out);
}

static void setup(void)
{
	unsetenv("TPM_PORT");
	unsetenv("TPM_PATH");
	memset(&R, 0, sizeof(R));
	config_init(&R.cfg);
}

static void teardown(void)
{
	run_clear();
}

TestSuite(cli, .init = setup, .fini = teardown);
TestSuite(toplevel, .init = setup, .fini = teardown);
TestSuite(caps, .init = setup, .fini = teardown);
TestSuite(cuse, .init = setup, .fini = teardown);

static void make_socketpair(int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static int make_regular_fd(void)
{
	FILE *f = tmpfile();

	cr_assert_not_null(f);
	return fileno(f);
}

static char *fmt(const char *f, int n)
{
	static char buf[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), f, n);
	return buf[i];
}

/* ------------------------------------------------------------------------ */
/* top level                                                                 */

struct top {
	int rc, code;
	enum cfg_iface iface;
	char *out, *err;
};

static struct top top_run(int argc, const char **args)
{
	struct top t = { .rc = -1, .code = -1, .iface = (enum cfg_iface)99 };
	size_t ol, el;
	FILE *o = open_memstream(&t.out, &ol), *e = open_memstream(&t.err, &el);

	t.rc = cli_toplevel(argc, (char **)args, o, e, &t.iface, &t.code);
	fclose(o);
	fclose(e);
	return t;
}

static void top_free(struct top *t)
{
	free(t->out);
	free(t->err);
}

static const char overview_usage[] = "\n\nUsage: swtpm socket|chardev|cuse [options]\n"
				     "       swtpm -v|--version\n\n";

Test(toplevel, no_arguments)
{
	struct top t = top_run(1, (const char *[]){ "swtpm", NULL });

	cr_assert_eq(t.rc, 1);
	cr_assert_eq(t.code, 1);
	cr_assert_str_eq(t.err, "Missing TPM interface type.\n");
	cr_assert_str_empty(t.out);
	top_free(&t);
}

Test(toplevel, help)
{
	for (int i = 0; i < 2; i++) {
		const char *opt = i ? "--help" : "-h";
		struct top t = top_run(2, (const char *[]){ "swtpm", opt, NULL });
		int lines = 0;

		cr_assert_eq(t.rc, 1);
		cr_assert_eq(t.code, 0);
		cr_assert_str_empty(t.err);
		cr_assert_not_null(strstr(t.out, overview_usage), "%s", t.out);
		cr_assert_not_null(strstr(t.out, "swtpm socket --help"));
		for (const char *p = t.out; *p; p++)
			lines += *p == '\n';
		cr_assert_eq(lines, 7);
		top_free(&t);
	}
}

Test(toplevel, version)
{
	for (int i = 0; i < 2; i++) {
		const char *opt = i ? "--version" : "-v";
		struct top t = top_run(2, (const char *[]){ "swtpm", opt, NULL });

		cr_assert_eq(t.rc, 1);
		cr_assert_eq(t.code, 0);
		cr_assert_str_empty(t.err);
		cr_assert_eq(strncmp(t.out, "TPM emulator version 0.8.0 (vtpmd ", 34), 0, "%s", t.out);
		cr_assert_eq(t.out[strlen(t.out) - 2], ')');
		cr_assert_eq(t.out[strlen(t.out) - 1], '\n');
		cr_assert_eq(strchr(t.out, '\n'), t.out + strlen(t.out) - 1, "one line only");
		top_free(&t);
	}
}

Test(toplevel, socket_dispatch)
{
	struct top t = top_run(3, (const char *[]){ "swtpm", "socket", "-v", NULL });

	/* only argv[1] is looked at; "-v" belongs to the socket parser */
	cr_assert_eq(t.rc, 0);
	cr_assert_eq(t.iface, IFACE_SOCKET);
	cr_assert_str_empty(t.out);
	cr_assert_str_empty(t.err);
	top_free(&t);

	RUN("-v");
	expect_getopt_fail("socket: invalid option -- 'v'\n");
}

Test(toplevel, chardev_dispatch)
{
	struct top t = top_run(2, (const char *[]){ "swtpm", "chardev", NULL });

	cr_assert_eq(t.rc, 0);
	cr_assert_eq(t.iface, IFACE_CHARDEV);
	cr_assert_str_empty(t.out);
	cr_assert_str_empty(t.err);
	top_free(&t);
}

Test(toplevel, cuse_dispatch)
{
	struct top t = top_run(2, (const char *[]){ "swtpm", "cuse", NULL });

	cr_assert_eq(t.rc, 0);
	cr_assert_eq(t.iface, IFACE_CUSE);
	cr_assert_str_empty(t.out);
	cr_assert_str_empty(t.err);
	top_free(&t);
}

/* ------------------------------------------------------------------------ */
/* swtpm cuse (cli.md §4.2): its own exit statuses                           */

#define URUN(...) run_args((const char *[]){ "cuse", __VA_ARGS__, NULL })

static void expect_cuse_exit(int code, const char *msg)
{
	cr_assert_eq(R.rc, 1, "rc %d", R.rc);
	cr_assert_eq(R.code, code, "exit %d, want %d; err: %s", R.code, code, R.err);
	cr_assert_str_eq(R.err, msg);
	cr_assert_str_empty(R.out);
}

Test(cuse, complete_command_line)
{
	URUN("-n", "vtpm0", "-M", "10", "-m", "224", "--tpm2", "--tpmstate", "dir=/tmp",
	     "--flags", "not-need-init,startup-clear", "--locality", "reject-locality-4",
	     "--seccomp", "action=none", "--migration", "incoming", "-n", "ignored");
	expect_ok();
	cr_assert_eq(R.cfg.iface, IFACE_CUSE);
	cr_assert_str_eq(R.cfg.cuse_name, "vtpm0", "only the first -n counts");
	cr_assert_eq(R.cfg.cuse_major, 10);
	cr_assert_eq(R.cfg.cuse_minor, 224);
	cr_assert(R.cfg.tpm2);
	cr_assert_str_eq(R.cfg.state_uri, "dir:///tmp");
	cr_assert(R.cfg.not_need_init);
	cr_assert_eq(R.cfg.startup, STARTUP_CLEAR);
	cr_assert(R.cfg.reject_locality4);
	cr_assert_eq(R.cfg.seccomp, SECCOMP_NONE);
	cr_assert(R.cfg.migration_incoming);
	cr_assert_not(R.cfg.cuse_foreground, "swtpm cuse daemonizes");
}

Test(cuse, exit_statuses)
{
	URUN("--tpmstate", "dir=/tmp");
	expect_cuse_exit(254, "Error: device name missing\n");
	URUN("-n", "x", "-M", "65536", "--tpmstate", "dir=/tmp");
	expect_cuse_exit(255, "Major number outside valid range [0 - 65535]\n");
	URUN("-n", "x", "-m", "abc", "--tpmstate", "dir=/tmp");
	expect_cuse_exit(255, "Could not parse major number\n");
	URUN("-n", "x", "-m", "-1", "--tpmstate", "dir=/tmp");
	expect_cuse_exit(255, "Could not parse major number\n");
	URUN("-n", "x", "--tpmstate", "dir=/tmp", "--flags", "bogus");
	expect_cuse_exit(253, "Error parsing flags options: Unknown option 'bogus'\n");
	URUN("-n", "x", "--tpmstate", "dir=/tmp", "--runas", "no-such-user-vtpm");
	expect_cuse_exit(251, "Error: User 'no-such-user-vtpm' does not exist.\n");
	URUN("-n", "x", "--tpmstate", "dir=/tmp", "stray");
	expect_cuse_exit(1, "Unknown parameter 'stray'\n");
}

Test(cuse, state_location_is_required)
{
	char *saved = getenv("TPM_PATH") ? strdup(getenv("TPM_PATH")) : NULL;

	unsetenv("TPM_PATH");
	URUN("-n", "x");
	expect_cuse_exit(255, "Error: No TPM state directory is defined; TPM_PATH is not set\n");
	setenv("TPM_PATH", "/tmp", 1);
	URUN("-n", "x");
	expect_ok();
	cr_assert_null(R.cfg.state_uri, "TPM_PATH is read when the TPM starts");
	if (saved)
		setenv("TPM_PATH", saved, 1);
	else
		unsetenv("TPM_PATH");
	free(saved);
}

Test(cuse, unknown_option_is_reported_and_ignored)
{
	URUN("-n", "x", "--tpmstate", "dir=/tmp", "--bogus");
	cr_assert_eq(R.rc, 0);
	cr_assert_str_eq(R.err, "cuse: unrecognized option '--bogus'\n");
	cr_assert_str_eq(R.cfg.cuse_name, "x");
	/* socket-only options are unknown here */
	URUN("-n", "x", "--tpmstate", "dir=/tmp", "--terminate");
	cr_assert_eq(R.rc, 0);
	cr_assert_str_eq(R.err, "cuse: unrecognized option '--terminate'\n");
}

Test(cuse, help_and_version)
{
	URUN("-h");
	cr_assert_eq(R.rc, 1);
	cr_assert_eq(R.code, 0);
	cr_assert_str_empty(R.err);
	cr_assert_not_null(strstr(R.out, " cuse [options]\n"));
	cr_assert_not_null(strstr(R.out, "-n|--name <NAME>"));
	cr_assert_not_null(strstr(R.out, "-M|--maj <MAJ>"));
	cr_assert_null(strstr(R.out, "--server"), "no socket options in cuse's help");
	URUN("--version");
	cr_assert_eq(R.rc, 1);
	cr_assert_eq(R.code, 0);
	cr_assert_eq(strncmp(R.out, "TPM emulator CUSE interface version 0.8.0 (vtpmd ", 49), 0,
		     "%s", R.out);
}

Test(cuse, print_capabilities_has_no_socket_features)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	URUN("--tpm2", "--print-capabilities");
	expect_ok();
	cr_assert_eq(cli_print_capabilities(f, &R.cfg), 0);
	fclose(f);
	cr_assert_null(strstr(buf, "tpm-send-command-header"), "%s", buf);
	cr_assert_null(strstr(buf, "flags-opt-startup"), "%s", buf);
	cr_assert_null(strstr(buf, "ctrl-opt-terminate"), "%s", buf);
	cr_assert_not_null(strstr(buf, "\"tpm-2.0\", \"flags-opt-disable-auto-shutdown\", \"cmdarg-seccomp\""),
			   "%s", buf);
	cr_assert_not_null(strstr(buf, "rsa-keysize-2048"));
	free(buf);
}

Test(toplevel, unknown_interface)
{
	struct top t = top_run(2, (const char *[]){ "swtpm", "sockett", NULL });
	const char *msg = "Unsupported TPM interface type 'sockett'.\n";

	cr_assert_eq(t.rc, 1);
	cr_assert_eq(t.code, 1);
	cr_assert_str_empty(t.out);
	cr_assert_eq(strncmp(t.err, msg, strlen(msg)), 0, "%s", t.err);
	cr_assert_not_null(strstr(t.err, overview_usage), "overview follows on stderr");
	top_free(&t);

	/* abbreviations are not interfaces */
	t = top_run(2, (const char *[]){ "swtpm", "sock", NULL });
	cr_assert_eq(t.code, 1);
	cr_assert_eq(strncmp(t.err, "Unsupported TPM interface type 'sock'.\n", 39), 0);
	top_free(&t);
}

/* ------------------------------------------------------------------------ */
/* defaults, config                                                          */

Test(cli, defaults)
{
	RUN0();
	expect_ok();
	cr_assert_eq(R.cfg.iface, IFACE_SOCKET);
	cr_assert_not(R.cfg.tpm2);
	cr_assert_null(R.cfg.state_uri);
	cr_assert_eq(R.cfg.state_mode, 0640);
	cr_assert_not(R.cfg.state_mode_set);
	cr_assert_eq(R.cfg.server.type, SOCK_NONE);
	cr_assert_eq(R.cfg.server.port, -1);
	cr_assert_eq(R.cfg.server.fd, -1);
	cr_assert_eq(R.cfg.server.mode, 0770);
	cr_assert_eq(R.cfg.ctrl.type, SOCK_NONE);
	cr_assert_eq(R.cfg.ctrl.port, -1);
	cr_assert_eq(R.cfg.ctrl.fd, -1);
	cr_assert_eq(R.cfg.ctrl.clientfd, -1);
	cr_assert_eq(R.cfg.ctrl.mode, 0770);
	cr_assert_eq(R.cfg.data_fd, -1);
	cr_assert_not(R.cfg.terminate);
	cr_assert_not(R.cfg.not_need_init);
	cr_assert_eq(R.cfg.startup, STARTUP_NONE);
	cr_assert_not(R.cfg.log.given);
	cr_assert_eq(R.cfg.log.level, 1);
	cr_assert_eq(R.cfg.log.fd, -1);
	cr_assert_null(R.cfg.log.file);
	cr_assert_null(R.cfg.pid_file);
	cr_assert_eq(R.cfg.pid_fd, -1);
	cr_assert_not(R.cfg.daemon);
	cr_assert_null(R.cfg.runas);
	cr_assert_eq(R.cfg.seccomp, SECCOMP_KILL);
	cr_assert_null(R.cfg.keys.key);
	cr_assert_null(R.cfg.keys.migration_key);
	cr_assert_not(R.cfg.print_capabilities);
	cr_assert_not(R.cfg.print_states);
	cr_assert_null(getenv("TPM_PORT"), "nothing exported without -p");
}

Test(cli, tpm_path_not_resolved_here)
{
	setenv("TPM_PATH", "/some/dir", 1);
	RUN0();
	expect_ok();
	cr_assert_null(R.cfg.state_uri, "TPM_PATH is resolved lazily elsewhere");
}

Test(cli, config_free_twice_and_init)
{
	struct vtpm_config c;

	config_init(&c);
	c.state_uri = strdup("dir:///x");
	c.server.path = strdup("/p");
	c.ctrl.bindaddr = strdup("::1");
	c.log.prefix = strdup("x");
	c.keys.key = strdup("file=/k");
	config_free(&c);
	cr_assert_null(c.state_uri);
	cr_assert_eq(c.data_fd, -1);
	cr_assert_eq(c.state_mode, 0640);
	config_free(&c);
}

/* ------------------------------------------------------------------------ */
/* simple switches                                                           */

Test(cli, simple_switches)
{
	RUN("-d", "-t", "--tpm2");
	expect_ok();
	cr_assert(R.cfg.daemon);
	cr_assert(R.cfg.terminate);
	cr_assert(R.cfg.tpm2);

	RUN("--daemon", "--terminate", "--daemon");
	expect_ok();
	cr_assert(R.cfg.daemon);
	cr_assert(R.cfg.terminate);
	cr_assert_not(R.cfg.tpm2);

	RUN("-dt");
	expect_ok();
	cr_assert(R.cfg.daemon);
	cr_assert(R.cfg.terminate);
}

Test(cli, help_short_and_long)
{
	const char *opts[] = { "-h", "--help", "--he", "--h" };

	for (int i = 0; i < 4; i++) {
		RUN(opts[i]);
		cr_assert_eq(R.rc, 1, "%s", opts[i]);
		cr_assert_eq(R.code, 0);
		cr_assert_str_empty(R.err);
		cr_assert_eq(strncmp(R.out, "Usage: ", 7), 0);
		cr_assert_not_null(strstr(R.out, " socket [options]\n\nThe following options are supported:\n\n"));
	}
}

Test(cli, help_stops_parsing_immediately)
{
	/* errors in earlier options still win, later ones are never seen */
	RUN("-p", "abc", "-h");
	expect_fail("Cannot parse socket port number 'abc'.\n");
	RUN("-h", "--bogus", "extra");
	cr_assert_eq(R.rc, 1);
	cr_assert_eq(R.code, 0);
	cr_assert_str_empty(R.err);
	RUN("--runas", "no-such-user-xyz", "-h");
	cr_assert_eq(R.code, 0, "sub-options are validated after parsing only");
}

Test(cli, usage_layout)
{
	static const char *order[] = {
		"\n-p|--port <port> : ",
		"\n-f|--fd <fd>     : ",
		"\n-t|--terminate   : ",
		"\n-d|--daemon      : ",
		"\n--ctrl type=[unixio|tcp][,path=<path>][,port=<port>[,bindaddr=address[,ifname=ifname]]]"
		"[,fd=<filedescriptor>|clientfd=<filedescriptor>][,mode=0...][,uid=uid][,gid=gid]"
		"[,terminate]\n                 : ",
		"\n--migration-key file=<path>|fd=<fd>[,mode=aes-cbc|aes-256-cbc][,format=hex|binary]"
		"[,remove=[true|false]]\n",
		"\n--migration-key pwdfile=<path>|pwdfd=<fd>[,mode=aes-cbc|aes-256-cbc]"
		"[,remove=[true|false]][,kdf=sha512|pbkdf2]\n",
		"\n--log file=<path>|fd=<filedescriptor>[,level=n][,prefix=<prefix>][,truncate]\n",
		"\n--key file=<path>|fd=<fd>[,mode=aes-cbc|aes-256-cbc][,format=hex|binary]"
		"[,remove=[true|false]]\n",
		"\n--key pwdfile=<path>|pwdfd=<fd>[,mode=aes-cbc|aes-256-cbc]"
		"[,remove=[true|false]][,kdf=sha512|pbkdf2]\n",
		"\n--locality [reject-locality-4][,allow-set-locality]\n",
		"\n--pid file=<path>|fd=<filedescriptor>\n",
		"\n--tpmstate dir=<dir>[,mode=0...]|backend-uri=<uri>\n",
		"\n--server [type=tcp][,port=port[,bindaddr=address[,ifname=ifname]]][,fd=fd][,disconnect]\n",
		"\n--server type=unixio[,path=path][,fd=fd][,mode=0...][,uid=uid][,gid=gid]\n",
		"\n--flags [not-need-init][,startup-clear|startup-state|startup-deactivated|startup-none]"
		"[,disable-auto-shutdown]\n",
		"\n--migration [incoming][,release-lock-outgoing]\n",
		"\n-r|--runas <user>: ",
		"\n--tpm2           : ",
		"\n--seccomp action=none|kill|log\n",
		"\n--print-capabilities\n                 : ",
		"\n--print-states   : ",
		"\n-h|--help        : ",
	};
	const char *prev = NULL, *p, *line;
	FILE *f;
	char *buf = NULL;
	size_t len;

	f = open_memstream(&buf, &len);
	cli_usage(f, "swtpm", IFACE_SOCKET);
	fclose(f);

	cr_assert_eq(strncmp(buf, "Usage: swtpm socket [options]\n\nThe following options are supported:\n\n",
			     69), 0, "%s", buf);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		p = strstr(buf, order[i]);
		cr_assert_not_null(p, "missing: %s", order[i]);
		cr_assert(!prev || p > prev, "out of order: %s", order[i]);
		prev = p;
	}
	cr_assert_eq(strcmp(buf + len - 2, "\n\n"), 0, "ends with one empty line");
	cr_assert_neq(buf[len - 3], '\n');

	/* every body line is a syntax line, a description start or a continuation */
	line = buf + 69;
	while (*line && *line != '\n') {
		const char *nl = strchr(line, '\n');

		cr_assert(line[0] == '-' || !strncmp(line, "                 : ", 19) ||
				  (!strncmp(line, "                   ", 19) && line[19] != ' '),
			  "bad line: %.*s", (int)(nl - line), line);
		/* descriptions are wrapped for an 80-column terminal */
		cr_assert(line[0] == '-' || nl - line <= 79, "too long: %.*s", (int)(nl - line), line);
		line = nl + 1;
	}
	cr_assert_str_eq(line, "\n");
	free(buf);
}

/* ------------------------------------------------------------------------ */
/* getopt behaviour                                                          */

Test(cli, abbreviations)
{
	RUN("--print-cap");
	expect_ok();
	cr_assert(R.cfg.print_capabilities);

	/* --migration (swtpm 0.8) makes --mig ambiguous, as in swtpm 0.8 */
	RUN("--tpms", "dir=/x", "--mig", "pwdfile=/p");
	expect_getopt_fail("socket: option '--mig' is ambiguous; possibilities: '--migration-key' "
			   "'--migration'\n");
	RUN("--migration-k", "pwdfile=/p", "--migration", "incoming", "--migr", "pwdfile=/q");
	expect_getopt_fail("socket: option '--migr' is ambiguous; possibilities: '--migration-key' "
			   "'--migration'\n");

	RUN("--tpms", "dir=/x", "--ser", "type=unixio,path=/s", "--migration-", "pwdfile=/p", "--run",
	    "root", "--terminat", "--se", "action=none");
	cr_assert_eq(R.rc, 1, "--se is ambiguous (server, seccomp)");
	expect_getopt_fail("socket: option '--se' is ambiguous; possibilities: '--server' '--seccomp'\n");

	RUN("--tpms", "dir=/x", "--ser", "type=unixio,path=/s", "--migration-", "pwdfile=/p", "--run",
	    "root", "--terminat", "--secc", "action=none", "--k", "fd=4", "--lo", "level=2");
	cr_assert_eq(R.rc, 1, "--lo is ambiguous (log, locality)");
	cr_assert_eq(strncmp(R.err, "socket: option '--lo' is ambiguous; possibilities: '--log' '--locality'\n", 71), 0);

	RUN("--tpms", "dir=/x", "--ser", "type=unixio,path=/s", "--run", "root",
	    "--terminat", "--secc", "action=none", "--log", "level=2", "--loc",
	    "reject-locality-4", "--tpm2");
	expect_ok();
	cr_assert_str_eq(R.cfg.state_uri, "dir:///x");
	cr_assert_eq(R.cfg.server.type, SOCK_UNIXIO);
	cr_assert_str_eq(R.cfg.runas, "root");
	cr_assert(R.cfg.terminate);
	cr_assert_eq(R.cfg.seccomp, SECCOMP_NONE);
	cr_assert_eq(R.cfg.log.level, 2);
	cr_assert(R.cfg.reject_locality4);
	cr_assert(R.cfg.tpm2);
}

Test(cli, ambiguous_print)
{
	RUN("--print");
	expect_getopt_fail("socket: option '--print' is ambiguous; possibilities: "
			   "'--print-capabilities' '--print-states'\n");
	RUN("--tpm", "dir=/x");
	expect_getopt_fail("socket: option '--tpm' is ambiguous; possibilities: '--tpmstate' '--tpm2'\n");
	RUN("--p=3");
	cr_assert_eq(strncmp(R.err, "socket: option '--p=3' is ambiguous; possibilities: '--port' '--pid' "
				    "'--print-capabilities' '--print-states'\n", 109), 0, "%s", R.err);
}

Test(cli, unrecognized_options)
{
	RUN("--foo");
	expect_getopt_fail("socket: unrecognized option '--foo'\n");
	RUN("--tpm2", "--foo=bar");
	expect_getopt_fail("socket: unrecognized option '--foo=bar'\n");
	RUN("--tpm2x");
	expect_getopt_fail("socket: unrecognized option '--tpm2x'\n");
	RUN("-x");
	expect_getopt_fail("socket: invalid option -- 'x'\n");
	RUN("-c", "/dev/tpm0");
	expect_getopt_fail("socket: invalid option -- 'c'\n");
	/* a bad character in the middle of a cluster after a long option */
	RUN("--tpm2", "-dxt");
	expect_getopt_fail("socket: invalid option -- 'x'\n");
	/* 0.8 options that are not implemented here */
	RUN("--chroot", "/x");
	expect_getopt_fail("socket: unrecognized option '--chroot'\n");
}

Test(cli, missing_and_extra_arguments)
{
	RUN("-p");
	expect_getopt_fail("socket: option requires an argument -- 'p'\n");
	RUN("-tr");
	expect_getopt_fail("socket: option requires an argument -- 'r'\n");
	RUN("--tpm2", "-f");
	expect_getopt_fail("socket: option requires an argument -- 'f'\n");
	RUN("--port");
	expect_getopt_fail("socket: option '--port' requires an argument\n");
	RUN("--tpmst");
	expect_getopt_fail("socket: option '--tpmstate' requires an argument\n");
	RUN("--ctrl");
	expect_getopt_fail("socket: option '--ctrl' requires an argument\n");
	RUN("--tpm2=1");
	expect_getopt_fail("socket: option '--tpm2' doesn't allow an argument\n");
	RUN("--terminate=yes");
	expect_getopt_fail("socket: option '--terminate' doesn't allow an argument\n");
	RUN("--print-cap=x");
	expect_getopt_fail("socket: option '--print-capabilities' doesn't allow an argument\n");
	RUN("--help=1");
	expect_getopt_fail("socket: option '--help' doesn't allow an argument\n");
}

Test(cli, argument_forms)
{
	/* "--opt=value", "--opt value", "-pVALUE", "-p VALUE" */
	RUN("--tpmstate=dir=/a=b", "-p2321", "--runas=root");
	expect_ok();
	cr_assert_str_eq(R.cfg.state_uri, "dir:///a=b");
	cr_assert_eq(R.cfg.server.port, 2321);
	cr_assert_str_eq(R.cfg.runas, "root");

	/* an option argument that looks like an option is still the argument */
	RUN("--pid", "--tpm2");
	cr_assert_eq(R.rc, 1);
	cr_assert(strstr(R.err, "pid") != NULL, "err: %s", R.err);
}

Test(cli, non_option_arguments)
{
	RUN("foo");
	expect_fail("Unknown parameter 'foo'\n");
	/* getopt permutes: a leading stray word is still reported */
	RUN("foo", "--tpm2", "bar");
	expect_fail("Unknown parameter 'foo'\n");
	RUN("--tpm2", "--", "-t");
	expect_fail("Unknown parameter '-t'\n");
	RUN("-");
	expect_fail("Unknown parameter '-'\n");
	RUN("");
	expect_fail("Unknown parameter ''\n");
	/* reported before any sub-option is validated */
	RUN("--runas", "no-such-user-xyz", "stray");
	expect_fail("Unknown parameter 'stray'\n");
}

Test(cli, getopt_reentrancy)
{
	/* an error in the middle of a cluster leaves getopt mid-argument */
	RUN("--tpm2", "-xt");
	expect_getopt_fail("socket: invalid option -- 'x'\n");
	RUN("--tpmstate", "dir=/a");
	expect_ok();
	cr_assert_not(R.cfg.terminate, "leftover 't' from the previous scan");
	cr_assert_not(R.cfg.tpm2);
	cr_assert_str_eq(R.cfg.state_uri, "dir:///a");

	/* two good parses in a row see only their own options */
	RUN("-d", "--flags", "not-need-init");
	expect_ok();
	cr_assert(R.cfg.daemon);
	cr_assert(R.cfg.not_need_init);
	RUN("-t");
	expect_ok();
	cr_assert_not(R.cfg.daemon);
	cr_assert_not(R.cfg.not_need_init);
	cr_assert(R.cfg.terminate);

	/* a parse stopped by -h does not leak into the next one */
	RUN("-h", "-d");
	cr_assert_eq(R.code, 0);
	RUN("-t");
	expect_ok();
	cr_assert_not(R.cfg.daemon);
}

Test(cli, last_occurrence_wins)
{
	RUN("--tpmstate", "dir=/a", "--tpmstate", "dir=/b");
	expect_ok();
	cr_assert_str_eq(R.cfg.state_uri, "dir:///b");

	/* an invalid earlier value is never looked at */
	RUN("--tpmstate", "bogus", "--tpmstate", "dir=/b", "--log", "level=x", "--log", "level=3",
	    "--runas", "no-such-user-xyz", "--runas", "root");
	expect_ok();
	cr_assert_str_eq(R.cfg.state_uri, "dir:///b");
	cr_assert_eq(R.cfg.log.level, 3);
	cr_assert_str_eq(R.cfg.runas, "root");

	RUN("--server", "type=bogus", "--server", "type=tcp,port=1234");
	expect_ok();
	cr_assert_eq(R.cfg.server.port, 1234);
}

/* ------------------------------------------------------------------------ */
/* -p / --port                                                               */

Test(cli, port_option)
{
	RUN("-p", "2321");
	expect_ok();
	cr_assert_eq(R.cfg.server.type, SOCK_TCP);
	cr_assert_eq(R.cfg.server.port, 2321);
	cr_assert(R.cfg.server.disconnect, "-p implies disconnect");
	cr_assert_eq(R.cfg.server.fd, -1);
	cr_assert_null(R.cfg.server.bindaddr);
	cr_assert_str_eq(getenv("TPM_PORT"), "2321");

	/* strtoul base 0; TPM_PORT gets the decimal form */
	RUN("--port", "0x10");
	expect_ok();
	cr_assert_eq(R.cfg.server.port, 16);
	cr_assert_str_eq(getenv("TPM_PORT"), "16");
	RUN("--port", "010");
	expect_ok();
	cr_assert_eq(R.cfg.server.port, 8);
	RUN("-p", "65535");
	expect_ok();
	cr_assert_eq(R.cfg.server.port, 65535);
	RUN("-p", "0");
	expect_ok();
	cr_assert_eq(R.cfg.server.port, 0);
}

Test(cli, port_errors)
{
	RUN("-p", "65536");
	expect_fail("Port is outside valid range.\n");
	RUN("-p", "4294967295");
	expect_fail("Port is outside valid range.\n");
	RUN("-p", "4294967296");
	expect_fail("Cannot parse socket port number '4294967296'.\n");
	RUN("-p", "99999999999999999999999");
	expect_fail("Cannot parse socket port number '99999999999999999999999'.\n");
	RUN("-p", "abc");
	expect_fail("Cannot parse socket port number 'abc'.\n");
	RUN("-p", "12ab");
	expect_fail("Cannot parse socket port number '12ab'.\n");
	RUN("-p", "-1");
	expect_fail("Cannot parse socket port number '-1'.\n");
	RUN("-p", "");
	expect_fail("Cannot parse socket port number ''.\n");
	RUN("-p", "09");
	expect_fail("Cannot parse socket port number '09'.\n");
	cr_assert_null(getenv("TPM_PORT"), "nothing exported on error");
}

Test(cli, port_and_server_order)
{
	/* a later --server replaces -p ... */
	RUN("-p", "2321", "--server", "type=unixio,path=/tmp/s");
	expect_ok();
	cr_assert_eq(R.cfg.server.type, SOCK_UNIXIO);
	cr_assert_str_eq(R.cfg.server.path, "/tmp/s");
	cr_assert_not(R.cfg.server.disconnect);
	cr_assert_eq(R.cfg.server.port, -1);

	/* ... and a later -p replaces --server */
	RUN("--server", "type=unixio,path=/tmp/s", "-p", "2321");
	expect_ok();
	cr_assert_eq(R.cfg.server.type, SOCK_TCP);
	cr_assert_eq(R.cfg.server.port, 2321);
	cr_assert(R.cfg.server.disconnect);
	cr_assert_null(R.cfg.server.path);

	/* -p exported TPM_PORT, which a later portless --server type=tcp uses */
	RUN("-p", "4000", "--server", "type=tcp");
	expect_ok();
	cr_assert_eq(R.cfg.server.type, SOCK_TCP);
	cr_assert_eq(R.cfg.server.port, 4000);
	cr_assert_not(R.cfg.server.disconnect);
}

/* ------------------------------------------------------------------------ */
/* -f / --fd                                                                 */

Test(cli, data_fd)
{
	int sv[2], pfd[2];

	make_socketpair(sv);
	RUN("-f", fmt("%d", sv[0]));
	expect_ok();
	cr_assert_eq(R.cfg.data_fd, sv[0]);
	cr_assert(R.cfg.terminate, "-f implies terminate-on-close");

	cr_assert_eq(pipe(pfd), 0);
	RUN("--fd", fmt("%d", pfd[0]));
	expect_ok();
	cr_assert_eq(R.cfg.data_fd, pfd[0]);

	/* the last -f wins */
	RUN("-f", fmt("%d", sv[0]), "-f", fmt("%d", sv[1]));
	expect_ok();
	cr_assert_eq(R.cfg.data_fd, sv[1]);
}

Test(cli, data_fd_errors)
{
	int reg = make_regular_fd();
	int dir = open("/", O_RDONLY | O_DIRECTORY);
	int sv[2];

	cr_assert_geq(dir, 0);
	RUN("-f", fmt("%d", reg));
	expect_fail("Given file descriptor type is not supported.\n");
	RUN("-f", fmt("%d", dir));
	expect_fail("Given file descriptor type is not supported.\n");
	close(900);
	RUN("-f", "900");
	expect_fail("Cannot stat file descriptor: Bad file descriptor\n");
	RUN("-f", "abc");
	expect_fail("Cannot parse file descriptor 'abc'.\n");
	RUN("-f", "-3");
	expect_fail("Cannot parse file descriptor '-3'.\n");
	RUN("-f", "99999999999");
	expect_fail("Cannot parse file descriptor '99999999999'.\n");

	/* 0..2 are refused, but only after --runas and --log were checked */
	make_socketpair(sv);
	cr_assert_eq(dup2(sv[0], 0), 0);
	RUN("-f", "0");
	expect_fail("Error: Cannot accept file descriptors with values 0, 1, or 2\n");
	RUN("-f", "0", "--log", "level=x");
	expect_fail("Error parsing logging options: invalid number 'x'\n");
	RUN("-f", "0", "--ctrl", "bogus");
	expect_fail("Error: Cannot accept file descriptors with values 0, 1, or 2\n");
	/* and also with --print-capabilities */
	RUN("-f", "0", "--print-capabilities");
	expect_fail("Error: Cannot accept file descriptors with values 0, 1, or 2\n");
}

/* ------------------------------------------------------------------------ */
/* --server                                                                  */

Test(cli, server_tcp)
{
	RUN("--server", "type=tcp,port=2321");
	expect_ok();
	cr_assert_eq(R.cfg.server.type, SOCK_TCP);
	cr_assert_eq(R.cfg.server.port, 2321);
	cr_assert_null(R.cfg.server.bindaddr, "NULL means 127.0.0.1");
	cr_assert_not(R.cfg.server.disconnect);
	cr_assert_eq(R.cfg.server.fd, -1);
	cr_assert_null(getenv("TPM_PORT"));

	/* type defaults to tcp */
	RUN("--server", "port=1,disconnect,bindaddr=0.0.0.0");
	expect_ok();
	cr_assert_eq(R.cfg.server.type, SOCK_TCP);
	cr_assert(R.cfg.server.disconnect);
	cr_assert_str_eq(R.cfg.server.bindaddr, "0.0.0.0");

	RUN("--server", "port=65535,bindaddr=::1");
	expect_ok();
	cr_assert_str_eq(R.cfg.server.bindaddr, "::1");
	cr_assert_null(R.cfg.server.ifname);

	RUN("--server", "port=1,bindaddr=fe80::1,ifname=lo");
	expect_ok();
	cr_assert_str_eq(R.cfg.server.bindaddr, "fe80::1");
	cr_assert_str_eq(R.cfg.server.ifname, "lo");

	/* unixio-only options are ignored for tcp */
	RUN("--server", "port=1,path=/x,mode=0600,uid=0");
	expect_ok();
	cr_assert_null(R.cfg.server.path);
	cr_assert_eq(R.cfg.server.mode, 0770);
	cr_assert_not(R.cfg.server.uid_set);

	RUN("--server", "port=1,disconnect=false");
	expect_ok();
	cr_assert_not(R.cfg.server.disconnect);
}

Test(cli, server_tcp_port_from_env)
{
	setenv("TPM_PORT", "6000", 1);
	RUN("--server", "type=tcp");
	expect_ok();
	cr_assert_eq(R.cfg.server.port, 6000);

	/* an explicit port wins over the environment */
	RUN("--server", "type=tcp,port=7");
	expect_ok();
	cr_assert_eq(R.cfg.server.port, 7);

	setenv("TPM_PORT", "70000", 1);
	RUN("--server", "type=tcp");
	expect_fail("TCP socket port outside valid range\n");

	setenv("TPM_PORT", "abc", 1);
	RUN("--server", "type=tcp");
	expect_fail("No valid port number provided for TCP socket.\n");

	setenv("TPM_PORT", "", 1);
	RUN("--server", "type=tcp");
	expect_fail("No valid port number provided for TCP socket.\n");

	unsetenv("TPM_PORT");
	RUN("--server", "type=tcp");
	expect_fail("No valid port number provided for TCP socket.\n");
	RUN("--server", "disconnect");
	expect_fail("No valid port number provided for TCP socket.\n");
}

Test(cli, server_tcp_fd)
{
	int sv[2], reg = make_regular_fd();

	make_socketpair(sv);
	/* a connected fd: no port needed, fd beats port */
	RUN("--server", fmt("type=tcp,fd=%d,port=99", sv[0]));
	expect_ok();
	cr_assert_eq(R.cfg.server.type, SOCK_TCP);
	cr_assert_eq(R.cfg.server.fd, sv[0]);
	cr_assert_eq(R.cfg.server.port, -1);

	RUN("--server", fmt("type=tcp,fd=%d", reg));
	expect_fail(fmt("Bad filedescriptor %d for TCP socket\n", reg));
	close(901);
	RUN("--server", "fd=901");
	expect_fail("Bad filedescriptor 901 for TCP socket\n");
}

Test(cli, server_tcp_errors)
{
	RUN("--server", "port=65536");
	expect_fail("TCP socket port outside valid range\n");
	RUN("--server", "port=1,bindaddr=1.2.3");
	expect_fail("Could not parse the bind address '1.2.3'\n");
	RUN("--server", "port=1,bindaddr=localhost");
	expect_fail("Could not parse the bind address 'localhost'\n");
	RUN("--server", "port=1,bindaddr=[::1]");
	expect_fail("Could not parse the bind address '[::1]'\n");
	RUN("--server", "port=1,bindaddr=::g");
	expect_fail("Could not parse the bind address '::g'\n");
	RUN("--server", "port=1,bindaddr=fe80::1");
	expect_fail("Missing interface name for link local address\n");
	RUN("--server", "port=1,bindaddr=fe80::1,ifname=nosuchif0");
	cr_assert_eq(R.code, 1);
	cr_assert_eq(strncmp(R.err, "Unknown network interface 'nosuchif0'", 37), 0, "%s", R.err);
	RUN("--server", "type=udp,port=1");
	expect_fail("Unsupport socket type: udp\n");
	RUN("--server", "type=TCP,port=1");
	expect_fail("Unsupport socket type: TCP\n");
	RUN("--server", "port=abc");
	expect_fail("Error parsing server options: invalid number 'abc'\n");
	RUN("--server", "port");
	expect_fail("Error parsing server options: invalid number 'true'\n");
	RUN("--server", "type=");
	expect_fail("Error parsing server options: Unknown option 'type='\n");
	RUN("--server", "port=1,clientfd=3");
	expect_fail("Error parsing server options: Unknown option 'clientfd=3'\n");
	RUN("--server", "port=1,terminate");
	expect_fail("Error parsing server options: Unknown option 'terminate'\n");
	RUN("--server", "port=99999999999");
	expect_fail("Error parsing server options: number '99999999999' is outside the valid range\n");
}

Test(cli, server_unixio)
{
	int sv[2];

	RUN("--server", "type=unixio,path=/tmp/data.sock");
	expect_ok();
	cr_assert_eq(R.cfg.server.type, SOCK_UNIXIO);
	cr_assert_str_eq(R.cfg.server.path, "/tmp/data.sock");
	cr_assert_eq(R.cfg.server.mode, 0770);
	cr_assert_not(R.cfg.server.uid_set);
	cr_assert_not(R.cfg.server.gid_set);
	cr_assert_eq(R.cfg.server.port, -1);

	RUN("--server", "type=unixio,path=/s,mode=0600,uid=root,gid=12345,disconnect,port=5,bindaddr=x");
	expect_ok();
	cr_assert_eq(R.cfg.server.mode, 0600);
	cr_assert(R.cfg.server.uid_set);
	cr_assert_eq(R.cfg.server.uid, 0);
	cr_assert(R.cfg.server.gid_set);
	cr_assert_eq(R.cfg.server.gid, 12345);
	cr_assert(R.cfg.server.disconnect);
	cr_assert_eq(R.cfg.server.port, -1, "tcp-only options are ignored");
	cr_assert_null(R.cfg.server.bindaddr);

	/* fd beats path */
	make_socketpair(sv);
	RUN("--server", fmt("type=unixio,path=/s,fd=%d", sv[0]));
	expect_ok();
	cr_assert_eq(R.cfg.server.fd, sv[0]);
	cr_assert_null(R.cfg.server.path);
}

Test(cli, server_unixio_errors)
{
	int reg = make_regular_fd();

	RUN("--server", "type=unixio");
	expect_fail("Missing path and file descriptor option for UnixIO socket\n");
	RUN("--server", "type=unixio,fd=-1");
	expect_fail("Missing path and file descriptor option for UnixIO socket\n");
	RUN("--server", fmt("type=unixio,fd=%d", reg));
	expect_fail(fmt("Bad filedescriptor %d for UnixIO socket\n", reg));
	RUN("--server", "type=unixio,path=/s,mode=0800");
	expect_fail("Error parsing server options: invalid mode type '0800'\n");
	RUN("--server", "type=unixio,path=/s,mode=1777");
	expect_fail("Error parsing server options: mode 1777 is invalid\n");
	RUN("--server", "type=unixio,path=/s,uid=no-such-user-xyz");
	expect_fail("Error parsing server options: User 'no-such-user-xyz' does not exist.\n");
	RUN("--server", "type=unixio,path=/s,gid=no-such-group-xyz");
	expect_fail("Error parsing server options: Group 'no-such-group-xyz' does not exist.\n");
}

/* ------------------------------------------------------------------------ */
/* --ctrl                                                                    */

Test(cli, ctrl_unixio)
{
	int sv[2];

	RUN("--ctrl", "type=unixio,path=/tmp/ctrl.sock");
	expect_ok();
	cr_assert_eq(R.cfg.ctrl.type, SOCK_UNIXIO);
	cr_assert_str_eq(R.cfg.ctrl.path, "/tmp/ctrl.sock");
	cr_assert_eq(R.cfg.ctrl.mode, 0770);
	cr_assert_eq(R.cfg.ctrl.fd, -1);
	cr_assert_eq(R.cfg.ctrl.clientfd, -1);
	cr_assert_not(R.cfg.ctrl.terminate);
	cr_assert_eq(R.cfg.server.type, SOCK_NONE, "ctrl does not touch server");

	RUN("--ctrl", "type=unixio,path=/c,mode=0660,uid=0,gid=root,terminate");
	expect_ok();
	cr_assert_eq(R.cfg.ctrl.mode, 0660);
	cr_assert(R.cfg.ctrl.uid_set);
	cr_assert(R.cfg.ctrl.gid_set);
	cr_assert_eq(R.cfg.ctrl.uid, 0);
	cr_assert_eq(R.cfg.ctrl.gid, 0);
	cr_assert(R.cfg.ctrl.terminate);

	/* precedence fd > clientfd > path; only the winner is recorded */
	make_socketpair(sv);
	RUN("--ctrl", fmt("type=unixio,path=/c,clientfd=%d", sv[1]));
	expect_ok();
	cr_assert_eq(R.cfg.ctrl.clientfd, sv[1]);
	cr_assert_eq(R.cfg.ctrl.fd, -1);
	cr_assert_null(R.cfg.ctrl.path);

	{
		char buf[128];

		snprintf(buf, sizeof(buf), "type=unixio,path=/c,clientfd=%d,fd=%d", sv[1], sv[0]);
		RUN("--ctrl", buf);
	}
	expect_ok();
	cr_assert_eq(R.cfg.ctrl.fd, sv[0]);
	cr_assert_eq(R.cfg.ctrl.clientfd, -1);
	cr_assert_null(R.cfg.ctrl.path);

	/* negative fds count as absent */
	RUN("--ctrl", "type=unixio,fd=-1,clientfd=-2,path=/c");
	expect_ok();
	cr_assert_str_eq(R.cfg.ctrl.path, "/c");
}

Test(cli, ctrl_tcp)
{
	int sv[2];

	RUN("--ctrl", "type=tcp,port=2322");
	expect_ok();
	cr_assert_eq(R.cfg.ctrl.type, SOCK_TCP);
	cr_assert_eq(R.cfg.ctrl.port, 2322);
	cr_assert_null(R.cfg.ctrl.bindaddr);

	RUN("--ctrl", "type=tcp,port=0,bindaddr=::,terminate=1");
	expect_ok();
	cr_assert_eq(R.cfg.ctrl.port, 0);
	cr_assert_str_eq(R.cfg.ctrl.bindaddr, "::");
	cr_assert(R.cfg.ctrl.terminate);

	make_socketpair(sv);
	RUN("--ctrl", fmt("type=tcp,port=5,fd=%d", sv[0]));
	expect_ok();
	cr_assert_eq(R.cfg.ctrl.fd, sv[0]);
	cr_assert_eq(R.cfg.ctrl.port, -1);

	/* clientfd is not a TCP thing and the TCP channel does not need TPM_PORT */
	setenv("TPM_PORT", "2321", 1);
	RUN("--ctrl", fmt("type=tcp,clientfd=%d", sv[0]));
	expect_fail("Missing port and fd options for TCP control channel\n");
}

Test(cli, ctrl_errors)
{
	int reg = make_regular_fd();

	RUN("--ctrl", "path=/c");
	expect_fail("Missing type parameter for control channel\n");
	RUN("--ctrl", "");
	expect_fail("Missing type parameter for control channel\n");
	RUN("--ctrl", "type=udp,port=1");
	expect_fail("Unsupport control channel type: udp\n");
	RUN("--ctrl", "type");
	expect_fail("Unsupport control channel type: true\n");
	RUN("--ctrl", "type=unixio");
	expect_fail("Missing path and fd options for UnixIO control channel\n");
	RUN("--ctrl", "type=unixio,port=3");
	expect_fail("Missing path and fd options for UnixIO control channel\n");
	RUN("--ctrl", "type=tcp");
	expect_fail("Missing port and fd options for TCP control channel\n");
	RUN("--ctrl", "type=tcp,path=/c");
	expect_fail("Missing port and fd options for TCP control channel\n");
	RUN("--ctrl", "type=tcp,port=65536");
	expect_fail("TCP control channel port outside valid range\n");
	RUN("--ctrl", "type=tcp,port=1,bindaddr=300.1.1.1");
	expect_fail("Could not parse the bind address '300.1.1.1'\n");
	RUN("--ctrl", "type=tcp,port=1,bindaddr=fe80::2");
	expect_fail("Missing interface name for link local address\n");
	RUN("--ctrl", fmt("type=unixio,fd=%d", reg));
	expect_fail(fmt("Bad filedescriptor %d for UnixIO control channel\n", reg));
	RUN("--ctrl", fmt("type=unixio,clientfd=%d", reg));
	expect_fail(fmt("Bad filedescriptor %d for UnixIO control channel\n", reg));
	RUN("--ctrl", fmt("type=tcp,fd=%d", reg));
	expect_fail(fmt("Bad filedescriptor %d for TCP control channel\n", reg));
	RUN("--ctrl", "type=unixio,path=/c,disconnect");
	expect_fail("Error parsing ctrl options: Unknown option 'disconnect'\n");
	RUN("--ctrl", "type=unixio,clientfd=x");
	expect_fail("Error parsing ctrl options: invalid number 'x'\n");
	RUN("--ctrl", "type=unixio,path=/c,mode=");
	expect_fail("Error parsing ctrl options: Unknown option 'mode='\n");
}

Test(cli, ctrl_checked_before_server)
{
	RUN("--server", "type=bogus", "--ctrl", "type=bogus");
	expect_fail("Unsupport control channel type: bogus\n");
}

/* ------------------------------------------------------------------------ */
/* --tpmstate                                                                */

Test(cli, tpmstate)
{
	RUN("--tpmstate", "dir=/var/lib/tpm");
	expect_ok();
	cr_assert_str_eq(R.cfg.state_uri, "dir:///var/lib/tpm");
	cr_assert_eq(R.cfg.state_mode, 0640);
	cr_assert_not(R.cfg.state_mode_set);

	RUN("--tpmstate", "dir=relative/dir,mode=0600");
	expect_ok();
	cr_assert_str_eq(R.cfg.state_uri, "dir://relative/dir");
	cr_assert_eq(R.cfg.state_mode, 0600);
	cr_assert(R.cfg.state_mode_set);

	/* the directory and the linear file backend; others are refused up front */
	RUN("--tpmstate", "backend-uri=dir:///var/lib/tpm");
	expect_ok();
	cr_assert_str_eq(R.cfg.state_uri, "dir:///var/lib/tpm");
	RUN("--tpmstate", "backend-uri=file:///var/lib/tpm.img");
	expect_ok();
	cr_assert_str_eq(R.cfg.state_uri, "file:///var/lib/tpm.img");
	RUN("--tpmstate", "backend-uri=file://rel/tpm.img,mode=0600");
	expect_ok();
	cr_assert_str_eq(R.cfg.state_uri, "file://rel/tpm.img");
	cr_assert_eq(R.cfg.state_mode, 0600, "parsed, though the file backend ignores it");
	RUN("--tpmstate", "backend-uri=file:///dev/loop0");
	expect_ok();
	cr_assert_str_eq(R.cfg.state_uri, "file:///dev/loop0");
	RUN("--tpmstate", "backend-uri=bogus://x,mode=0");
	expect_fail("Error: unsupported backend URI 'bogus://x' (only dir://PATH and file://PATH "
		    "are supported).\n");
	RUN("--tpmstate", "backend-uri=rbd://pool/img");
	expect_fail("Error: unsupported backend URI 'rbd://pool/img' (only dir://PATH and "
		    "file://PATH are supported).\n");
	RUN("--tpmstate", "backend-uri=/tmp/x.img");
	expect_fail("Error: unsupported backend URI '/tmp/x.img' (only dir://PATH and file://PATH "
		    "are supported).\n");
	RUN("--tpmstate", "backend-uri=dir://");
	cr_assert_eq(R.rc, 1);
	RUN("--tpmstate", "backend-uri=file://");
	expect_fail("Error: unsupported backend URI 'file://' (only dir://PATH and file://PATH "
		    "are supported).\n");
	/* dir= still wins over a file:// backend-uri */
	RUN("--tpmstate", "backend-uri=file:///b.img,dir=/a");
	expect_ok();
	cr_assert_str_eq(R.cfg.state_uri, "dir:///a");
	RUN("--tpmstate", "backend-uri=dir:///x,mode=0");
	expect_ok();
	cr_assert_eq(R.cfg.state_mode, 0);
	cr_assert(R.cfg.state_mode_set);

	/* dir wins over backend-uri, in either order */
	RUN("--tpmstate", "backend-uri=dir:///b,dir=/a");
	expect_ok();
	cr_assert_str_eq(R.cfg.state_uri, "dir:///a");
	RUN("--tpmstate", "dir=/a,backend-uri=dir:///b");
	expect_ok();
	cr_assert_str_eq(R.cfg.state_uri, "dir:///a");

	/* first dir= wins */
	RUN("--tpmstate", "dir=/a,dir=/b");
	expect_ok();
	cr_assert_str_eq(R.cfg.state_uri, "dir:///a");
}

Test(cli, tpmstate_errors)
{
	RUN("--tpmstate", "mode=0600");
	expect_fail("The dir or backend-uri parameters is required for the tpmstate option.\n");
	RUN("--tpmstate", "");
	expect_fail("The dir or backend-uri parameters is required for the tpmstate option.\n");
	RUN("--tpmstate", "dir=/a,mode=01000");
	expect_fail("Error parsing tpmstate options: mode 01000 is invalid\n");
	RUN("--tpmstate", "dir=/a,mode=abc");
	expect_fail("Error parsing tpmstate options: invalid mode type 'abc'\n");
	RUN("--tpmstate", "/var/lib/tpm");
	expect_fail("Error parsing tpmstate options: Unknown option '/var/lib/tpm'\n");
	RUN("--tpmstate", "dir=");
	expect_fail("Error parsing tpmstate options: Unknown option 'dir='\n");
	RUN("--tpmstate", "dir=/a,locked");
	expect_fail("Error parsing tpmstate options: Unknown option 'locked'\n");
}

Test(cli, tpmstate_long_path)
{
	size_t n = 8000;
	char *arg = malloc(n + 8);

	cr_assert_not_null(arg);
	strcpy(arg, "dir=/");
	memset(arg + 5, 'd', n);
	arg[5 + n] = '\0';
	RUN("--tpmstate", arg);
	expect_ok();
	cr_assert_eq(strlen(R.cfg.state_uri), strlen("dir:///") + n);
	free(arg);
}

/* ------------------------------------------------------------------------ */
/* --log                                                                     */

Test(cli, log)
{
	RUN("--log", "file=/tmp/x.log,level=20,prefix=vtpm: ,truncate");
	expect_ok();
	cr_assert(R.cfg.log.given);
	cr_assert_str_eq(R.cfg.log.file, "/tmp/x.log");
	cr_assert_eq(R.cfg.log.fd, -1);
	cr_assert_eq(R.cfg.log.level, 20);
	cr_assert_str_eq(R.cfg.log.prefix, "vtpm: ");
	cr_assert(R.cfg.log.truncate);

	/* any --log, even one without prefix=, marks the log as given */
	RUN("--log", "level=2");
	expect_ok();
	cr_assert(R.cfg.log.given);
	cr_assert_null(R.cfg.log.prefix);
	cr_assert_null(R.cfg.log.file);
	cr_assert_eq(R.cfg.log.level, 2);
	cr_assert_not(R.cfg.log.truncate);

	RUN("--log", "");
	expect_ok();
	cr_assert(R.cfg.log.given);
	cr_assert_eq(R.cfg.log.level, 1);

	/* level 0 becomes 1 */
	RUN("--log", "fd=5,level=0");
	expect_ok();
	cr_assert_eq(R.cfg.log.fd, 5);
	cr_assert_eq(R.cfg.log.level, 1);

	/* file= wins over fd= */
	RUN("--log", "fd=5,file=-");
	expect_ok();
	cr_assert_str_eq(R.cfg.log.file, "-");
	cr_assert_eq(R.cfg.log.fd, -1);

	RUN("--log", "fd=-4");
	expect_ok();
	cr_assert_eq(R.cfg.log.fd, -1);
}

Test(cli, log_errors)
{
	RUN("--log", "level=abc");
	expect_fail("Error parsing logging options: invalid number 'abc'\n");
	RUN("--log", "level=-1");
	expect_fail("Error parsing logging options: invalid number '-1'\n");
	RUN("--log", "fd=1x");
	expect_fail("Error parsing logging options: invalid number '1x'\n");
	RUN("--log", "file");
	cr_assert_eq(R.rc, 0, "bare file is file=true, swtpm accepts that");
	cr_assert_str_eq(R.cfg.log.file, "true");
	RUN("--log", "prefix=");
	expect_fail("Error parsing logging options: Unknown option 'prefix='\n");
	RUN("--log", "/tmp/x.log");
	expect_fail("Error parsing logging options: Unknown option '/tmp/x.log'\n");
}

/* ------------------------------------------------------------------------ */
/* --locality, --key, --pid, --flags, --seccomp, --runas                     */

Test(cli, locality)
{
	RUN("--locality", "reject-locality-4,allow-set-locality");
	expect_ok();
	cr_assert(R.cfg.reject_locality4);
	cr_assert(R.cfg.allow_set_locality);
	RUN("--locality", "allow-set-locality=0,reject-locality-4=TRUE");
	expect_ok();
	cr_assert(R.cfg.reject_locality4);
	cr_assert_not(R.cfg.allow_set_locality);
	RUN("--locality", "");
	expect_ok();
	cr_assert_not(R.cfg.reject_locality4);
	RUN("--locality", "reject-locality-3");
	expect_fail("Error parsing locality options: Unknown option 'reject-locality-3'\n");
}

Test(cli, tpmstate_lock)
{
	RUN("--tpmstate", "dir=/x,lock=false");
	expect_ok();
	cr_assert(R.cfg.state_nolock);
	RUN("--tpmstate", "dir=/x,lock");
	expect_ok();
	cr_assert_not(R.cfg.state_nolock);
	RUN("--tpmstate", "dir=/x");
	expect_ok();
	cr_assert_not(R.cfg.state_nolock, "locked by default");
}

Test(cli, keys_stored_raw)
{
	/* recorded verbatim; reading keys (fds, remove=) belongs to start-up */
	RUN("--key", "file=/k,mode=aes-256-cbc,format=binary,remove", "--migration-key",
	    "pwdfile=/p,kdf=sha512");
	expect_ok();
	cr_assert_str_eq(R.cfg.keys.key, "file=/k,mode=aes-256-cbc,format=binary,remove");
	cr_assert_str_eq(R.cfg.keys.migration_key, "pwdfile=/p,kdf=sha512");
	RUN("--key", "fd=3", "--key", "fd=7");
	expect_ok();
	cr_assert_str_eq(R.cfg.keys.key, "fd=7", "the last occurrence wins");
}

Test(cli, pid)
{
	int reg = make_regular_fd(), sv[2];

	RUN("--pid", "file=/run/swtpm.pid");
	expect_ok();
	cr_assert_str_eq(R.cfg.pid_file, "/run/swtpm.pid");
	cr_assert_eq(R.cfg.pid_fd, -1);

	RUN("--pid", fmt("fd=%d", reg));
	expect_ok();
	cr_assert_eq(R.cfg.pid_fd, reg);
	cr_assert_null(R.cfg.pid_file);

	/* file= wins over fd= */
	RUN("--pid", fmt("fd=%d,file=/p", reg));
	expect_ok();
	cr_assert_str_eq(R.cfg.pid_file, "/p");
	cr_assert_eq(R.cfg.pid_fd, -1);

	make_socketpair(sv);
	RUN("--pid", fmt("fd=%d", sv[0]));
	expect_fail(fmt("Bad filedescriptor %d for pid file\n", sv[0]));
	close(902);
	RUN("--pid", "fd=902");
	expect_fail("Bad filedescriptor 902 for pid file\n");
	RUN("--pid", "");
	expect_fail("The file or fd parameter is required for the pid option.\n");
	RUN("--pid", "fd=-1");
	expect_fail("The file or fd parameter is required for the pid option.\n");
	RUN("--pid", "path=/p");
	expect_fail("Error parsing pid options: Unknown option 'path=/p'\n");
	RUN("--pid", "fd=x");
	expect_fail("Error parsing pid options: invalid number 'x'\n");
}

Test(cli, flags)
{
	RUN("--flags", "not-need-init");
	expect_ok();
	cr_assert(R.cfg.not_need_init);
	cr_assert_eq(R.cfg.startup, STARTUP_NONE);
	cr_assert_not(R.cfg.disable_auto_shutdown);

	RUN("--flags", "startup-clear");
	expect_ok();
	cr_assert(R.cfg.not_need_init, "startup-* implies not-need-init");
	cr_assert_eq(R.cfg.startup, STARTUP_CLEAR);

	RUN("--flags", "startup-state");
	expect_ok();
	cr_assert(R.cfg.not_need_init);
	cr_assert_eq(R.cfg.startup, STARTUP_STATE);

	RUN("--flags", "startup-deactivated");
	expect_ok();
	cr_assert(R.cfg.not_need_init);
	cr_assert_eq(R.cfg.startup, STARTUP_DEACTIVATED);

	RUN("--flags", "startup-none");
	expect_ok();
	cr_assert_not(R.cfg.not_need_init, "startup-none does not start the TPM");
	cr_assert_eq(R.cfg.startup, STARTUP_NONE);

	RUN("--flags", "disable-auto-shutdown");
	expect_ok();
	cr_assert(R.cfg.disable_auto_shutdown);
	cr_assert_not(R.cfg.not_need_init);
}

Test(cli, flags_precedence)
{
	RUN("--flags", "startup-none,startup-deactivated,startup-state,startup-clear");
	expect_ok();
	cr_assert_eq(R.cfg.startup, STARTUP_CLEAR);
	RUN("--flags", "startup-deactivated,startup-state");
	expect_ok();
	cr_assert_eq(R.cfg.startup, STARTUP_STATE);
	RUN("--flags", "startup-none,startup-deactivated");
	expect_ok();
	cr_assert_eq(R.cfg.startup, STARTUP_DEACTIVATED);
	cr_assert(R.cfg.not_need_init);
	RUN("--flags", "startup-clear=false,startup-state=0,not-need-init=false");
	expect_ok();
	cr_assert_eq(R.cfg.startup, STARTUP_NONE);
	cr_assert_not(R.cfg.not_need_init);
	RUN("--flags", "startup-clear,not-need-init=0");
	expect_ok();
	cr_assert(R.cfg.not_need_init);
}

Test(cli, migration)
{
	RUN("--tpmstate", "dir=/a");
	expect_ok();
	cr_assert_not(R.cfg.migration_incoming);
	cr_assert_not(R.cfg.migration_release_lock_outgoing);

	RUN("--migration", "incoming");
	expect_ok();
	cr_assert(R.cfg.migration_incoming);
	cr_assert_not(R.cfg.migration_release_lock_outgoing);

	RUN("--migration", "release-lock-outgoing");
	expect_ok();
	cr_assert_not(R.cfg.migration_incoming);
	cr_assert(R.cfg.migration_release_lock_outgoing);

	RUN("--migration", "incoming,release-lock-outgoing", "--tpmstate", "backend-uri=file:///x");
	expect_ok();
	cr_assert(R.cfg.migration_incoming);
	cr_assert(R.cfg.migration_release_lock_outgoing);

	RUN("--migration", "incoming=false,release-lock-outgoing=true");
	expect_ok();
	cr_assert_not(R.cfg.migration_incoming);
	cr_assert(R.cfg.migration_release_lock_outgoing);

	/* nothing given is allowed, the last --migration wins */
	RUN("--migration", "");
	expect_ok();
	cr_assert_not(R.cfg.migration_incoming);
	RUN("--migration", "incoming", "--migration", "release-lock-outgoing");
	expect_ok();
	cr_assert_not(R.cfg.migration_incoming);
	cr_assert(R.cfg.migration_release_lock_outgoing);
}

Test(cli, migration_errors)
{
	RUN("--migration", "outgoing");
	expect_fail("Error parsing migration options: Unknown option 'outgoing'\n");
	RUN("--migration", "incoming,bogus=1");
	expect_fail("Error parsing migration options: Unknown option 'bogus=1'\n");
	RUN("--migration");
	expect_getopt_fail("socket: option '--migration' requires an argument\n");
	/* checked after --flags, as in swtpm 0.8 */
	RUN("--migration", "bogus", "--flags", "bogus");
	expect_fail("Error parsing flags options: Unknown option 'bogus'\n");
	/* --print-states and --print-capabilities do not look at it */
	RUN("--print-states", "--tpmstate", "dir=/a", "--migration", "bogus");
	expect_ok();
	RUN("--print-capabilities", "--migration", "bogus");
	expect_ok();
}

Test(cli, flags_errors)
{
	RUN("--flags", "startup-bogus");
	expect_fail("Error parsing flags options: Unknown option 'startup-bogus'\n");
	RUN("--flags", "not-need-init=");
	expect_fail("Error parsing flags options: Unknown option 'not-need-init='\n");
}

Test(cli, seccomp)
{
	RUN("--seccomp", "action=none");
	expect_ok();
	cr_assert_eq(R.cfg.seccomp, SECCOMP_NONE);
	RUN("--seccomp", "action=log");
	expect_ok();
	cr_assert_eq(R.cfg.seccomp, SECCOMP_LOG);
	RUN("--seccomp", "action=kill");
	expect_ok();
	cr_assert_eq(R.cfg.seccomp, SECCOMP_KILL);
	RUN("--seccomp", "");
	expect_ok();
	cr_assert_eq(R.cfg.seccomp, SECCOMP_KILL);
	RUN("--seccomp", "action=none,action=log");
	expect_ok();
	cr_assert_eq(R.cfg.seccomp, SECCOMP_NONE);

	RUN("--seccomp", "action=trap");
	expect_fail("Unsupported seccomp log action trap\n");
	RUN("--seccomp", "action=NONE");
	expect_fail("Unsupported seccomp log action NONE\n");
	RUN("--seccomp", "action");
	expect_fail("Unsupported seccomp log action true\n");
	RUN("--seccomp", "none");
	expect_fail("Error parsing seccomp options: Unknown option 'none'\n");
}

Test(cli, runas)
{
	RUN("-r", "root");
	expect_ok();
	cr_assert_str_eq(R.cfg.runas, "root");
	RUN("--runas", "0");
	expect_ok();
	cr_assert_str_eq(R.cfg.runas, "0");
	RUN("--runas", "4294967295");
	expect_ok();
	cr_assert_str_eq(R.cfg.runas, "4294967295");

	RUN("-r", "no-such-user-xyz");
	expect_fail("Error: User 'no-such-user-xyz' does not exist.\n");
	RUN("-r", "");
	expect_fail("Error: User '' does not exist.\n");
	RUN("-r", "-1");
	expect_fail("Error: User '-1' does not exist.\n");
	RUN("-r", "4294967296");
	expect_fail("Error: uid 4294967296 outside valid range.\n");
}

/* ------------------------------------------------------------------------ */
/* start-up order and the print options                                      */

Test(cli, validation_order)
{
	/* runas < log < fd check < ctrl < server < key/pid/locality/tpmstate/seccomp/flags */
	RUN("--flags", "x", "--seccomp", "x", "--tpmstate", "x", "--locality", "x", "--pid", "x",
	    "--server", "x", "--ctrl", "x", "--log", "x", "--runas", "no-such-user-xyz");
	expect_fail("Error: User 'no-such-user-xyz' does not exist.\n");
	RUN("--flags", "x", "--seccomp", "x", "--tpmstate", "x", "--locality", "x", "--pid", "x",
	    "--server", "x", "--ctrl", "x", "--log", "x");
	expect_fail("Error parsing logging options: Unknown option 'x'\n");
	RUN("--flags", "x", "--seccomp", "x", "--tpmstate", "x", "--locality", "x", "--pid", "x",
	    "--server", "x", "--ctrl", "x");
	expect_fail("Error parsing ctrl options: Unknown option 'x'\n");
	RUN("--flags", "x", "--seccomp", "x", "--tpmstate", "x", "--locality", "x", "--pid", "x",
	    "--server", "x");
	expect_fail("Error parsing server options: Unknown option 'x'\n");
	RUN("--flags", "x", "--seccomp", "x", "--tpmstate", "x", "--locality", "x", "--pid", "x");
	expect_fail("Error parsing pid options: Unknown option 'x'\n");
	RUN("--flags", "x", "--seccomp", "x", "--tpmstate", "x", "--locality", "x");
	expect_fail("Error parsing locality options: Unknown option 'x'\n");
	RUN("--flags", "x", "--seccomp", "x", "--tpmstate", "x");
	expect_fail("Error parsing tpmstate options: Unknown option 'x'\n");
	RUN("--flags", "x", "--seccomp", "x");
	expect_fail("Error parsing seccomp options: Unknown option 'x'\n");
	RUN("--flags", "x");
	expect_fail("Error parsing flags options: Unknown option 'x'\n");
}

Test(cli, print_capabilities_skips_later_checks)
{
	RUN("--print-capabilities", "--tpm2", "--ctrl", "bogus", "--server", "type=bogus",
	    "--tpmstate", "x", "--pid", "x", "--flags", "x", "--seccomp", "x");
	expect_ok();
	cr_assert(R.cfg.print_capabilities);
	cr_assert(R.cfg.tpm2);
	cr_assert_eq(R.cfg.ctrl.type, SOCK_NONE);

	/* but --runas and --log still come first */
	RUN("--print-capabilities", "--runas", "no-such-user-xyz");
	expect_fail("Error: User 'no-such-user-xyz' does not exist.\n");
	RUN("--print-capabilities", "--log", "level=q");
	expect_fail("Error parsing logging options: invalid number 'q'\n");
	RUN("--print-capabilities", "stray");
	expect_fail("Unknown parameter 'stray'\n");
}

Test(cli, print_states)
{
	RUN("--print-states");
	expect_fail("Error: --tpmstate option is required for --print-states\n");

	/* TPM_PATH is not honoured for --print-states */
	setenv("TPM_PATH", "/tmp", 1);
	RUN("--print-states");
	expect_fail("Error: --tpmstate option is required for --print-states\n");

	RUN("--print-states", "--tpmstate", "dir=/tmp/st,mode=0600", "--pid", "bogus", "--flags",
	    "bogus");
	expect_ok();
	cr_assert(R.cfg.print_states);
	cr_assert_str_eq(R.cfg.state_uri, "dir:///tmp/st");
	cr_assert_eq(R.cfg.state_mode, 0600);

	RUN("--print-states", "--tpmstate", "mode=0600");
	expect_fail("The dir or backend-uri parameters is required for the tpmstate option.\n");

	/* ctrl and server are validated before --print-states */
	RUN("--print-states", "--ctrl", "type=bogus");
	expect_fail("Unsupport control channel type: bogus\n");
}

Test(cli, full_command_line)
{
	int sv[2];
	char ctrl[64];

	make_socketpair(sv);
	snprintf(ctrl, sizeof(ctrl), "type=unixio,clientfd=%d,terminate", sv[0]);
	RUN("--tpm2", "--tpmstate", "dir=/var/lib/swtpm,mode=0600", "--ctrl", ctrl, "--server",
	    "type=tcp,port=2321,bindaddr=127.0.0.1", "--log", "file=/tmp/l,level=5", "--pid",
	    "file=/tmp/p", "--flags", "not-need-init,startup-clear,disable-auto-shutdown",
	    "--locality", "allow-set-locality", "--seccomp", "action=log", "-t", "-d",
	    "--runas", "root");
	expect_ok();
	cr_assert(R.cfg.tpm2);
	cr_assert_str_eq(R.cfg.state_uri, "dir:///var/lib/swtpm");
	cr_assert_eq(R.cfg.ctrl.clientfd, sv[0]);
	cr_assert(R.cfg.ctrl.terminate);
	cr_assert_eq(R.cfg.server.port, 2321);
	cr_assert_str_eq(R.cfg.server.bindaddr, "127.0.0.1");
	cr_assert_eq(R.cfg.log.level, 5);
	cr_assert_str_eq(R.cfg.pid_file, "/tmp/p");
	cr_assert_eq(R.cfg.startup, STARTUP_CLEAR);
	cr_assert(R.cfg.disable_auto_shutdown);
	cr_assert(R.cfg.allow_set_locality);
	cr_assert_eq(R.cfg.seccomp, SECCOMP_LOG);
	cr_assert(R.cfg.terminate);
	cr_assert(R.cfg.daemon);
	cr_assert_str_eq(R.cfg.runas, "root");
	cr_assert_not(R.cfg.print_capabilities);
}

Test(cli, error_releases_config)
{
	RUN("--tpmstate", "dir=/a", "--log", "file=/l", "--flags", "bogus");
	cr_assert_eq(R.code, 1);
	cr_assert_null(R.cfg.state_uri, "cfg was released on the error path");
	cr_assert_null(R.cfg.log.file);
	cr_assert_eq(R.cfg.data_fd, -1);
	config_free(&R.cfg); /* still safe */
}

/* ------------------------------------------------------------------------ */
/* --print-capabilities output                                               */

static char *caps_line(bool tpm2)
{
	struct vtpm_config c;
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);

	config_init(&c);
	c.tpm2 = tpm2;
	cr_assert_eq(cli_print_capabilities(f, &c), 0);
	fclose(f);
	return buf;
}

static const char caps_common[] =
	"{ \"type\": \"swtpm\", \"features\": [ \"tpm-1.2\", \"tpm-2.0\", "
	"\"tpm-send-command-header\", \"flags-opt-startup\", \"flags-opt-disable-auto-shutdown\", "
	"\"ctrl-opt-terminate\", \"cmdarg-seccomp\", \"cmdarg-key-fd\", \"cmdarg-pwd-fd\", \"cmdarg-print-states\", "
	"\"cmdarg-migration\", \"nvram-backend-dir\", \"nvram-backend-file\", "
	"\"tpmstate-opt-lock\"";

Test(caps, tpm12_exact)
{
	char *s = caps_line(false);
	char want[1024], *info;

	snprintf(want, sizeof(want), "%s ], \"version\": \"0.8.0\" }\n", caps_common);
	cr_assert_str_eq(s, want);
	/* libtpms is left on the version that was asked for */
	info = TPMLIB_GetInfo(TPMLIB_INFO_TPMSPECIFICATION);
	cr_assert_not_null(strstr(info, "\"family\":\"1.2\""), "%s", info);
	free(info);
	free(s);
}

Test(caps, tpm2_with_keysizes)
{
	char *s = caps_line(true);
	char *info, *p;
	const char *tail = " ], \"version\": \"0.8.0\" }\n";
	int n = 0;

	cr_assert_eq(strncmp(s, caps_common, strlen(caps_common)), 0, "%s", s);
	cr_assert_eq(strcmp(s + strlen(s) - strlen(tail), tail), 0, "%s", s);
	cr_assert_not_null(strstr(s, ", \"rsa-keysize-2048\""), "%s", s);
	for (p = s; (p = strstr(p, "\"rsa-keysize-")); p++)
		n++;
	/* as many entries as libtpms lists */
	info = TPMLIB_GetInfo(TPMLIB_INFO_TPMFEATURES);
	p = strstr(info, "\"RSAKeySizes\":[");
	cr_assert_not_null(p, "%s", info);
	{
		int commas = 0;

		for (p += 15; *p && *p != ']'; p++)
			commas += *p == ',';
		cr_assert_eq(n, commas + 1, "%s vs %s", s, info);
	}
	free(info);
	info = TPMLIB_GetInfo(TPMLIB_INFO_TPMSPECIFICATION);
	cr_assert_not_null(strstr(info, "\"family\":\"2.0\""), "%s", info);
	free(info);
	free(s);
}

Test(caps, only_implemented_features)
{
	char *s = caps_line(true);

	/* what is implemented here: no --chroot, no profiles; tpmstate lock= (0.10) */
	cr_assert_not_null(strstr(s, "\"cmdarg-print-states\", \"cmdarg-migration\", "
				     "\"nvram-backend-dir\", \"nvram-backend-file\", "
				     "\"tpmstate-opt-lock\""));
	cr_assert_null(strstr(s, "cmdarg-chroot"));
	cr_assert_null(strstr(s, "cmdarg-profile"));
	cr_assert_eq(strchr(s, '\n'), s + strlen(s) - 1, "exactly one line");
	free(s);
}

Test(caps, repeatable)
{
	char *a = caps_line(true), *b = caps_line(false), *c = caps_line(true);

	cr_assert_str_eq(a, c);
	cr_assert_str_neq(a, b);
	free(a);
	free(b);
	free(c);
}

/* ------------------------------------------------------------------------ */
/* swtpm chardev (cli.md §4.1)                                               */

Test(chardev, device_path_and_fd)
{
	int sv[2];

	make_socketpair(sv);
	/* -c is only recorded: instance_run opens it */
	CRUN("-c", "/nonexistent/dev");
	expect_ok();
	cr_assert_eq(R.cfg.iface, IFACE_CHARDEV);
	cr_assert_str_eq(R.cfg.chardev_path, "/nonexistent/dev");
	cr_assert_eq(R.cfg.data_fd, -1);
	cr_assert(R.cfg.terminate);
	cr_assert_not(R.cfg.vtpm_proxy);

	CRUN("--fd", fmt("%d", sv[0]), "--tpm2");
	expect_ok();
	cr_assert_eq(R.cfg.data_fd, sv[0]);
	cr_assert_null(R.cfg.chardev_path);
	cr_assert(R.cfg.tpm2);

	/* the first of -c/-f wins; the loser is not even looked at */
	CRUN("--chardev", "/dev/a", "-f", "abc", "-c", "/dev/b");
	expect_ok();
	cr_assert_str_eq(R.cfg.chardev_path, "/dev/a");
	cr_assert_eq(R.cfg.data_fd, -1);
	CRUN("-f", fmt("%d", sv[1]), "-c", "/dev/a", "-f", fmt("%d", sv[0]));
	expect_ok();
	cr_assert_eq(R.cfg.data_fd, sv[1]);
	cr_assert_null(R.cfg.chardev_path);
	close(sv[0]);
	close(sv[1]);
}

Test(chardev, errors)
{
	int reg = make_regular_fd();
	int sv[2];

	make_socketpair(sv);
	CRUN("--tpm2");
	expect_fail("Error: Missing character device or file descriptor\n");
	run_args((const char *[]){ "chardev", NULL });
	expect_fail("Error: Missing character device or file descriptor\n");
	CRUN("-f", "abc");
	expect_fail("Cannot parse character device file descriptor.\n");
	CRUN("-f", fmt("%d", reg));
	expect_fail("Given file descriptor type is not supported.\n");
	close(900);
	CRUN("-f", "900");
	expect_fail("Cannot stat file descriptor: Bad file descriptor\n");
	CRUN("-f", "0");
	expect_fail("Error: Cannot accept file descriptors with values 0, 1, or 2\n");
	CRUN("--vtpm-proxy", "-c", "/dev/null");
	expect_fail("Cannot use vTPM proxy with a provided device.\n");
	CRUN("-f", fmt("%d", sv[0]), "--vtpm-proxy");
	expect_fail("Cannot use vTPM proxy with a provided device.\n");
	CRUN("-c", "/dev/null", "stray");
	expect_fail("Unknown parameter 'stray'\n");
	/* socket-only options do not exist here */
	CRUN("-p", "2321");
	expect_getopt_fail("chardev: invalid option -- 'p'\n");
	cr_assert_not_null(strstr(R.err, "Usage: "));
	cr_assert_not_null(strstr(R.err, " chardev [options]"));
	CRUN("-t");
	expect_getopt_fail("chardev: invalid option -- 't'\n");
	CRUN("--server", "type=tcp");
	expect_getopt_fail("chardev: unrecognized option '--server'\n");
	close(reg);
	close(sv[0]);
	close(sv[1]);
}

Test(chardev, start_up_order)
{
	/* --locality is checked before the proxy/device conflict and
	 * --print-capabilities (swtpm_chardev's order) ... */
	CRUN("--locality", "bogus", "--vtpm-proxy", "-c", "/dev/null");
	expect_fail("Error parsing locality options: Unknown option 'bogus'\n");
	CRUN("--locality", "bogus", "--print-capabilities");
	expect_fail("Error parsing locality options: Unknown option 'bogus'\n");
	/* ... the 0..2 check only after --print-capabilities ... */
	CRUN("-f", "0", "--print-capabilities");
	expect_ok();
	cr_assert(R.cfg.print_capabilities);
	/* ... --print-states before the missing device ... */
	CRUN("--print-states", "--tpmstate", "dir=/tmp");
	expect_ok();
	cr_assert(R.cfg.print_states);
	CRUN("--print-states");
	expect_fail("Error: --tpmstate option is required for --print-states\n");
	/* ... and the device before --ctrl */
	CRUN("--ctrl", "type=bogus");
	expect_fail("Error: Missing character device or file descriptor\n");
	CRUN("-c", "/dev/null", "--ctrl", "type=bogus");
	expect_fail("Unsupport control channel type: bogus\n");
}

Test(chardev, shared_options)
{
	CRUN("--vtpm-proxy", "--tpm2", "--ctrl", "type=unixio,path=/tmp/c",
	     "--locality", "allow-set-locality,reject-locality-4", "--flags",
	     "not-need-init", "--tpmstate", "dir=/tmp", "--seccomp", "action=none",
	     "--pid", "file=/tmp/p", "--log", "level=3", "-d");
	expect_ok();
	cr_assert(R.cfg.vtpm_proxy);
	cr_assert_eq(R.cfg.ctrl.type, SOCK_UNIXIO);
	cr_assert_str_eq(R.cfg.ctrl.path, "/tmp/c");
	cr_assert(R.cfg.allow_set_locality);
	cr_assert(R.cfg.reject_locality4);
	cr_assert(R.cfg.not_need_init);
	cr_assert_not(R.cfg.startup_set);
	cr_assert_str_eq(R.cfg.state_uri, "dir:///tmp");
	cr_assert_eq(R.cfg.seccomp, SECCOMP_NONE);
	cr_assert_str_eq(R.cfg.pid_file, "/tmp/p");
	cr_assert_eq(R.cfg.log.level, 3);
	cr_assert(R.cfg.daemon);
	cr_assert_eq(R.cfg.server.type, SOCK_NONE);

	CRUN("--vtpm-proxy", "--flags", "startup-none");
	expect_ok();
	cr_assert(R.cfg.startup_set);
	cr_assert_eq(R.cfg.startup, STARTUP_NONE);
	CRUN("--vtpm-proxy", "--flags", "startup-state");
	expect_ok();
	cr_assert(R.cfg.startup_set);
	cr_assert_eq(R.cfg.startup, STARTUP_STATE);
}

Test(chardev, help)
{
	static const char *const order[] = {
		"\n-c|--chardev <device>", "\n-f|--fd <fd>", "\n-d|--daemon", "\n--ctrl ",
		"\n--migration-key file=", "\n--migration-key pwdfile=", "\n--log ",
		"\n--key file=", "\n--key pwdfile=", "\n--pid ", "\n--tpmstate ",
		"\n-r|--runas ", "\n--vtpm-proxy", "\n--locality ", "\n--flags ", "\n--tpm2",
		"\n--seccomp ", "\n--print-capabilities", "\n--print-states", "\n-h|--help",
	};
	const char *p;

	CRUN("-h");
	cr_assert_eq(R.rc, 1);
	cr_assert_eq(R.code, 0);
	cr_assert_str_empty(R.err);
	cr_assert_not_null(strstr(R.out, " chardev [options]\n\nThe following options are supported:\n"));
	p = R.out;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		const char *q = strstr(p, order[i]);

		cr_assert_not_null(q, "'%s' missing or out of order", order[i] + 1);
		p = q + 1;
	}
	cr_assert_null(strstr(R.out, "\n-p|--port"));
	cr_assert_null(strstr(R.out, "\n--server"));
	cr_assert_null(strstr(R.out, "\n-t|--terminate"));
	/* no line beyond 79 columns */
	for (const char *l = R.out; *l;) {
		size_t len = strcspn(l, "\n");

		if (strncmp(l, "--", 2) != 0) /* syntax lines may be long */
			cr_assert_leq(len, 79, "%.*s", (int)len, l);
		l += len + (l[len] == '\n');
	}
}

Test(chardev, print_capabilities_same_as_socket)
{
	struct vtpm_config c;
	char *a = NULL, *b = NULL;
	size_t al, bl;
	FILE *f;

	for (int tpm2 = 0; tpm2 < 2; tpm2++) {
		config_init(&c);
		c.tpm2 = tpm2;
		f = open_memstream(&a, &al);
		cr_assert_eq(cli_print_capabilities(f, &c), 0);
		fclose(f);
		c.iface = IFACE_CHARDEV;
		c.vtpm_proxy = true;
		f = open_memstream(&b, &bl);
		cr_assert_eq(cli_print_capabilities(f, &c), 0);
		fclose(f);
		cr_assert_str_eq(a, b);
		free(a);
		free(b);
		a = b = NULL;
	}
}

TestSuite(chardev, .init = setup, .fini = teardown);

/* ------------------------------------------------------------------------ */
/* vTPM proxy: what the ioctl result does (io/vtpm_proxy.c)                  */

Test(vtpm_proxy, apply_defaults)
{
	struct vtpm_proxy_dev dev = { .tpm_num = 3, .fd = 7, .major = 10, .minor = 224 };
	struct vtpm_config c;
	char *out = NULL;
	size_t len;
	FILE *f;

	config_init(&c);
	c.iface = IFACE_CHARDEV;
	c.vtpm_proxy = true;
	f = open_memstream(&out, &len);
	cr_assert_eq(vtpm_proxy_apply(&dev, &c, f), 0);
	fclose(f);
	cr_assert_str_eq(out, "New TPM device: /dev/tpm3 (major/minor = 10/224)\n");
	cr_assert_eq(c.data_fd, 7);
	cr_assert(c.terminate);
	cr_assert(c.allow_set_locality);
	cr_assert_eq(c.startup, STARTUP_CLEAR);
	cr_assert(c.not_need_init);
	free(out);
	config_free(&c);
}

Test(vtpm_proxy, flags_override_startup)
{
	struct vtpm_proxy_dev dev = { .tpm_num = 4294967295u, .fd = 9, .major = 253, .minor = 65536 };
	struct vtpm_config c;
	char *out = NULL;
	size_t len;
	FILE *f;

	config_init(&c);
	c.startup_set = true;
	c.startup = STARTUP_NONE;
	c.reject_locality4 = true;
	f = open_memstream(&out, &len);
	cr_assert_eq(vtpm_proxy_apply(&dev, &c, f), 0);
	fclose(f);
	cr_assert_str_eq(out, "New TPM device: /dev/tpm4294967295 (major/minor = 253/65536)\n");
	cr_assert_eq(c.startup, STARTUP_NONE);
	/* the kernel's first command arrives at once and nobody sends CMD_INIT:
	 * the TPM runs whatever --flags says, which only picks the start-up */
	cr_assert(c.not_need_init, "the TPM is started even with --flags startup-none");
	cr_assert(c.allow_set_locality);
	cr_assert(c.reject_locality4, "other locality flags are kept");
	free(out);
	config_free(&c);
}

Test(vtpm_proxy, create_failures)
{
	struct vtpm_proxy_dev dev = { 0 };
	char *err = NULL;
	size_t len;
	FILE *f;

	f = open_memstream(&err, &len);
	cr_assert_eq(vtpm_proxy_create("/nonexistent/vtpmx", true, f, &dev), -ENOENT);
	fclose(f);
	cr_assert_str_eq(err, "Could not open /nonexistent/vtpmx: No such file or directory\n");
	free(err);

	/* a device without the ioctl: the open works, the ioctl fails */
	err = NULL;
	f = open_memstream(&err, &len);
	cr_assert_eq(vtpm_proxy_create("/dev/null", false, f, &dev), -ENOTTY);
	fclose(f);
	cr_assert_str_eq(err, "Ioctl to create vtpm proxy failed: Inappropriate ioctl for device\n");
	free(err);
}
