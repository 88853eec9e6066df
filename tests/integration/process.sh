#!/usr/bin/env bash
# Process-level behaviour of `swtpm socket`: --print-capabilities, --print-states,
# option errors, -d with --pid (no readiness race), --log, --runas, TPM_PATH,
# the seccomp filter, and cleanup on SIGTERM / CMD_SHUTDOWN.
source "$(dirname "$0")/lib.sh"
require_cmd swtpm_ioctl tpm2_getrandom

is_ours() { "$SWTPM_EXE" --version 2>/dev/null | grep -q vtpmd; }

# --- capabilities (ours: the swtpm 0.8 feature list of what we implement)
if is_ours; then
	ok "$SWTPM_EXE" socket --print-capabilities
	assert_eq '{ "type": "swtpm", "features": [ "tpm-1.2", "tpm-2.0", "tpm-send-command-header", "flags-opt-startup", "flags-opt-disable-auto-shutdown", "ctrl-opt-terminate", "cmdarg-seccomp", "cmdarg-key-fd", "cmdarg-pwd-fd", "cmdarg-print-states", "cmdarg-migration", "nvram-backend-dir", "nvram-backend-file", "tpmstate-opt-lock" ], "version": "0.8.0" }' "$OUT" "print-capabilities (TPM 1.2)"
	ok "$SWTPM_EXE" socket --tpm2 --print-cap
	assert_contains '"tpmstate-opt-lock", "rsa-keysize-1024", "rsa-keysize-2048", "rsa-keysize-3072" ]' "$OUT" "print-capabilities --tpm2"
fi

# --- --tpmstate ...,lock=false (swtpm 0.10): a second instance may use the dir
D=$TMPD/nolock
mkdir -p "$D"
pick_ports 2; PD=$PORT; PC=$((PORT + 1))
start_swtpm l1 "$SWTPM_EXE" socket --tpm2 --tpmstate dir="$D" \
	--server type=tcp,port="$PD" --ctrl type=tcp,port="$PC" --flags not-need-init
if is_ours; then
	expect_rc 1 "$SWTPM_EXE" socket --tpm2 --tpmstate dir="$D" --print-states
	ok "$SWTPM_EXE" socket --tpm2 --tpmstate dir="$D",lock=false --print-states
	assert_contains '"name": "permall"' "$OUT" "print-states with lock=false"
	expect_rc 1 "$SWTPM_EXE" socket --tpmstate dir="$D",lock=maybe,mode=0999
fi
stop_swtpm_ok l1

# --- option errors: a message on stderr and exit status 1, nothing started
expect_rc 1 "$SWTPM_EXE"
expect_rc 1 "$SWTPM_EXE" foo
assert_contains "Unsupported TPM interface type 'foo'" "$ERR" "unknown interface"
expect_rc 1 "$SWTPM_EXE" socket --no-such-option
expect_rc 1 "$SWTPM_EXE" socket --server type=xyz,port=1
expect_rc 1 "$SWTPM_EXE" socket --server type=tcp,port=70000
expect_rc 1 "$SWTPM_EXE" socket --tpmstate dir=/tmp,mode=0999
expect_rc 1 "$SWTPM_EXE" socket --ctrl path=/tmp/x
expect_rc 1 "$SWTPM_EXE" socket --flags bogus
expect_rc 1 "$SWTPM_EXE" socket --seccomp action=maybe
expect_rc 1 "$SWTPM_EXE" socket --print-states
expect_rc 1 "$SWTPM_EXE" socket stray-argument
assert_contains "Unknown parameter 'stray-argument'" "$ERR" "non-option argument"
expect_rc 1 "$SWTPM_EXE" socket -p 99999
expect_rc 0 "$SWTPM_EXE" socket --help
assert_contains "--tpmstate" "$OUT" "help text"

