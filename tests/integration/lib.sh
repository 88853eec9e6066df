# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are used by the scripts
#
# Shared helpers for the real-client integration tests (sourced, not run).
#
# Environment:
#   SWTPM_EXE   emulator under test (default /usr/bin/swtpm, Debian's reference)
#   VTPM_LOOP   loop backend for our emulator (uring|epoll); just inherited
#
# Conventions:
#   * everything is on the loopback interface, TCP ports are in 20000-31999
#     (IBM TSS parses ports as signed 16-bit numbers);
#   * every wait is bounded; only processes started here are ever signalled;
#   * `fail` prints "FAIL <test>: <what>" plus context and exits 1;
#   * `skip` exits 77 (meson: skipped) and is only used when a client binary
#     is missing;
#   * a script ends with `pass`, which prints "PASS <test>".

set -euo pipefail

TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
REF_SWTPM=${REF_SWTPM:-/usr/bin/swtpm}
SWTPM_EXE=${SWTPM_EXE:-$REF_SWTPM}
export VTPM_LOOP=${VTPM_LOOP:-uring}

# Upper bound for one client invocation (seconds).
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-20}

# Results of `run`.
RC=0
OUT=
ERR=

# Started emulators: name -> pid / log file / exit status.
declare -A SW_PID=()
declare -A SW_LOG=()
declare -A SW_STATUS=()
# Ports handed out by this script (never hand one out twice).
declare -A _USED_PORTS=()

