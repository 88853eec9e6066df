#!/usr/bin/env bash
# Integration test of vtpmd and vtpmctl: many instances each answering TPM
# commands on their own socket, crash restarts with state intact, manager crash
# and re-adoption, peer credential checks and every kind of bad input.
#
# Environment: VTPMD_EXE, VTPMCTL_EXE, SWTPM_EXE (see lib.sh), VTPMD_TEST_N
# (instances, default 200). Only processes started here are signalled: our
# vtpmd(s), and instances whose working directory is in our state root.

# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_cmd python3
[ -x "${VTPMD_EXE:-}" ] || fail "VTPMD_EXE '${VTPMD_EXE:-}' is not an executable file"
[ -x "${VTPMCTL_EXE:-}" ] || fail "VTPMCTL_EXE '${VTPMCTL_EXE:-}' is not an executable file"

N=${VTPMD_TEST_N:-200}
[ "$N" -ge 10 ] 2>/dev/null || fail "VTPMD_TEST_N must be a number >= 10 (instances i1..i10 are used by name)"
ROOT=$TMPD/root
S=$TMPD/s
SOCK=$TMPD/vtpmd.sock
VLOG=$TMPD/vtpmd.log
CTL=("$VTPMCTL_EXE" --socket "$SOCK" --timeout 60)
mkdir -p "$S"
SW_LOG[vtpmd]=$VLOG
VTPMD_PIDS=()
T0=$SECONDS

# ---------------------------------------------------------------- cleanup