# --- --print-states on an empty and on a used directory
D=$TMPD/states
mkdir -p "$D"
ok "$SWTPM_EXE" socket --tpm2 --tpmstate dir="$D" --print-states
assert_eq '{ "type": "swtpm", "states": [] }' "$OUT" "print-states (empty)"
pick_ports 2; PD=$PORT; PC=$((PORT + 1))
start_swtpm st "$SWTPM_EXE" socket --tpm2 --tpmstate dir="$D" \
	--server type=tcp,port="$PD" --ctrl type=tcp,port="$PC" --flags not-need-init
ok swtpm_ioctl --tcp 127.0.0.1:"$PC" -v
expect_rc 1 "$SWTPM_EXE" socket --tpm2 --tpmstate dir="$D" --print-states
ok swtpm_ioctl --tcp 127.0.0.1:"$PC" -s
expect_swtpm_exit st 0
ok "$SWTPM_EXE" socket --tpm2 --tpmstate dir="$D" --print-states
pa=$(stat -c %s "$D/tpm2-00.permall")
vs=$(stat -c %s "$D/tpm2-00.volatilestate")
assert_eq "{ \"type\": \"swtpm\", \"states\": [ {\"name\": \"permall\", \"size\": $pa}, {\"name\": \"volatilestate\", \"size\": $vs} ] }" "$OUT" "print-states"

# --- -d with --pid: ready when the command returns; SIGTERM cleans up
D=$TMPD/daemon
mkdir -p "$D"
pick_ports 2; PD=$PORT; PC=$((PORT + 1))
ok "$SWTPM_EXE" socket -d --tpm2 --tpmstate dir="$D" --pid file="$D/pid" \
	--server type=unixio,path="$D/data" --ctrl type=tcp,port="$PC" \
	--log file="$D/log",level=20 --flags not-need-init
assert_file "$D/pid"
assert_mode 644 "$D/pid"
DPID=$(cat "$D/pid")
assert_match '^[0-9]+$' "$DPID" "pid file content (no newline)"
[ -S "$D/data" ] || fail "data socket missing right after -d returned"
ok swtpm_ioctl --tcp 127.0.0.1:"$PC" -c
assert_file "$D/log"
assert_mode 600 "$D/log"
grep -q "Ctrl Cmd" "$D/log" || fail "level 20 log has no ctrl hex dump: $(head -c 500 "$D/log")"
[ "$(awk '/^Seccomp:/ {print $2}' /proc/"$DPID"/status)" = 2 ] ||
	fail "seccomp filter not active in the daemon"
kill -TERM "$DPID"
for _ in $(seq 1 100); do [ -e /proc/"$DPID" ] || break; sleep 0.05; done
[ ! -e /proc/"$DPID" ] || fail "daemon did not exit on SIGTERM"
assert_no_file "$D/pid"
assert_no_file "$D/data"

# --- an instance restarted right after it exits can bind its ports again
# (pending io_uring accepts must not keep the listening socket alive)
D=$TMPD/restart
mkdir -p "$D"
pick_ports 2; PD=$PORT; PC=$((PORT + 1))
for i in $(seq 1 15); do
	start_swtpm rs "$SWTPM_EXE" socket --tpm2 --tpmstate dir="$D" \
		--server type=tcp,port="$PD" --ctrl type=tcp,port="$PC" --flags not-need-init
	stop_swtpm_ok rs
done

# --- TPM_PATH, seccomp off, and CMD_SHUTDOWN cleanup of unix sockets
D=$TMPD/tpmpath
mkdir -p "$D"
export TPM_PATH=$D
start_swtpm tp "$SWTPM_EXE" socket --tpm2 --seccomp action=none \
	--server type=unixio,path="$D/data" --ctrl type=unixio,path="$D/ctrl"
[ "$(awk '/^Seccomp:/ {print $2}' /proc/"${SW_PID[tp]}"/status)" = 0 ] ||
	fail "seccomp should be off with action=none"
ok swtpm_ioctl --unix "$D/ctrl" -i
assert_file "$D/tpm2-00.permall"
ok swtpm_ioctl --unix "$D/ctrl" -s
expect_swtpm_exit tp 0
assert_no_file "$D/ctrl"
assert_no_file "$D/data"
unset TPM_PATH

