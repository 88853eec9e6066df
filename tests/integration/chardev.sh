#!/usr/bin/env bash
# `swtpm chardev`: TPM commands over an inherited socketpair (--fd) and a pty
# (-c /dev/pts/N), the ctrl channel beside it, SetLocality interception, exit
# on hang-up, and the option errors (device, --vtpm-proxy) with their texts.
source "$(dirname "$0")/lib.sh"
require_cmd python3

is_ours() { "$SWTPM_EXE" --version 2>/dev/null | grep -q vtpmd; }

# --- option errors: the message (Debian prefixes "swtpm: ") and exit status 1
expect_rc 1 "$SWTPM_EXE" chardev
assert_contains "Error: Missing character device or file descriptor" "$ERR" "missing device"
expect_rc 1 "$SWTPM_EXE" chardev --tpm2 --ctrl type=unixio,path="$TMPD/c0"
assert_contains "Error: Missing character device or file descriptor" "$ERR" "missing device, ctrl given"
expect_rc 1 "$SWTPM_EXE" chardev -c /nonexistent
assert_contains "Cannot open /nonexistent: No such file or directory" "$ERR" "-c nonexistent"
expect_rc 1 "$SWTPM_EXE" chardev --print-capabilities -c /nonexistent
assert_contains "Cannot open /nonexistent" "$ERR" "-c is opened before --print-capabilities"
expect_rc 1 "$SWTPM_EXE" chardev --vtpm-proxy -c /dev/null
assert_contains "Cannot use vTPM proxy with a provided device." "$ERR" "--vtpm-proxy -c"
expect_rc 1 "$SWTPM_EXE" chardev -f 5 --vtpm-proxy 5</dev/null
assert_contains "Cannot use vTPM proxy with a provided device." "$ERR" "-f --vtpm-proxy"
if [ ! -e /dev/vtpmx ]; then
	expect_rc 1 "$SWTPM_EXE" chardev --vtpm-proxy --tpm2
	assert_contains "Could not open /dev/vtpmx: No such file or directory" "$ERR" "no /dev/vtpmx"
	assert_eq "" "$OUT" "no device line without a device"
	# the proxy is set up before --print-capabilities is acted upon
	expect_rc 1 "$SWTPM_EXE" chardev --vtpm-proxy --print-capabilities
	assert_contains "Could not open /dev/vtpmx" "$ERR" "--vtpm-proxy --print-capabilities"
fi
expect_rc 1 "$SWTPM_EXE" chardev -f abc
assert_contains "Cannot parse character device file descriptor." "$ERR" "-f abc"
expect_rc 1 "$SWTPM_EXE" chardev -f 0
assert_contains "Error: Cannot accept file descriptors with values 0, 1, or 2" "$ERR" "-f 0"
expect_rc 1 "$SWTPM_EXE" chardev -p 2321
assert_contains "chardev: invalid option -- 'p'" "$ERR" "no -p"
expect_rc 1 "$SWTPM_EXE" chardev --server type=tcp
assert_contains "chardev: unrecognized option '--server'" "$ERR" "no --server"
expect_rc 1 "$SWTPM_EXE" chardev -c /dev/null stray
assert_contains "Unknown parameter 'stray'" "$ERR" "non-option argument"
expect_rc 0 "$SWTPM_EXE" chardev --help
assert_contains "--vtpm-proxy" "$OUT" "help text"
assert_contains "-c|--chardev <device>" "$OUT" "help text"

# --- --print-capabilities: the same line as socket's
for t in "" --tpm2; do
	ok "$SWTPM_EXE" socket $t --print-capabilities
	sock=$OUT
	ok "$SWTPM_EXE" chardev $t --print-capabilities
	assert_eq "$sock" "$OUT" "chardev $t --print-capabilities"
done

# --- -c /dev/null: opening works, the first read is EOF, that ends it (0)
# (epoll cannot wait on /dev/null: the loop reads such fds directly)
expect_rc 0 "$SWTPM_EXE" chardev -c /dev/null --tpm2

# --- real devices: a socketpair end (--fd) and a pty slave (-c /dev/pts/N)
D=$TMPD/st
mkdir -p "$D"
run timeout 60 python3 - "$SWTPM_EXE" "$TMPD" <<'PY'
import os, pty, socket, struct, subprocess, sys, time, tty

exe, tmp = sys.argv[1], sys.argv[2]
fails = []

def check(cond, what):
    if not cond:
        fails.append(what)
        print("FAILED:", what, file=sys.stderr)

def read_n(rd, n, deadline):
    buf = b""
    while len(buf) < n:
        if time.time() > deadline:
            raise TimeoutError("short response: %r" % buf)
        chunk = rd(n - len(buf))
        if not chunk:
            raise EOFError("EOF after %r" % buf)
        buf += chunk
    return buf