# shellcheck disable=SC2317 # called from the EXIT trap
_vt_cleanup() {
	local p f id pid
	set +e
	for p in "${VTPMD_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	if [ -n "${JMNT:-}" ]; then
		mountpoint -q "$JMNT/root3/.pool" && umount "$JMNT/root3/.pool"
		mountpoint -q "$JMNT" && umount "$JMNT"
	fi
	# instances of this test only: their cwd is STATE_ROOT/ID
	for f in "$ROOT"/*/pid; do
		[ -f "$f" ] || continue
		id=$(basename "$(dirname "$f")")
		pid=$(sed -n 's/^pid=//p' "$f")
		[ -n "$pid" ] || continue
		if [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$ROOT/$id" ]; then
			kill -KILL "$pid" 2>/dev/null
		fi
	done
}
trap 'rc=$?; _vt_cleanup; (exit $rc); _cleanup' EXIT

# ---------------------------------------------------------------- helpers

cat >"$TMPD/tpm.py" <<'PY'
# Raw TPM 2.0 commands, ctrl commands and management-protocol checks over
# unix sockets. Every socket operation has a timeout.
import json, os, socket, struct, subprocess, sys, time

def connect(path, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s

def recv_exact(s, n):
    buf = b''
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            raise EOFError('connection closed')
        buf += d
    return buf

def xfer(path, cmd):
    s = connect(path)
    try:
        s.sendall(cmd)
        hdr = recv_exact(s, 10)
        size = struct.unpack('>I', hdr[2:6])[0]
        if size < 10 or size > 8192:
            raise ValueError('bad response size %d' % size)
        return hdr + recv_exact(s, size - 10)
    finally:
        s.close()

def rc_of(r):
    return struct.unpack('>I', r[6:10])[0]

PW = struct.pack('>IIHBH', 9, 0x40000009, 0, 0, 0)     # empty password session
NV = 0x01500010

def cmd(tag, cc, body):
    return struct.pack('>HII', tag, 10 + len(body), cc) + body

def tpm(path, tag, cc, body, retry=True):
    for _ in range(20):
        r = xfer(path, cmd(tag, cc, body))
        if rc_of(r) == 0x922 and retry:      # TPM_RC_RETRY
            time.sleep(0.05)
            continue
        return r
    return r

def getrandom(path):
    r = tpm(path, 0x8001, 0x17b, struct.pack('>H', 16))
    if rc_of(r) != 0 or len(r) != 28:
        raise ValueError('GetRandom rc 0x%x' % rc_of(r))

def ctrl(path, code):
    s = connect(path)
    try:
        s.sendall(struct.pack('>I', code))
        return struct.unpack('>I', recv_exact(s, 4))[0]
    finally:
        s.close()

def mgmt_lines(path, payloads, wait=2.0, until_eof=False, expect=None):
    """Send raw payloads, return the JSON lines received (and whether EOF came)."""
    s = connect(path, wait)
    for p in payloads:
        s.sendall(p)
    out, eof = b'', False
    deadline = time.time() + wait
    try:
        while time.time() < deadline:
            d = s.recv(65536)
            if not d:
                eof = True
                break
            out += d
            if not until_eof and out.endswith(b'\n') and out.count(b'\n') >= (expect or len(payloads)):
                break
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return [json.loads(l) for l in out.split(b'\n') if l.strip()], eof

def bad_input(path, root):
    cases = [
        (b'not json\n', 'ParseError'),
        (b'{"execute":"list"\n', 'ParseError'),
        (b'{"execute":"list"} {"execute":"list"}\n', 'ParseError'),
        (b'\x00{"execute":"list"}\n', 'ParseError'),
        (b'[1,2,3]\n', 'InvalidRequest'),
        (b'"list"\n', 'InvalidRequest'),
        (b'{"execute":5}\n', 'InvalidRequest'),
        (b'{"arguments":{}}\n', 'InvalidRequest'),
        (b'{"execute":"list","bogus":1}\n', 'InvalidRequest'),
        (b'{"execute":"list","arguments":[]}\n', 'InvalidRequest'),
        (b'{"execute":"no-such-command","id":3}\n', 'CommandNotFound'),
        (b'{"execute":"export-state","arguments":{"id":"i1","file":"rel/x"}}\n', 'InvalidArgument'),
        (b'{"execute":"import-state","arguments":{"id":"i1"}}\n', 'InvalidArgument'),
        (b'{"execute":"import-state","arguments":{"id":"i1","file":"/x","data":"AAAA"}}\n',
         'InvalidArgument'),
        (b'{"execute":"import-state","arguments":{"id":"i1","data":"not base64!"}}\n',
         'InvalidArgument'),
        (b'{"execute":"import-state","arguments":{"id":"i1","data":"AAAA"}}\n', 'InvalidStateFile'),
        (b'{"execute":"migrate","arguments":{"id":"i1"}}\n', 'CommandNotFound'),
        (b'{"execute":"start"}\n', 'InvalidArgument'),
        (b'{"execute":"start","arguments":{"id":7}}\n', 'InvalidArgument'),
        (b'{"execute":"destroy","arguments":{"id":"i1","purge":"yes"}}\n', 'InvalidArgument'),
        (b'{"execute":"create","arguments":{"id":"x1","argv":"socket"}}\n', 'InvalidArgument'),
        (b'{"execute":"create","arguments":{"id":"x1","argv":["socket",1]}}\n', 'InvalidArgument'),
        (b'{"execute":"create","arguments":{"id":"x1","argv":["socket"],"restart":"maybe"}}\n',
         'InvalidArgument'),
        (b'{"execute":"list","arguments":{"id":"i1"}}\n', 'InvalidArgument'),
        (b'{"execute":"status","arguments":{"id":"../../etc"}}\n', 'InvalidArgument'),
        (b'{"execute":"create","arguments":{"id":"a/b","argv":["socket"]}}\n', 'InvalidArgument'),
        (b'{"execute":"create","arguments":{"id":"..","argv":["socket"]}}\n', 'InvalidArgument'),
        (b'{"execute":"create","arguments":{"id":".hidden","argv":["socket"]}}\n', 'InvalidArgument'),
        (b'{"execute":"create","arguments":{"id":"a\\u0000b","argv":["socket"]}}\n', 'InvalidArgument'),
        (b'{"execute":"create","arguments":{"id":"' + b'x' * 65 + b'","argv":["socket"]}}\n',
         'InvalidArgument'),
        (b'{"execute":"create","arguments":{"id":"x1","argv":["chardev","--tpm2"]}}\n',
         'InvalidArgument'),
        (b'{"execute":"create","arguments":{"id":"x1","argv":["cuse","--tpm2"]}}\n', 'InvalidArgument'),
        (b'{"execute":"create","arguments":{"id":"x1","argv":["socket","--bogus"]}}\n', 'InvalidArgument'),
        (b'{"execute":"create","arguments":{"id":"x1","argv":["socket","-d","--tpm2"]}}\n',
         'InvalidArgument'),
        (b'{"execute":"create","arguments":{"id":"x1","argv":["socket","--fd","5"]}}\n',
         'InvalidArgument'),
        (b'{"execute":"create","arguments":{"id":"i1","argv":["socket","--tpm2"]}}\n', 'InstanceExists'),
        (b'{"execute":"status","arguments":{"id":"nope"}}\n', 'InstanceNotFound'),
    ]
    bad = 0
    for payload, cls in cases:
        lines, _ = mgmt_lines(path, [payload])
        got = lines[0].get('error', {}).get('class') if lines else None
        if got != cls:
            print('FAIL: %r -> %r (expected %s)' % (payload[:80], lines, cls))
            bad += 1
    # the id of an errored request is echoed
    lines, _ = mgmt_lines(path, [b'{"execute":"nope","id":{"k":[1]}}\n'])
    if not lines or lines[0].get('id') != {'k': [1]}:
        print('FAIL: id not echoed: %r' % lines); bad += 1
    # several requests in one write, answered in order
    lines, _ = mgmt_lines(path, [b'{"execute":"query-version","id":1}\n{"execute":"nope","id":2}\n'
                                 b'\n{"execute":"list","id":3}\n'], expect=3)
    if [l.get('id') for l in lines] != [1, 2, 3]:
        print('FAIL: pipelined requests: %r' % lines); bad += 1
    # oversized message: error, then the connection is closed
    lines, eof = mgmt_lines(path, [b'{' + b' ' * 70000], wait=5, until_eof=True)
    if not lines or lines[0].get('error', {}).get('class') != 'MessageTooLong' or not eof:
        print('FAIL: oversized: %r eof=%s' % (lines, eof)); bad += 1
    # a client vanishing mid-request: nothing happens
    s = connect(path); s.sendall(b'{"execute":"create","arguments":{"id":"half","argv":["sock'); s.close()
    s = connect(path); s.sendall(b'{"execute":"destroy","arguments":{"id":"i1"'); s.close()
    # a client that closes its write side right after a request still gets the reply
    s = connect(path); s.sendall(b'{"execute":"query-version","id":9}\n'); s.shutdown(socket.SHUT_WR)
    d = b''
    while True:
        x = s.recv(4096)
        if not x: break
        d += x
    s.close()
    if json.loads(d).get('id') != 9:
        print('FAIL: half-close: %r' % d); bad += 1
    for leftover in ('x1', 'half', 'a', '.hidden'):
        if os.path.exists(os.path.join(root, leftover)):
            print('FAIL: a refused create left %s behind' % leftover); bad += 1
    return bad

def readiness(path, sdir, k=10):
    """create --start answers as soon as the instance serves: it tells vtpmd
    on its readiness socket, nothing is polled. Half of the instances have a
    --pid file of their own (in one shared directory), which changes nothing."""
    shared = os.path.join(sdir, 'pids')
    os.makedirs(shared, exist_ok=True)
    s = connect(path, 30)
    f = s.makefile('rwb')
    took, bad = [], 0
    for i in range(k):
        argv = ['socket', '--tpm2', '--server', 'type=unixio,path=%s/r%d.sock' % (sdir, i),
                '--flags', 'not-need-init,startup-clear']
        if i % 2:
            argv += ['--pid', 'file=%s/r%d.pid' % (shared, i)]
        req = {'execute': 'create', 'id': i,
               'arguments': {'id': 'r%d' % i, 'argv': argv, 'start': True}}
        t = time.time()
        f.write(json.dumps(req).encode() + b'\n'); f.flush()
        while True:
            r = json.loads(f.readline())
            if 'event' not in r:
                break
        took.append(time.time() - t)
        if r.get('return', {}).get('state') != 'running':
            print('FAIL: create r%d: %r' % (i, r)); bad += 1
    for i in range(k):
        getrandom('%s/r%d.sock' % (sdir, i))
        f.write(json.dumps({'execute': 'destroy', 'id': 'd%d' % i,
                            'arguments': {'id': 'r%d' % i, 'purge': True}}).encode() + b'\n')
        f.flush()
        while 'event' in json.loads(f.readline()):
            pass
    took.sort()
    print('create -> running reply: median %.1f ms, max %.1f ms' % (took[k // 2] * 1e3, took[-1] * 1e3))
    if took[k // 2] > 0.15:
        print('FAIL: create replies are slow: readiness looks polled, not reported'); bad += 1
    return bad

def stuck_client(path, ctl):
    """A client that never reads must not block others, and gets dropped."""
    stuck = connect(path, 5)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    req = b'{"execute":"list"}\n'
    sent = 0
    try:
        for _ in range(20000):
            stuck.sendall(req)
            sent += 1
    except (socket.timeout, BrokenPipeError, ConnectionResetError):
        pass
    t = time.time()
    r = subprocess.run(ctl + ['list'], capture_output=True, timeout=30)
    took = time.time() - t
    if r.returncode != 0 or took > 5:
        print('FAIL: another client was blocked (rc %d, %.1f s): %s' % (r.returncode, took, r.stderr))
        return 1
    # the stuck one has been dropped: reading drains to EOF or a reset
    stuck.settimeout(10)
    try:
        while stuck.recv(1 << 20):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        print('FAIL: the stuck client was not dropped (%d requests sent)' % sent)
        return 1
    stuck.close()
    return 0

def many_clients(path, n):
    socks = [connect(path) for _ in range(n)]
    for i, s in enumerate(socks):
        s.sendall(b'{"execute":"query-version","id":%d}\n' % i)
    bad = 0
    for i, s in enumerate(socks):
        buf = b''
        while not buf.endswith(b'\n'):
            d = s.recv(4096)
            if not d: break
            buf += d
        if json.loads(buf).get('id') != i:
            bad += 1
        s.close()
    return bad

def main():
    op = sys.argv[1]
    if op == 'random':                  # random SOCK... : every one must answer
        bad = []
        for p in sys.argv[2:]:
            try:
                getrandom(p)
            except Exception as e:
                bad.append('%s: %s' % (p, e))
        print('ok %d failed %d' % (len(sys.argv) - 2 - len(bad), len(bad)))
        for b in bad[:10]:
            print('  ' + b)
        sys.exit(1 if bad else 0)
    path = sys.argv[2]
    if op == 'extend':
        r = tpm(path, 0x8002, 0x182, struct.pack('>I', 16) + PW + struct.pack('>IH', 1, 0xb) +
                bytes.fromhex(sys.argv[3]))
        sys.exit(0 if rc_of(r) == 0 else 1)
    if op == 'pcrread':
        r = tpm(path, 0x8001, 0x17e, struct.pack('>IHB3s', 1, 0xb, 3, b'\0\0\1'))
        print(r[-32:].hex())
        sys.exit(0 if rc_of(r) == 0 else 1)
    if op == 'startup':
        r = tpm(path, 0x8001, 0x144, struct.pack('>H', 0))
        print('0x%x' % rc_of(r))
        sys.exit(0 if rc_of(r) == 0 else 1)
    if op == 'nvdefine':
        pub = struct.pack('>IHIHH', NV, 0xb, 0x00060006, 0, 16)
        r = tpm(path, 0x8002, 0x12a, struct.pack('>I', 0x40000001) + PW + struct.pack('>H', 0) +
                struct.pack('>H', len(pub)) + pub)
        sys.exit(0 if rc_of(r) == 0 else 1)
    if op == 'nvwrite':
        r = tpm(path, 0x8002, 0x137, struct.pack('>II', NV, NV) + PW + struct.pack('>H', 16) +
                bytes.fromhex(sys.argv[3]) + struct.pack('>H', 0))
        sys.exit(0 if rc_of(r) == 0 else 1)
    if op == 'nvread':
        r = tpm(path, 0x8002, 0x14e, struct.pack('>II', NV, NV) + PW + struct.pack('>HH', 16, 0))
        print(r[16:32].hex())
        sys.exit(0 if rc_of(r) == 0 else 1)
    if op == 'primary':                 # SOCK HIERARCHY: outPublic of an ECC P-256 primary key
        # (restricted decrypt, AES-128-CFB: the EK/SRK template shape); a primary
        # key is derived from its hierarchy's seed, so this names the seed
        tmpl = struct.pack('>HHIH', 0x23, 0xb, 0x00030072, 0) + \
            struct.pack('>HHHHHHHH', 6, 128, 0x43, 0x10, 3, 0x10, 0, 0)
        r = tpm(path, 0x8002, 0x131, struct.pack('>I', int(sys.argv[3], 0)) + PW +
                struct.pack('>HHH', 4, 0, 0) + struct.pack('>H', len(tmpl)) + tmpl +
                struct.pack('>HI', 0, 0))
        if rc_of(r) != 0:
            print('CreatePrimary rc 0x%x' % rc_of(r)); sys.exit(1)
        handle = struct.unpack('>I', r[10:14])[0]
        n = struct.unpack('>H', r[18:20])[0]
        print(r[20:20 + n].hex())
        tpm(path, 0x8001, 0x165, struct.pack('>I', handle))
        sys.exit(0)
    if op == 'ctrl':
        print('%d' % ctrl(path, int(sys.argv[3], 0)))
        sys.exit(0)
    if op == 'inline':                  # SRC_SOCK SRC_ID DST_SOCK DST_ID
        req = {'execute': 'export-state', 'arguments': {'id': sys.argv[3]}}
        lines, _ = mgmt_lines(path, [json.dumps(req).encode() + b'\n'], wait=15)
        if not lines or 'return' not in lines[0]:
            print('export: %r' % lines); sys.exit(1)
        data = lines[0]['return']['data']
        import base64
        if not base64.b64decode(data).startswith(b'{"format":"vtpmd-state",'):
            print('inline export is not a state file'); sys.exit(1)
        req = {'execute': 'import-state', 'arguments': {'id': sys.argv[5], 'data': data}}
        lines, _ = mgmt_lines(sys.argv[4], [json.dumps(req).encode() + b'\n'], wait=15)
        print(json.dumps(lines))
        sys.exit(0 if lines and 'return' in lines[0] else 1)
    if op == 'corrupt':                 # FILE OUT MODE
        b = open(path, 'rb').read()
        mode = sys.argv[4]
        if mode == 'flip':
            b = b[:-1] + bytes([b[-1] ^ 1])
        elif mode == 'trunc':
            b = b[:-10]
        elif mode == 'version':
            b = b.replace(b'"version":1,', b'"version":2,', 1)
        elif mode == 'magic':
            b = b'X' + b[1:]
        open(sys.argv[3], 'wb').write(b)
        sys.exit(0)
    if op == 'badinput':
        sys.exit(1 if bad_input(path, sys.argv[3]) else 0)
    if op == 'readiness':
        sys.exit(1 if readiness(path, sys.argv[3]) else 0)
    if op == 'stuck':
        sys.exit(stuck_client(path, sys.argv[3:]))
    if op == 'many':
        sys.exit(1 if many_clients(path, int(sys.argv[3])) else 0)
    sys.exit(2)

main()
PY

PY=(python3 "$TMPD/tpm.py")

# jq-less JSON field access: jget EXPR (python expression on `d`) < json
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

vtpmd_start() {
	local i
	"$VTPMD_EXE" --socket "$SOCK" --state-root "$ROOT" --log "file=$VLOG" </dev/null >>"$VLOG" 2>&1 &
	VTPMD_PID=$!
	VTPMD_PIDS+=("$VTPMD_PID")
	for ((i = 0; i < 100; i++)); do
		if [ -S "$SOCK" ] && "${CTL[@]}" version >/dev/null 2>&1; then
			return 0
		fi
		_pid_running "$VTPMD_PID" || fail "vtpmd exited during start-up"
		sleep 0.05
	done
	fail "vtpmd did not answer within 5 s"
}

inst_args() { # N -> the swtpm command line of instance iN
	echo socket --tpm2 --server "type=unixio,path=$S/i$1.sock" \
		--ctrl "type=unixio,path=$S/i$1.ctrl" --flags not-need-init,startup-clear
}

field() { # ID EXPR : a field of `vtpmctl --json status ID`
	"${CTL[@]}" --json status "$1" | jget "$2"
}

wait_state() { # ID STATE [SECONDS] [NOT_PID]: until status is STATE (with a pid != NOT_PID)
	local id=$1 want=$2 t=${3:-10} not=${4:-} i st pid
	for ((i = 0; i < t * 10; i++)); do
		st=$("${CTL[@]}" --json status "$id" 2>/dev/null | jget 'd["state"], d["pid"]' || true)
		pid=${st#* }
		if [ "${st%% *}" = "$want" ] && { [ -z "$not" ] || [ "$pid" != "$not" ]; }; then
			return 0
		fi
		sleep 0.1
	done
	fail "instance $id did not reach state $want within $t s (last: $st)"
}

count_state() { # STATE [adopted] : instances in STATE (and adopted) per `list`
	"${CTL[@]}" --json list |
		jget "sum(1 for x in d if x['state'] == '$1'$([ "${2:-}" = adopted ] && echo " and x['adopted']"))"
}

pool_parked() {
	"${CTL[@]}" --json version | jget 'd["pool"]["parked"]'
}

wait_pool() { # N [SECONDS]: until N pool processes are parked
	local want=$1 t=${2:-20} i n=?
	for ((i = 0; i < t * 10; i++)); do
		n=$(pool_parked 2>/dev/null || echo ?)
		[ "$n" = "$want" ] && return 0
		sleep 0.1
	done
	fail "the pool did not reach $want parked processes within $t s (last: $n)"
}

pool_pids() { # pids of pool processes of this test (cwd below $ROOT/.pool)
	local p
	for p in /proc/[0-9]*; do
		[ "$(cat "$p/comm" 2>/dev/null)" = vtpmd-pool ] || continue
		case "$(readlink "$p/cwd" 2>/dev/null)" in
		"$ROOT/.pool/"*) echo "${p#/proc/}" ;;
		esac
	done
}

all_socks() {
	local i
	for ((i = 1; i <= N; i++)); do echo "$S/i$i.sock"; done
}

# ---------------------------------------------------------------- start-up

info "N=$N instances"
vtpmd_start
assert_mode 600 "$SOCK"
# on ext4 without a journal the state root is a top directory (chattr +T):
# entries are spread over block groups; with a journal it is left alone
jt=/sys/fs/ext4/$(basename "$(readlink "/sys/dev/block/$(stat -c '%Hd:%Ld' "$ROOT")" 2>/dev/null)" 2>/dev/null)/journal_task
if [ "$(stat -f -c %T "$ROOT")" = ext2/ext3 ] && [ -r "$jt" ] && command -v lsattr >/dev/null; then
	if [ "$(cat "$jt")" = "<none>" ]; then
		lsattr -d "$ROOT" | cut -d' ' -f1 | grep -q T || fail "state root not marked +T: $(lsattr -d "$ROOT")"
	else
		lsattr -d "$ROOT" | cut -d' ' -f1 | grep -q T && fail "state root marked +T on an ext4 with a journal"
	fi
fi
ok "${CTL[@]}" version
assert_contains "vtpmd " "$OUT" "version"
# the pool (default 4) manufactures ahead; its entries are not instances
wait_pool 4
ok "${CTL[@]}" version
assert_contains "pool: 4 of 4" "$OUT" "vtpmctl version shows the pool"
ok "${CTL[@]}" list
assert_eq 0 "$("${CTL[@]}" --json list | jget 'len(d)')" "instances in a new state root"
for d in "$ROOT"/.pool/*; do
	assert_file "$d/state/tpm2-00.permall"
	assert_file "$d/state/.vtpm-tpm2-00.permall.journal"
done
assert_eq 4 "$(pool_pids | wc -l)" "pool processes"

# On an ext4 with a journal (a loop-mounted one, where we may mount) vtpmd
# leaves the new state root's flags alone.
if [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null && command -v lsattr >/dev/null &&
	[ -e /dev/loop-control ]; then
	JMNT=$TMPD/jext4
	mkdir -p "$JMNT"
	truncate -s 64M "$TMPD/jext4.img"
	if mkfs.ext4 -q -F "$TMPD/jext4.img" && mount -o loop "$TMPD/jext4.img" "$JMNT" 2>/dev/null; then
		"$VTPMD_EXE" --socket "$TMPD/j.sock" --state-root "$JMNT/root" --pool 0 \
			--log "file=$TMPD/vtpmd-j.log" </dev/null >>"$TMPD/vtpmd-j.log" 2>&1 &
		jp=$!
		VTPMD_PIDS+=("$jp")
		for ((i = 0; i < 100; i++)); do
			"$VTPMCTL_EXE" --socket "$TMPD/j.sock" version >/dev/null 2>&1 && break
			sleep 0.05
		done
		lsattr -d "$JMNT/root" | cut -d' ' -f1 | grep -q T &&
			fail "state root marked +T on an ext4 with a journal"
		kill -TERM "$jp"
		wait "$jp" 2>/dev/null
		info "ext4 with a journal: the state root is not marked +T"
		# a pool directory on another file system (here a tmpfs mounted
		# on it): claims cannot rename entries, so the pool turns itself
		# off and creates fork as before
		mkdir -p "$JMNT/root3/.pool"
		mount -t tmpfs tmpfs "$JMNT/root3/.pool"
		"$VTPMD_EXE" --socket "$TMPD/j3.sock" --state-root "$JMNT/root3" --pool 1 \
			--log "file=$TMPD/vtpmd-j3.log" </dev/null >>"$TMPD/vtpmd-j3.log" 2>&1 &
		jp=$!
		VTPMD_PIDS+=("$jp")
		J3=("$VTPMCTL_EXE" --socket "$TMPD/j3.sock" --timeout 30)
		for ((i = 0; i < 200; i++)); do
			[ "$("${J3[@]}" --json version 2>/dev/null | jget 'd["pool"]["parked"]' 2>/dev/null)" = 1 ] && break
			sleep 0.05
		done
		ok "${J3[@]}" create x1 --start --restart never -- socket --tpm2 \
			--server "type=unixio,path=$S/x1.sock" --flags not-need-init,startup-clear
		ok "${PY[@]}" random "$S/x1.sock"
		grep -q "pool turned off" "$TMPD/vtpmd-j3.log" ||
			fail "a pool that cannot rename was not turned off: $(tail -3 "$TMPD/vtpmd-j3.log")"
		ok "${J3[@]}" version
		assert_contains "pool: 0 of 0" "$OUT" "the pool after it turned off"
		ok "${J3[@]}" destroy x1 --purge
		kill -TERM "$jp"
		wait "$jp" 2>/dev/null
		umount "$JMNT/root3/.pool"
		umount "$JMNT"
		info "a pool that cannot rename its entries turns itself off; creates still work"
	else
		info "no loop mount here: the journaled ext4 check is skipped"
	fi
	rm -f "$TMPD/jext4.img"
fi

# ---------------------------------------------------------------- N instances

t=$SECONDS
for ((i = 1; i <= N; i++)); do
	# shellcheck disable=SC2046
	ok "${CTL[@]}" create "i$i" --start -- $(inst_args "$i")
done
info "created and started $N instances in $((SECONDS - t)) s"
# the first creates took a parked TPM: made before the create, loaded at start
for i in 1 2 3; do
	grep -q "starting instance i$i (manufactured ahead in the pool)" "$ROOT/i$i/log" ||
		fail "i$i did not come from the pool: $(cat "$ROOT/i$i/log")"
done
assert_eq "$N" "$(count_state running)" "running instances after create"
t=$SECONDS
mapfile -t SOCKS < <(all_socks)
run "${PY[@]}" random "${SOCKS[@]}"
[ "$RC" = 0 ] || fail "not every instance answered GetRandom: $OUT"
info "all $N instances answered TPM2_GetRandom ($((SECONDS - t)) s)"
assert_file "$ROOT/i1/config.json"
assert_file "$ROOT/i1/pid"
assert_file "$ROOT/i1/state/tpm2-00.permall"
assert_match "^pid=[0-9]+" "$(head -1 "$ROOT/i1/pid")" "pid file"
grep -q '^starttime=[0-9]' "$ROOT/i1/pid" || fail "pid file lacks the start time"
pid1=$(field i1 'd["pid"]')
# not in our process group or session: a signal to vtpmd's group misses it
[ "$(ps -o pgid= -p "$pid1" | tr -d ' ')" != "$(ps -o pgid= -p "$VTPMD_PID" | tr -d ' ')" ] ||
	fail "instance is in vtpmd's process group"
[ "$(ps -o ppid= -p "$pid1" | tr -d ' ')" = "$VTPMD_PID" ] ||
	fail "instance is not a child of vtpmd (subreaper)"

# ---------------------------------------------------------------- every TPM its own seeds

# The spawner warms libtpms up with a TPM of its own before forking; every
# child must still manufacture its own EPS, SPS and PPS. A primary key is a
# function of its hierarchy's seed and the template: equal on one TPM, and
# different on any two.
for h in 0x4000000B 0x40000001 0x4000000C; do
	declare -A seen=()
	for i in 1 2 3; do
		ok "${PY[@]}" primary "$S/i$i.sock" "$h"
		[ -z "${seen[$OUT]:-}" ] || fail "instances ${seen[$OUT]} and i$i share the seed of hierarchy $h"
		seen[$OUT]=i$i
	done
	ok "${PY[@]}" primary "$S/i1.sock" "$h"
	assert_eq i1 "${seen[$OUT]:-}" "a second primary of hierarchy $h on i1"
	unset seen
done
info "endorsement, storage and platform seeds differ across instances"

# ---------------------------------------------------------------- the pool

# refilled once the creates stopped
wait_pool 4
# a pool process that dies before it is claimed is replaced (after a back-off)
mapfile -t pp < <(pool_pids)
victim=${pp[0]:-}
[ -n "$victim" ] || fail "no pool process to kill"
kill -KILL "$victim"
wait_pool 4 10
grep -q "pool: process $victim was killed by signal 9 before it was claimed" "$VLOG" ||
	fail "the lost pool process was not reported: $(tail -5 "$VLOG")"
[[ " $(pool_pids | tr '\n' ' ') " != *" $victim "* ]] || fail "the killed pool process is still listed"
assert_eq 4 "$(find "$ROOT/.pool" -mindepth 1 -maxdepth 1 | wc -l)" "pool directories after a loss"
# a command line the pool cannot serve (its own --tpmstate) is forked as before
mkdir -p "$TMPD/ownstate"
ok "${CTL[@]}" create own1 --start -- socket --tpm2 --tpmstate "dir=$TMPD/ownstate" \
	--server "type=unixio,path=$S/own1.sock" --flags not-need-init,startup-clear
ok "${PY[@]}" random "$S/own1.sock"
grep -q "manufactured ahead" "$ROOT/own1/log" && fail "own1 (own --tpmstate) was served by the pool"
assert_file "$TMPD/ownstate/tpm2-00.permall"
assert_eq 4 "$(pool_parked)" "parked processes after a create the pool cannot serve"
ok "${CTL[@]}" destroy own1 --purge
# without --flags (QEMU's way: CMD_INIT, then TPM2_Startup from the guest) a
# claimed process releases the TPM it loaded ahead and starts it on CMD_INIT
wait_pool 4
ok "${CTL[@]}" create qemu1 --start -- socket --tpm2 --server "type=unixio,path=$S/qemu1.sock" \
	--ctrl "type=unixio,path=$S/qemu1.ctrl"
grep -q "starting instance qemu1 (manufactured ahead in the pool)" "$ROOT/qemu1/log" ||
	fail "qemu1 did not come from the pool"
run python3 -c '
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
s.sendall(struct.pack(">II", 2, 0))          # CMD_INIT, no flags
print(struct.unpack(">I", s.recv(4))[0])' "$S/qemu1.ctrl"
assert_eq 0 "$OUT" "CMD_INIT of a claimed instance"
ok "${PY[@]}" startup "$S/qemu1.sock"
ok "${PY[@]}" random "$S/qemu1.sock"
ok "${CTL[@]}" destroy qemu1 --purge
# bad --pool values
expect_fail "$VTPMD_EXE" --socket "$TMPD/x.sock" --state-root "$TMPD/x" --pool 257
assert_contains "--pool takes a number" "$ERR" "--pool 257"
expect_fail "$VTPMD_EXE" --socket "$TMPD/x.sock" --state-root "$TMPD/x" --pool -1
expect_fail env VTPMD_POOL=many "$VTPMD_EXE" --socket "$TMPD/x.sock" --state-root "$TMPD/x"
assert_contains "VTPMD_POOL takes a number" "$ERR" "VTPMD_POOL=many"
info "pool: claims load a TPM made ahead; a lost pool process is replaced; other command lines fork"

# ---------------------------------------------------------------- readiness

run "${PY[@]}" readiness "$SOCK" "$S"
[ "$RC" = 0 ] || fail "readiness: $OUT"
info "$OUT"
# Ready means serving: listening, TPM started and its state on disk. A TPM
# that cannot start (unreadable state) fails the create instead of being
# reported running first and dying afterwards.
mkdir -p "$TMPD/badstate"
printf 'not a TPM state' >"$TMPD/badstate/tpm2-00.permall"
expect_fail "${CTL[@]}" create bad1 --start --restart never -- socket --tpm2 \
	--tpmstate "dir=$TMPD/badstate" --server "type=unixio,path=$S/bad1.sock" \
	--flags not-need-init,startup-clear
assert_contains "StartFailed" "$ERR" "create of an instance whose TPM cannot start"
assert_contains "Could not initialize the TPM" "$ERR" "the instance's own error"
assert_no_file "$ROOT/i1/run"
ok "${CTL[@]}" destroy bad1 --purge

# ---------------------------------------------------------------- crash: restart with state

"${CTL[@]}" --json events >"$TMPD/events.txt" 2>&1 &
EV_PID=$!
sleep 0.3
ok "${PY[@]}" extend "$S/i1.sock" 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
ok "${PY[@]}" pcrread "$S/i1.sock"
pcr_before=$OUT
ok "${PY[@]}" nvdefine "$S/i1.sock"
ok "${PY[@]}" nvwrite "$S/i1.sock" deadbeefcafebabe0123456789abcdef
# checkpoint the volatile state (PCRs), as QEMU does before migration; the
# NV index is permanent state and needs nothing
ok "${PY[@]}" ctrl "$S/i1.ctrl" 0x0a
assert_eq 0 "$OUT" "CMD_STORE_VOLATILE result"
kill -KILL "$pid1"
wait_state i1 running 10 "$pid1"
ok "${PY[@]}" nvread "$S/i1.sock"
assert_eq deadbeefcafebabe0123456789abcdef "$OUT" "NV index after a SIGKILL restart"
ok "${PY[@]}" pcrread "$S/i1.sock"
assert_eq "$pcr_before" "$OUT" "PCR 16 after a SIGKILL restart"
assert_eq 1 "$(field i1 'd["restarts"]')" "restart count"
assert_contains "signal 9" "$(field i1 'd["last-error"]')" "last error after SIGKILL"
for ((i = 0; i < 30; i++)); do
	grep -q '"instance-restarted"' "$TMPD/events.txt" && break
	sleep 0.1
done
grep -q '"event":"instance-exited","data":{"id":"i1","pid":'"$pid1"',"exit-status":{"kind":"signaled","value":9' \
	"$TMPD/events.txt" || fail "no instance-exited event: $(cat "$TMPD/events.txt")"
grep -q '"event":"instance-restarted","data":{"id":"i1"' "$TMPD/events.txt" ||
	fail "no instance-restarted event: $(cat "$TMPD/events.txt")"
info "SIGKILL of an instance: restarted with NV and PCR state, events seen"

# ---------------------------------------------------------------- restart policies

ok "${CTL[@]}" create nv1 --start --restart never -- socket --tpm2 \
	--server "type=unixio,path=$S/nv1.sock" --flags not-need-init,startup-clear
p=$(field nv1 'd["pid"]')
kill -KILL "$p"
wait_state nv1 failed 10
ok "${PY[@]}" random "$S/i2.sock"

# a crash loop: the restarted instance cannot bind its socket any more
mkdir -p "$TMPD/gone"
ok "${CTL[@]}" create loop1 --start --restart always -- socket --tpm2 \
	--server "type=unixio,path=$TMPD/gone/l.sock" --flags not-need-init,startup-clear
p=$(field loop1 'd["pid"]')
rm -rf "$TMPD/gone"
kill -KILL "$p"
wait_state loop1 failed 20
assert_contains "crash loop" "$(field loop1 'd["last-error"]')" "crash-loop error"
assert_eq 5 "$(field loop1 'd["restarts"]')" "restarts before giving up"
grep -q '"event":"instance-failed","data":{"id":"loop1"' "$TMPD/events.txt" ||
	fail "no instance-failed event for the crash loop"
# a start that cannot work fails at once, with the instance's own error
expect_fail "${CTL[@]}" start loop1
assert_contains "StartFailed" "$ERR" "start error class"
assert_contains "gone/l.sock" "$ERR" "start error names the cause"
kill "$EV_PID" 2>/dev/null || true
wait "$EV_PID" 2>/dev/null || true
info "restart policies: never -> failed; crash loop -> failed after 5 restarts"

# ---------------------------------------------------------------- stop / start / restart

ok "${CTL[@]}" stop i2
assert_eq stopped "$(field i2 'd["state"]')" "state after stop"
assert_no_file "$S/i2.sock"
ok "${CTL[@]}" stop i2 # idempotent
ok "${CTL[@]}" start i2
ok "${PY[@]}" random "$S/i2.sock"
p=$(field i3 'd["pid"]')
ok "${CTL[@]}" restart i3
[ "$(field i3 'd["pid"]')" != "$p" ] || fail "restart kept the pid"
ok "${PY[@]}" random "$S/i3.sock"
expect_fail "${CTL[@]}" start nosuch
assert_contains "InstanceNotFound" "$ERR" "unknown id"

# ---------------------------------------------------------------- bad input

t=$SECONDS
run "${PY[@]}" badinput "$SOCK" "$ROOT"
[ "$RC" = 0 ] || fail "bad input handling: $OUT"
expect_fail "${CTL[@]}" create i1 -- socket --tpm2
assert_contains "InstanceExists" "$ERR" "duplicate id"
expect_fail "${CTL[@]}" create c1 -- chardev --tpm2
assert_contains "Missing character device or file descriptor" "$ERR" "chardev without a device"
expect_fail "${CTL[@]}" create c1 -- cuse --tpm2
assert_contains "device name missing" "$ERR" "cuse without a name"
expect_fail "${CTL[@]}" create c2 -- --tpm2 --server "type=unixio,path=$S/i4.sock"
assert_contains "already used by instance 'i4'" "$ERR" "socket conflict"
assert_no_file "$ROOT/c1"
assert_no_file "$ROOT/c2"
run "${PY[@]}" many "$SOCK" 100
[ "$RC" = 0 ] || fail "100 concurrent clients: $OUT"
run "${PY[@]}" stuck "$SOCK" "${CTL[@]}"
[ "$RC" = 0 ] || fail "stuck client: $OUT"
_pid_running "$VTPMD_PID" || fail "vtpmd died from bad input"
assert_eq "$N" "$(count_state running)" "running instances after bad input"
run "${PY[@]}" random "${SOCKS[@]}"
[ "$RC" = 0 ] || fail "instances after bad input: $OUT"
info "bad input: every case refused, vtpmd and all instances unaffected ($((SECONDS - t)) s)"

# ---------------------------------------------------------------- peer credentials

if command -v setpriv >/dev/null; then
	asuser=(setpriv --reuid nobody --regid nogroup --clear-groups)
elif command -v runuser >/dev/null; then
	asuser=(runuser -u nobody --)
else
	asuser=()
fi
if ((${#asuser[@]})) && id nobody >/dev/null 2>&1; then
	cp "$VTPMCTL_EXE" "$TMPD/vtpmctl"
	chmod 755 "$TMPD/vtpmctl"
	chmod 711 "$TMPD"
	expect_fail "${asuser[@]}" "$TMPD/vtpmctl" --socket "$SOCK" list
	assert_contains "Permission denied" "$ERR" "socket mode 0600 keeps others out"
	chmod 666 "$SOCK"
	expect_fail "${asuser[@]}" "$TMPD/vtpmctl" --socket "$SOCK" list
	chmod 600 "$SOCK"
	assert_contains "PermissionDenied" "$ERR" "SO_PEERCRED refusal"
	assert_contains "uid $(id -u nobody)" "$ERR" "refusal names the uid"
	chmod 700 "$TMPD"
	ok "${CTL[@]}" list
	info "peer credentials: another uid is refused (EACCES, and SO_PEERCRED at 0666)"
else
	info "no setpriv/runuser or no user nobody: peer credential test skipped"
fi

# ---------------------------------------------------------------- manager crash

old_vtpmd=$VTPMD_PID
kill -KILL "$VTPMD_PID"
wait "$VTPMD_PID" 2>/dev/null || true
t=$SECONDS
run "${PY[@]}" random "${SOCKS[@]}"
[ "$RC" = 0 ] || fail "instances stopped serving when vtpmd was killed: $OUT"
# one instance dies while no manager watches it
p6=$(sed -n 's/^pid=//p' "$ROOT/i6/pid")
[ "$(readlink "/proc/$p6/cwd")" = "$ROOT/i6" ] || fail "pid file of i6 does not match"
kill -KILL "$p6"
# pool processes leave with the manager that made them (EOF on their socket)
for ((i = 0; i < 50; i++)); do
	[ -z "$(pool_pids)" ] && break
	sleep 0.1
done
[ -z "$(pool_pids)" ] || fail "pool processes outlived vtpmd: $(pool_pids)"
vtpmd_start
assert_eq $((N - 1)) "$(count_state running adopted)" "instances adopted by the new vtpmd"
# the new vtpmd empties the pool directory and fills it with its own
wait_pool 4
[ -z "$(find "$ROOT/.pool" -mindepth 1 -maxdepth 1 -name "$old_vtpmd.*")" ] ||
	fail "entries of the killed vtpmd's pool were kept"
wait_state i6 running 10 "$p6"
assert_eq failed "$(field nv1 'd["state"]')" "a failed instance stays failed"
ok "${CTL[@]}" stop i5
assert_eq stopped "$(field i5 'd["state"]')" "stop of an adopted instance"
ok "${CTL[@]}" start i5
ok "${PY[@]}" random "$S/i5.sock"
p=$(field i7 'd["pid"]')
ok "${CTL[@]}" restart i7
ok "${PY[@]}" random "$S/i7.sock"
assert_eq "$N" "$(count_state running)" "running instances after re-adoption"
run "${PY[@]}" random "${SOCKS[@]}"
[ "$RC" = 0 ] || fail "instances after re-adoption: $OUT"
info "vtpmd SIGKILL: all instances kept serving; the new vtpmd adopted and controls them ($((SECONDS - t)) s)"

# a graceful exit leaves them running too, and removes the socket
kill -TERM "$VTPMD_PID"
wait "$VTPMD_PID" 2>/dev/null || fail "vtpmd did not exit cleanly on SIGTERM"
assert_no_file "$SOCK"
ok "${PY[@]}" random "$S/i8.sock"
vtpmd_start
assert_eq running "$(field i8 'd["state"]')" "i8 after a graceful vtpmd restart"

# ---------------------------------------------------------------- export / import

# An export from this vtpmd, imported by a second vtpmd (another state root and
# socket, as on another host): NV index and PCR 16 (volatile state) survive.
t=$SECONDS
mig_args() { # NAME DIR
	echo socket --tpm2 --server "type=unixio,path=$2/$1.sock" \
		--ctrl "type=unixio,path=$2/$1.ctrl" --flags not-need-init,startup-clear
}
# shellcheck disable=SC2046
ok "${CTL[@]}" create m1 --start -- $(mig_args m1 "$S")
ok "${PY[@]}" extend "$S/m1.sock" 0badc0de0badc0de0badc0de0badc0de0badc0de0badc0de0badc0de0badc0de
ok "${PY[@]}" pcrread "$S/m1.sock"
pcr_m1=$OUT
ok "${PY[@]}" nvdefine "$S/m1.sock"
ok "${PY[@]}" nvwrite "$S/m1.sock" 00112233445566778899aabbccddeeff
pm1=$(field m1 'd["pid"]')
ok "${CTL[@]}" export m1 "$TMPD/m1.state"
assert_contains "exported m1" "$OUT" "export output"
assert_mode 600 "$TMPD/m1.state"
assert_eq '{"format":"vtpmd-state",' "$(head -c 24 "$TMPD/m1.state")" "state file magic"
# the source keeps running, with its state
assert_eq "running $pm1" "$("${CTL[@]}" --json status m1 | jget 'd["state"], d["pid"]')" "m1 after export"
ok "${PY[@]}" pcrread "$S/m1.sock"
assert_eq "$pcr_m1" "$OUT" "PCR 16 of the source after export"
ok "${CTL[@]}" --json export m1 "$TMPD/m1-enc.state" --encrypted
expect_fail "${CTL[@]}" export nosuch "$TMPD/x.state"
assert_contains "InstanceNotFound" "$ERR" "export of an unknown id"

ROOT2=$TMPD/root2
S2=$TMPD/s2
SOCK2=$TMPD/vtpmd2.sock
CTL2=("$VTPMCTL_EXE" --socket "$SOCK2" --timeout 60)
mkdir -p "$S2"
"$VTPMD_EXE" --socket "$SOCK2" --state-root "$ROOT2" --log "file=$TMPD/vtpmd2.log" --pool 0 \
	</dev/null >>"$TMPD/vtpmd2.log" 2>&1 &
VTPMD_PIDS+=("$!")
VTPMD2_PID=$!
for ((i = 0; i < 100; i++)); do
	"${CTL2[@]}" version >/dev/null 2>&1 && break
	sleep 0.05
done
ok "${CTL2[@]}" version
assert_contains "pool: 0 of 0" "$OUT" "--pool 0"
# shellcheck disable=SC2046
ok "${CTL2[@]}" create m1 --start -- $(mig_args m1 "$S2")
pd1=$("${CTL2[@]}" --json status m1 | jget 'd["pid"]')
expect_fail "${PY[@]}" nvread "$S2/m1.sock"
ok "${PY[@]}" pcrread "$S2/m1.sock"
pcr_fresh=$OUT
[ "$pcr_fresh" != "$pcr_m1" ] || fail "PCR 16 of a fresh TPM equals the extended one"
# malformed files: refused before the instance is touched
for mode in flip trunc version magic; do
	ok "${PY[@]}" corrupt "$TMPD/m1.state" "$TMPD/bad-$mode.state" "$mode"
	expect_fail "${CTL2[@]}" import m1 "$TMPD/bad-$mode.state"
	assert_contains "InvalidStateFile" "$ERR" "import of a corrupt file ($mode)"
done
assert_contains "checksum mismatch" "$("${CTL2[@]}" import m1 "$TMPD/bad-flip.state" 2>&1 || true)" "bad checksum"
assert_contains "truncated" "$("${CTL2[@]}" import m1 "$TMPD/bad-trunc.state" 2>&1 || true)" "truncated file"
assert_contains "version 2" "$("${CTL2[@]}" import m1 "$TMPD/bad-version.state" 2>&1 || true)" "bad version"
expect_fail "${CTL2[@]}" import m1 "$TMPD/does-not-exist.state"
assert_eq "running $pd1" "$("${CTL2[@]}" --json status m1 | jget 'd["state"], d["pid"]')" "m1 after refused imports"
ok "${PY[@]}" pcrread "$S2/m1.sock"
assert_eq "$pcr_fresh" "$OUT" "PCR 16 after refused imports"
expect_fail "${PY[@]}" nvread "$S2/m1.sock"
# the real import, into a running instance: it keeps its process
ok "${CTL2[@]}" import m1 "$TMPD/m1.state"
assert_contains "imported" "$OUT" "import output"
assert_eq "running $pd1" "$("${CTL2[@]}" --json status m1 | jget 'd["state"], d["pid"]')" "m1 after import"
ok "${PY[@]}" nvread "$S2/m1.sock"
assert_eq 00112233445566778899aabbccddeeff "$OUT" "NV index after import"
ok "${PY[@]}" pcrread "$S2/m1.sock"
assert_eq "$pcr_m1" "$OUT" "PCR 16 after import"
# into a stopped instance (started for it), from an inline (base64) export
# shellcheck disable=SC2046
ok "${CTL2[@]}" create m2 -- $(mig_args m2 "$S2")
ok "${PY[@]}" inline "$SOCK" m1 "$SOCK2" m2
assert_eq running "$("${CTL2[@]}" --json status m2 | jget 'd["state"]')" "m2 after import"
ok "${PY[@]}" nvread "$S2/m2.sock"
assert_eq 00112233445566778899aabbccddeeff "$OUT" "NV index after an inline import"
ok "${PY[@]}" pcrread "$S2/m2.sock"
assert_eq "$pcr_m1" "$OUT" "PCR 16 after an inline import"
# the state-key-encrypted variant imports too (no --key on either side)
ok "${CTL2[@]}" import m2 "$TMPD/m1-enc.state"
# refusals: no ctrl channel, a stopped source, another TPM version
ok "${CTL2[@]}" create m3 --start -- socket --tpm2 --server "type=unixio,path=$S2/m3.sock" \
	--flags not-need-init,startup-clear
expect_fail "${CTL2[@]}" export m3 "$TMPD/m3.state"
assert_contains "no usable ctrl channel" "$ERR" "export without --ctrl"
expect_fail "${CTL2[@]}" import m3 "$TMPD/m1.state"
assert_contains "no usable ctrl channel" "$ERR" "import without --ctrl"
ok "${CTL2[@]}" stop m2
expect_fail "${CTL2[@]}" export m2 "$TMPD/m2.state"
assert_contains "InvalidState" "$ERR" "export of a stopped instance"
assert_no_file "$TMPD/m2.state"
ok "${CTL2[@]}" create m4 -- socket --server "type=unixio,path=$S2/m4.sock" \
	--ctrl "type=unixio,path=$S2/m4.ctrl"
expect_fail "${CTL2[@]}" import m4 "$TMPD/m1.state"
assert_contains "TPM 2.0 state, the instance is a TPM 1.2" "$ERR" "TPM version check"
assert_eq stopped "$("${CTL2[@]}" --json status m4 | jget 'd["state"]')" "m4 not started by a refused import"
# with --migration-key: the blobs stay encrypted with it in the file, and a
# destination without the key refuses them after CMD_STOP, so vtpmd brings
# the TPM back on its own state (needing TPM2_Startup, as after a reset)
printf '000102030405060708090a0b0c0d0e0f' >"$TMPD/mig.key"
chmod 600 "$TMPD/mig.key"
# shellcheck disable=SC2046
ok "${CTL[@]}" create k1 --start -- $(mig_args k1 "$S") --migration-key "file=$TMPD/mig.key,format=hex"
ok "${PY[@]}" nvdefine "$S/k1.sock"
ok "${PY[@]}" nvwrite "$S/k1.sock" ffeeddccbbaa99887766554433221100
ok "${CTL[@]}" export k1 "$TMPD/k1.state"
# shellcheck disable=SC2046
ok "${CTL2[@]}" create k1 --start -- $(mig_args k1 "$S2")
pk=$("${CTL2[@]}" --json status k1 | jget 'd["pid"]')
expect_fail "${CTL2[@]}" import k1 "$TMPD/k1.state"
assert_contains "ControlChannelError" "$ERR" "import without the migration key"
assert_contains "TPM_KEYNOTFOUND" "$ERR" "import without the migration key"
assert_contains "re-initialised on its own stored state" "$ERR" "recovery after a failed import"
assert_eq "running $pk" "$("${CTL2[@]}" --json status k1 | jget 'd["state"], d["pid"]')" "k1 after a failed import"
ok "${PY[@]}" startup "$S2/k1.sock"
ok "${PY[@]}" random "$S2/k1.sock"
expect_fail "${PY[@]}" nvread "$S2/k1.sock"
# shellcheck disable=SC2046
ok "${CTL2[@]}" create k2 --start -- $(mig_args k2 "$S2") --migration-key "file=$TMPD/mig.key,format=hex"
ok "${CTL2[@]}" import k2 "$TMPD/k1.state"
ok "${PY[@]}" nvread "$S2/k2.sock"
assert_eq ffeeddccbbaa99887766554433221100 "$OUT" "NV index after an import with the migration key"
ok "${CTL[@]}" destroy k1
for id in m1 m2 m3 m4 k1 k2; do
	ok "${CTL2[@]}" destroy "$id"
done
kill -TERM "$VTPMD2_PID"
wait "$VTPMD2_PID" 2>/dev/null || fail "the second vtpmd did not exit cleanly"
ok "${CTL[@]}" destroy m1
info "export/import: NV and PCR state moved to a second vtpmd; corrupt files refused ($((SECONDS - t)) s)"

# ---------------------------------------------------------------- destroy

ok "${PY[@]}" primary "$S/i9.sock" 0x4000000B
ek_i9=$OUT
ok "${CTL[@]}" destroy i9
assert_no_file "$ROOT/i9/config.json"
assert_file "$ROOT/i9/state/tpm2-00.permall"
# a create with the id again uses the kept state, never a pool entry over it
wait_pool 4
# shellcheck disable=SC2046
ok "${CTL[@]}" create i9 --start -- $(inst_args 9)
ok "${PY[@]}" primary "$S/i9.sock" 0x4000000B
assert_eq "$ek_i9" "$OUT" "endorsement primary of i9 re-created on its kept state"
assert_eq 4 "$(pool_parked)" "pool processes after a create on a kept state"
ok "${CTL[@]}" destroy i9
ok "${CTL[@]}" destroy i10 --purge
assert_no_file "$ROOT/i10"
expect_fail "${CTL[@]}" status i9
ok "${CTL[@]}" destroy loop1
assert_eq $((N - 2)) "$(count_state running)" "running instances after destroy"

info "total $((SECONDS - T0)) s"
pass