# Keep paths short: UnixIO socket paths must fit in sun_path (108 bytes).
_tmpbase=${TMPDIR:-/tmp}
[ ${#_tmpbase} -le 40 ] && [ -d "$_tmpbase" ] || _tmpbase=/tmp
TMPD=$(mktemp -d "$_tmpbase/vtpmd-it.XXXXXX")

# ---------------------------------------------------------------- messages

info() { printf '# %s\n' "$*"; }

_dump_logs() {
	local n
	for n in "${!SW_LOG[@]}"; do
		if [ -s "${SW_LOG[$n]}" ]; then
			printf '# ---- emulator log %s (last 20 lines) ----\n' "$n"
			tail -n 20 "${SW_LOG[$n]}" | sed 's/^/#   /'
		fi
	done
}

fail() {
	printf 'FAIL %s: %s\n' "$TEST_NAME" "$*"
	_dump_logs
	exit 1
}

skip() {
	printf 'SKIP %s: %s\n' "$TEST_NAME" "$*"
	exit 77
}

pass() {
	printf 'PASS %s\n' "$TEST_NAME"
	exit 0
}

# require_cmd CMD... : skip the test when a client binary is not installed.
require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 ||
			skip "required client '$c' is not installed"
	done
}

# ---------------------------------------------------------------- cleanup

_cleanup() {
	local rc=$? n
	set +e
	for n in "${!SW_PID[@]}"; do
		if _pid_running "${SW_PID[$n]}"; then
			stop_swtpm "$n" >/dev/null 2>&1
		fi
	done
	rm -rf "$TMPD"
	exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- running clients

# run CMD ARGS... : run a client with a time limit; never fails by itself.
# Sets RC (exit status; 124 = timed out), OUT (stdout) and ERR (stderr).
run() {
	local o="$TMPD/.run.out" e="$TMPD/.run.err"
	set +e
	timeout -k 2 "$CLIENT_TIMEOUT" "$@" >"$o" 2>"$e"
	RC=$?
	set -e
	OUT=$(cat "$o")
	ERR=$(cat "$e")
}

_cmd_context() {
	printf 'command: %s\n  exit status: %s%s\n  stdout: %s\n  stderr: %s' \
		"$*" "$RC" "$([ "$RC" = 124 ] && echo ' (timed out)')" \
		"$(head -c 2000 <<<"$OUT")" "$(head -c 2000 <<<"$ERR")"
}

# expect_rc WANT CMD ARGS... : run and require exit status WANT.
expect_rc() {
	local want=$1
	shift
	run "$@"
	[ "$RC" = "$want" ] ||
		fail "expected exit status $want, $(_cmd_context "$@")"
}

# ok CMD ARGS... : run and require success.
ok() { expect_rc 0 "$@"; }

# expect_fail CMD ARGS... : run and require a non-zero status from the client
# itself (not a timeout, 124, nor a failure to execute it, 125-127).
expect_fail() {
	run "$@"
	case $RC in
	0 | 124 | 125 | 126 | 127)
		fail "expected the client to report a failure, $(_cmd_context "$@")" ;;
	esac
}

# ---------------------------------------------------------------- assertions

assert_eq() { # EXPECTED ACTUAL WHAT
	[ "$1" = "$2" ] ||
		fail "$3: expected '$1', got '$2'"
}

assert_match() { # EXTENDED-REGEX ACTUAL WHAT
	[[ $2 =~ $1 ]] ||
		fail "$3: '$2' does not match /$1/"
}

assert_contains() { # NEEDLE HAYSTACK WHAT
	[[ $2 == *"$1"* ]] ||
		fail "$3: '$1' not found in '$2'"
}

assert_file() { # PATH
	[ -f "$1" ] || fail "file $1 does not exist (dir: $(ls -A "$(dirname "$1")" 2>&1 | tr '\n' ' '))"
}

assert_no_file() { # PATH
	[ ! -e "$1" ] || fail "$1 exists but should not"
}

assert_mode() { # OCTAL PATH (e.g. 640)
	local m
	m=$(stat -c '%a' "$2") || fail "cannot stat $2"
	[ "$m" = "$1" ] || fail "mode of $2: expected $1, got $m"
}

# ---------------------------------------------------------------- hex helpers

hex_of_file() { od -An -v -tx1 "$1" | tr -d ' \n'; }

hex_to_bin() { # HEX (stdout: bytes)
	local h=${1,,}
	[ -z "$h" ] && return 0
	# shellcheck disable=SC2059
	printf "$(sed 's/../\\x&/g' <<<"$h")"
}

sha256_hex() { # (stdin) -> hex digest
	sha256sum | cut -d' ' -f1
}

# pcr_extend_hex OLDHEX DIGESTHEX -> SHA256(old || digest)
pcr_extend_hex() {
	{ hex_to_bin "$1"; hex_to_bin "$2"; } | sha256_hex
}

ZERO32=0000000000000000000000000000000000000000000000000000000000000000

# ---------------------------------------------------------------- ports

_port_busy() { # PORT: anything (any state, v4 or v6) bound to it?
	local hex
	hex=$(printf ':%04X ' "$1")
	if [ -r /proc/net/tcp ]; then
		awk -v p="$hex" 'NR > 1 && index($2 " ", p) { f = 1 } END { exit !f }' \
			/proc/net/tcp /proc/net/tcp6 2>/dev/null && return 0
		return 1
	fi
	# Fallback: something accepting on it?
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pick_ports N : set PORT to a base so that PORT..PORT+N-1 are free,
# within 20000..31999, and never handed out before by this script.
pick_ports() {
	local n=${1:-1} tries=0 base i good
	while [ $tries -lt 200 ]; do
		tries=$((tries + 1))
		base=$((20000 + (RANDOM * 32768 + RANDOM) % (12000 - n)))
		good=1
		for ((i = 0; i < n; i++)); do
			if [ -n "${_USED_PORTS[$((base + i))]:-}" ] || _port_busy $((base + i)); then
				good=0
				break
			fi
		done
		if [ $good = 1 ]; then
			for ((i = 0; i < n; i++)); do _USED_PORTS[$((base + i))]=1; done
			PORT=$base
			return 0
		fi
	done
	fail "could not find $n free loopback port(s) in 20000-31999"
}

# ---------------------------------------------------------------- processes

_pid_running() { # PID: alive and not a zombie
	local st
	kill -0 "$1" 2>/dev/null || return 1
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "$st" != Z ] && [ "$st" != X ]
}

_tcp_listening() { # PORT
	local hex
	hex=$(printf ':%04X' "$1")
	if [ -r /proc/net/tcp ]; then
		# state 0A = LISTEN
		awk -v p="$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
			/proc/net/tcp /proc/net/tcp6 2>/dev/null
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}

_unix_listening() { # PATH
	[ -S "$1" ] || return 1
	if [ -r /proc/net/unix ]; then
		# flags 00010000 = __SO_ACCEPTCON (listening)
		awk -v p="$1" 'NR > 1 && $4 == "00010000" && $8 == p { f = 1 } END { exit !f }' /proc/net/unix
	fi
}

# start_swtpm NAME EXE ARGS... : start `EXE ARGS...` in the background (log in
# $TMPD/NAME.log), then wait (<= 5 s) until every socket named by --server /
# --ctrl (type=tcp,port=N or type=unixio,path=P) listens. Sets SW_PID[NAME].
start_swtpm() {
	local name=$1 exe=$2
	shift 2
	local log="$TMPD/$name.log" a prev='' kind spec
	local -a tcp=() unix=()
	for a in "$@"; do
		if [ "$prev" = --server ] || [ "$prev" = --ctrl ]; then
			kind=tcp
			[[ $a == *type=unixio* ]] && kind=unix
			spec=",$a,"
			if [ $kind = tcp ] && [[ $spec =~ ,port=([0-9]+), ]]; then
				tcp+=("${BASH_REMATCH[1]}")
			elif [ $kind = unix ] && [[ $spec =~ ,path=([^,]+), ]]; then
				unix+=("${BASH_REMATCH[1]}")
			fi
		fi
		prev=$a
	done
	if [ -n "${SW_PID[$name]:-}" ] && _pid_running "${SW_PID[$name]}"; then
		fail "internal: emulator '$name' is already running"
	fi
	SW_LOG[$name]=$log
	info "start $name: $exe $*"
	"$exe" "$@" >>"$log" 2>&1 </dev/null &
	SW_PID[$name]=$!
	unset 'SW_STATUS[$name]'
	local pid=${SW_PID[$name]} deadline=$((SECONDS + 6)) ready p
	while :; do
		ready=1
		for p in "${tcp[@]}"; do _tcp_listening "$p" || { ready=0; break; }; done
		if [ $ready = 1 ]; then
			for p in "${unix[@]}"; do _unix_listening "$p" || { ready=0; break; }; done
		fi
		[ $ready = 1 ] && break
		if ! _pid_running "$pid"; then
			local st=0
			wait "$pid" || st=$?
			SW_STATUS[$name]=$st
			fail "emulator '$name' exited with status $st during start-up ($exe $*)"
		fi
		[ $SECONDS -lt $deadline ] ||
			fail "emulator '$name' did not listen on tcp:[${tcp[*]}] unix:[${unix[*]}] within 5 s"
		sleep 0.05
	done
}

# wait_swtpm_exit NAME [TIMEOUT] : wait (bounded) for the process to exit by
# itself; sets SW_STATUS[NAME]; returns 1 on timeout (process left running).
wait_swtpm_exit() {
	local name=$1 t=${2:-5} pid=${SW_PID[$1]} st=0 i
	for ((i = 0; i < t * 20; i++)); do
		if ! _pid_running "$pid"; then
			wait "$pid" 2>/dev/null || st=$?
			SW_STATUS[$name]=$st
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# stop_swtpm NAME : SIGTERM, wait <= 5 s, then SIGKILL. Sets SW_STATUS[NAME].
stop_swtpm() {
	local name=$1 pid=${SW_PID[$1]:-}
	[ -n "$pid" ] || return 0
	if _pid_running "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		if ! wait_swtpm_exit "$name" 5; then
			info "emulator '$name' ignored SIGTERM for 5 s, sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			wait_swtpm_exit "$name" 5 || true
			SW_STATUS[$name]=${SW_STATUS[$name]:-killed}
			return 0
		fi
	else
		wait_swtpm_exit "$name" 1 || true
	fi
}

# stop_swtpm_ok NAME : stop and require exit status 0.
stop_swtpm_ok() {
	stop_swtpm "$1"
	assert_eq 0 "${SW_STATUS[$1]:-?}" "exit status of emulator '$1' after SIGTERM"
}

# expect_swtpm_exit NAME STATUS : the process must exit by itself within 5 s.
expect_swtpm_exit() {
	wait_swtpm_exit "$1" 5 || fail "emulator '$1' did not exit within 5 s"
	assert_eq "$2" "${SW_STATUS[$1]}" "exit status of emulator '$1'"
}

assert_swtpm_running() { # NAME
	_pid_running "${SW_PID[$1]}" || fail "emulator '$1' is not running any more"
}

# ---------------------------------------------------------------- raw TPM commands

# tpm_raw PORT HEX : send one raw TPM command (hex) on a fresh TCP data
# connection to 127.0.0.1:PORT and read one response (size from its header).
# Sets RESP (response hex, lower case) and RESP_RC (the 4-byte return code as
# 8 hex digits). Fails the test on transport errors or after 10 s.
tpm_raw() {
	local port=$1 esc st=0
	esc=$(sed 's/../\\x&/g' <<<"${2,,}")
	RESP=$(timeout -k 2 10 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 2
		printf "$2" >&3
		hdr=$(head -c 6 <&3 | od -An -v -tx1 | tr -d " \n")
		[ ${#hdr} = 12 ] || exit 3
		len=$((16#${hdr:4:8}))
		[ "$len" -ge 10 ] && [ "$len" -le 8192 ] || exit 4
		rest=$(head -c $((len - 6)) <&3 | od -An -v -tx1 | tr -d " \n")
		[ ${#rest} = $(((len - 6) * 2)) ] || exit 5
		printf "%s%s" "$hdr" "$rest"' _ "$port" "$esc") || st=$?
	[ "$st" = 0 ] || fail "raw TPM command $2 to port $port failed (status $st: 2 connect, 3-5 short/bad response, 124 timeout)"
	RESP_RC=${RESP:12:8}
}

sha1_hex() { sha1sum | cut -d' ' -f1; }

# Print where we are.
info "test $TEST_NAME: SWTPM_EXE=$SWTPM_EXE VTPM_LOOP=$VTPM_LOOP tmp=$TMPD"
[ -x "$SWTPM_EXE" ] || fail "SWTPM_EXE '$SWTPM_EXE' is not an executable file"