# --- inherited fds: -f (connected data socket), --ctrl clientfd=, --server fd=
# (listening unixio), and --ctrl ...,terminate (swtpm 0.8)
D=$TMPD/fds
mkdir -p "$D"
run timeout 20 python3 - "$SWTPM_EXE" "$D" <<'PY'
import os, socket, subprocess, sys, struct
exe, d = sys.argv[1], sys.argv[2]
def rc(b): return struct.unpack(">I", b[6:10])[0]
getrand = bytes.fromhex("80010000000c0000017b0008")
# -f: the data channel is one end of a socketpair; ctrl over clientfd
ds, dc = socket.socketpair()
cs, cc = socket.socketpair()
p = subprocess.Popen([exe, "socket", "--tpm2", "--tpmstate", "dir=" + d,
                      "-f", str(ds.fileno()), "--ctrl", "type=unixio,clientfd=%d" % cs.fileno(),
                      "--flags", "not-need-init,startup-clear"],
                     pass_fds=(ds.fileno(), cs.fileno()))
ds.close(); cs.close()
cc.sendall(bytes.fromhex("00000001"))
cap = cc.recv(8)
assert cap == bytes.fromhex("000000000001ffff"), cap.hex()
dc.sendall(getrand)
r = dc.recv(100)
assert len(r) == 20 and rc(r) == 0, r.hex()
dc.close()          # -f implies terminate-on-close
assert p.wait(timeout=5) == 0, "exit status after -f peer closed"
# --server type=unixio,fd=N is a listening socket; --ctrl ...,terminate
ls = socket.socket(socket.AF_UNIX); ls.bind(d + "/lsock"); ls.listen(1)
p = subprocess.Popen([exe, "socket", "--tpm2", "--tpmstate", "dir=" + d,
                      "--server", "type=unixio,fd=%d" % ls.fileno(),
                      "--ctrl", "type=unixio,path=%s/ctrl,terminate" % d,
                      "--flags", "not-need-init,startup-clear"], pass_fds=(ls.fileno(),))
ls.close()
import time
for _ in range(100):
    if os.path.exists(d + "/ctrl"): break
    time.sleep(0.05)
for i in range(2):
    c = socket.socket(socket.AF_UNIX); c.connect(d + "/lsock")
    c.sendall(getrand); r = c.recv(100)
    assert len(r) == 20 and rc(r) == 0, r.hex()
    c.close()
c = socket.socket(socket.AF_UNIX); c.connect(d + "/ctrl")
c.sendall(bytes.fromhex("00000001")); assert len(c.recv(8)) == 8
assert p.poll() is None, "exited while the ctrl client is connected"
c.close()           # terminate: losing the ctrl client ends the process
assert p.wait(timeout=5) == 0, "exit status after ctrl client left"
print("fds ok")
PY
[ "$RC" = 0 ] || fail "inherited fd scenarios: $(_cmd_context python3)"
assert_eq "fds ok" "$OUT" "inherited fd scenarios"

# --- --runas: the server drops to an unprivileged user before opening anything
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	D=$TMPD/runas
	mkdir -p "$D"
	chmod 777 "$D"
	chmod 711 "$TMPD" # nobody must be able to reach the state directory
	pick_ports 2; PD=$PORT; PC=$((PORT + 1))
	start_swtpm ra "$SWTPM_EXE" socket --tpm2 --runas nobody --tpmstate dir="$D" \
		--server type=tcp,port="$PD" --ctrl type=tcp,port="$PC" --flags not-need-init,startup-clear
	uid=$(awk '/^Uid:/ {print $2}' /proc/"${SW_PID[ra]}"/status)
	assert_eq "$(id -u nobody)" "$uid" "uid after --runas nobody"
	[ "$(stat -c %U "$D/tpm2-00.permall")" = nobody ] || fail "state file not owned by nobody"
	ok env TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$PD" tpm2_getrandom 8
	stop_swtpm_ok ra
fi
expect_rc 1 "$SWTPM_EXE" socket --runas no-such-user-xyz --tpmstate dir=/tmp

pass
