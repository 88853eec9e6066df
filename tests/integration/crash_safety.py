#!/usr/bin/env python3
"""Crash safety of the state write path: kill -9 the server at random moments
during an NV_Increment loop, many times. After every restart the state must
load and the counter must be at least the last value a response acknowledged
(never behind, never corrupt) and at most one ahead (the unacknowledged one).
Finally Debian's swtpm must load the state left by a clean stop of ours.

Env: SWTPM_EXE (ours), REF_SWTPM (default /usr/bin/swtpm), CRASH_ITER (200)."""
import os, random, signal, socket, struct, subprocess, sys, tempfile, time, shutil

EXE = os.environ.get("SWTPM_EXE")
REF = os.environ.get("REF_SWTPM", "/usr/bin/swtpm")
ITER = int(os.environ.get("CRASH_ITER", "200"))
NV_INDEX = 0x01500020
TPM_RH_OWNER = 0x40000001
PW_SESSION = struct.pack(">IHBH", 0x40000009, 0, 0, 0)


RUNNING = []  # servers started and not yet reaped: killed on failure


def fail(msg):
    print("FAIL crash_safety: " + msg)
    for p in RUNNING:
        if p.poll() is None:
            p.kill()
            p.wait()
    sys.exit(1)


def cmd(cc, handles, params=b"", sessions=True):
    body = b"".join(struct.pack(">I", h) for h in handles)
    if sessions:
        body += struct.pack(">I", len(PW_SESSION)) + PW_SESSION
    body += params
    tag = 0x8002 if sessions else 0x8001
    return struct.pack(">HII", tag, 10 + len(body), cc) + body


def xfer(s, c):
    s.sendall(c)
    hdr = b""
    while len(hdr) < 10:
        chunk = s.recv(10 - len(hdr))
        if not chunk:
            raise ConnectionError("closed")
        hdr += chunk
    tag, size, rc = struct.unpack(">HII", hdr)
    rest = b""
    while len(rest) < size - 10:
        chunk = s.recv(size - 10 - len(rest))
        if not chunk:
            raise ConnectionError("closed")
        rest += chunk
    return rc, rest


def nv_define(s):
    attrs = 0x2 | 0x4 | (1 << 4) | 0x20000 | 0x40000 | 0x02000000
    pub = struct.pack(">IHIHH", NV_INDEX, 0x000B, attrs, 0, 8)
    params = struct.pack(">H", 0) + struct.pack(">H", len(pub)) + pub
    return xfer(s, cmd(0x12A, [TPM_RH_OWNER], params))[0]


def nv_increment(s):
    return xfer(s, cmd(0x134, [TPM_RH_OWNER, NV_INDEX]))[0]


def nv_read(s):
    rc, rest = xfer(s, cmd(0x14E, [TPM_RH_OWNER, NV_INDEX], struct.pack(">HH", 8, 0)))
    if rc != 0:
        return rc, None
    # parameterSize u32, TPM2B size u16, 8 bytes
    (n,) = struct.unpack(">H", rest[4:6])
    if n != 8:
        fail("NV_Read returned %d bytes" % n)
    return 0, struct.unpack(">Q", rest[6:14])[0]


def start(exe, d):
    sock = os.path.join(d, "data")
    for p in (sock, os.path.join(d, "ctrl")):
        if os.path.exists(p):
            os.unlink(p)
    p = subprocess.Popen([exe, "socket", "--tpm2", "--tpmstate", "dir=" + d,
                          "--server", "type=unixio,path=" + sock,
                          "--ctrl", "type=unixio,path=" + os.path.join(d, "ctrl"),
                          "--flags", "not-need-init,startup-clear"],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "log"), "a"))
    RUNNING[:] = [q for q in RUNNING if q.poll() is None] + [p]
    deadline = time.time() + 5
    while time.time() < deadline:
        if p.poll() is not None:
            fail("server exited with %s at start-up; log:\n%s" %
                 (p.returncode, open(os.path.join(d, "log")).read()[-2000:]))
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(5)
            s.connect(sock)
            return p, s
        except OSError:
            s.close()
            time.sleep(0.005)
    p.kill()
    fail("server did not listen within 5 s")


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        fail("server ignored signal %d" % sig)


def main():
    if not EXE:
        fail("SWTPM_EXE not set")
    d = tempfile.mkdtemp(prefix="vtpm-crash-")
    random.seed(os.getpid())
    try:
        p, s = start(EXE, d)
        if nv_define(s) != 0 or nv_increment(s) != 0:
            fail("could not set up the NV counter")
        rc, acked = nv_read(s)
        if rc:
            fail("NV_Read rc 0x%x" % rc)
        s.close()
        stop(p, signal.SIGKILL)
        total = 0
        for it in range(ITER):
            p, s = start(EXE, d)
            rc, v = nv_read(s)
            if rc:
                fail("iteration %d: state did not load cleanly (NV_Read rc 0x%x)" % (it, rc))
            if v < acked:
                fail("iteration %d: counter %d is behind the acknowledged %d" % (it, v, acked))
            if v > acked + 1:
                fail("iteration %d: counter %d is ahead of %d + 1" % (it, v, acked))
            acked = v
            # kill -9 at a random moment while increments are flowing
            when = time.time() + random.uniform(0.001, 0.03)
            killed = False
            try:
                while True:
                    if not killed and time.time() >= when:
                        os.kill(p.pid, signal.SIGKILL)
                        killed = True
                    rc = nv_increment(s)
                    if rc != 0:
                        fail("iteration %d: NV_Increment rc 0x%x" % (it, rc))
                    acked += 1
                    total += 1
            except (ConnectionError, OSError):
                pass
            s.close()
            p.wait(timeout=5)
        # a clean stop brings swtpm's own files up to date: the reference loads them
        p, s = start(EXE, d)
        rc, v = nv_read(s)
        if rc or v < acked or v > acked + 1:
            fail("final restart: counter %s, acknowledged %d" % (v, acked))
        final = v
        s.close()
        stop(p)
        if os.path.exists(REF):
            p, s = start(REF, d)
            rc, v = nv_read(s)
            s.close()
            stop(p)
            if rc or v != final:
                fail("Debian's swtpm read counter %s (rc 0x%x), ours had %d" % (v, rc, final))
        print("# %d kills, %d acknowledged increments, final counter %d" % (ITER, total, final))
        print("PASS crash_safety")
    finally:
        shutil.rmtree(d, ignore_errors=True)


main()