def tpm_cmd(wr, rd, hexcmd):
    wr(bytes.fromhex(hexcmd))
    dl = time.time() + 10
    hdr = read_n(rd, 6, dl)
    size = struct.unpack(">I", hdr[2:6])[0]
    return hdr + read_n(rd, size - 6, dl)

def ctrl(path, code, payload=b"", rsplen=4):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(struct.pack(">I", code) + payload)
    rsp = b""
    while len(rsp) < rsplen:
        c = s.recv(rsplen - len(rsp))
        if not c:
            break
        rsp += c
    s.close()
    return rsp

def wait_path(p, proc):
    for _ in range(200):
        if os.path.exists(p):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False

def wait_exit(proc, t=5):
    try:
        return proc.wait(t)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "timeout"

STARTUP = "80010000000c000001440000"
GETRANDOM = "80010000000c0000017b0008"
SETLOC3 = "80010000000b2000100003"
SETLOC4 = "80010000000b2000100004"
SETLOC_SHORT = "80010000000a20001000"

def scenario(name, mode, extra):
    st = os.path.join(tmp, name)
    os.mkdir(st)
    cpath = os.path.join(st, "ctrl")
    log = open(os.path.join(st, "log"), "w")
    if mode == "fd":
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        dev = ["--fd", str(b.fileno())]
        pass_fds = (b.fileno(),)
        wr, rd = a.sendall, a.recv
        a.settimeout(10)
    else:
        m, s = pty.openpty()
        tty.setraw(s)
        dev = ["-c", os.ttyname(s)]
        pass_fds = ()
        wr = lambda d: os.write(m, d)
        rd = lambda n: os.read(m, n)
    args = [exe, "chardev"] + dev + ["--tpm2", "--tpmstate", "dir=" + st,
            "--ctrl", "type=unixio,path=" + cpath] + extra
    p = subprocess.Popen(args, pass_fds=pass_fds, stdin=subprocess.DEVNULL,
                         stdout=log, stderr=log)
    if mode == "fd":
        b.close()
    else:
        # the emulator has its own open file now; ours only keeps the tty
        # alive, and the hang-up below must come from the master side
        time.sleep(0.3)
        os.close(s)
    check(wait_path(cpath, p), name + ": ctrl socket appears")
    caps = ctrl(cpath, 1, rsplen=8)            # CMD_GET_CAPABILITY
    check(len(caps) == 8 and struct.unpack(">Q", caps)[0] & 0x1 == 1,
          name + ": GET_CAPABILITY has CAP_INIT: %r" % caps)
    check(ctrl(cpath, 2, struct.pack(">I", 0)) == b"\0\0\0\0", name + ": CMD_INIT")
    r = tpm_cmd(wr, rd, STARTUP)
    check(r.hex() == "80010000000a00000000", name + ": Startup " + r.hex())
    r = tpm_cmd(wr, rd, GETRANDOM)
    check(len(r) == 20 and r[:10].hex() == "80010000001400000000" and r[10:12] == b"\0\x08",
          name + ": GetRandom " + r.hex())
    r = tpm_cmd(wr, rd, SETLOC3)
    want = "80010000000a00000000" if "--locality" in extra else "80010000000a00000101"
    check(r.hex() == want, name + ": SetLocality(3) " + r.hex())
    if "--locality" in extra:
        r = tpm_cmd(wr, rd, SETLOC4)
        check(r.hex() == "80010000000a00000107", name + ": SetLocality(4) rejected " + r.hex())
        r = tpm_cmd(wr, rd, SETLOC_SHORT)
        check(r.hex() == "80010000000a0000009a", name + ": short SetLocality " + r.hex())
    r = tpm_cmd(wr, rd, GETRANDOM)
    check(r[:10].hex() == "80010000001400000000", name + ": GetRandom after SetLocality")
    check(p.poll() is None, name + ": still running")
    # hang up: the emulator ends by itself, status 0
    if mode == "fd":
        a.close()
    else:
        os.close(m)
    rc = wait_exit(p)
    check(rc == 0, name + ": exit status after hang-up: %r" % (rc,))
    check(not os.path.exists(cpath), name + ": ctrl socket removed")
    log.close()
    if fails:
        sys.stderr.write(open(os.path.join(st, "log")).read())

scenario("sp", "fd", ["--locality", "allow-set-locality,reject-locality-4"])
scenario("sp-noloc", "fd", [])
scenario("pty", "pty", ["--locality", "allow-set-locality,reject-locality-4"])
sys.exit(1 if fails else 0)
PY
[ "$RC" = 0 ] || fail "chardev device scenarios: $(_cmd_context python3)"

pass
