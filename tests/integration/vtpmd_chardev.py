#!/usr/bin/env python3
"""vtpmd supervising a `chardev` instance (issue 5: the swtpm front ends other
than socket run under vtpmd unchanged), and refusing a second instance on a
device (chardev path or cuse name) another instance already uses.

A pty stands in for the character device: the instance is created through
vtpmctl with `chardev -c /dev/pts/N`, answers TPM commands written to the pty
master, is restarted on the same device after kill -9 (with an event), and
stops gracefully. Environment: VTPMD_EXE, VTPMCTL_EXE. Exit 0 pass, 1 fail.
Only processes started here are signalled."""
import json, os, pty, select, signal, socket, struct, subprocess, sys, tempfile, time, tty

VTPMD, CTL = os.environ["VTPMD_EXE"], os.environ["VTPMCTL_EXE"]
fails = []


def check(cond, what):
    print(("ok: " if cond else "FAILED: ") + what, file=sys.stderr if not cond else sys.stdout)
    if not cond:
        fails.append(what)


def ctl(sock, *args, timeout=30):
    p = subprocess.run([CTL, "--socket", sock, "--timeout", "20", *args],
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def status(sock, iid):
    rc, out, _ = ctl(sock, "--json", "status", iid)
    return json.loads(out) if rc == 0 else None


def wait_running(sock, iid, not_pid=None, secs=20):
    end = time.time() + secs
    while time.time() < end:
        st = status(sock, iid)
        if st and st.get("state") == "running" and st.get("pid") and st["pid"] != not_pid:
            return st
        time.sleep(0.05)
    return status(sock, iid)


def tpm_cmd(fd, hexcmd, secs=10):
    os.write(fd, bytes.fromhex(hexcmd))
    end, buf = time.time() + secs, b""
    while True:
        need = 10 if len(buf) < 10 else struct.unpack(">I", buf[2:6])[0]
        if len(buf) >= need:
            return buf
        if time.time() > end:
            raise TimeoutError("short response %r" % buf)
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            buf += os.read(fd, 4096)

GETRANDOM = "80010000000c0000017b0010"


def main():
    tmp = tempfile.mkdtemp(prefix="vtpmd-chardev.")
    sock, root = os.path.join(tmp, "vtpmd.sock"), os.path.join(tmp, "root")
    log = open(os.path.join(tmp, "vtpmd.log"), "w")
    vtpmd = subprocess.Popen([VTPMD, "--socket", sock, "--state-root", root],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    master, slave = pty.openpty()
    # raw: TPM bytes must pass the line discipline untouched; the termios
    # settings belong to the tty, so every open of the slave gets them
    tty.setraw(slave)
    dev = os.ttyname(slave)
    ctrlp = os.path.join(tmp, "c1.ctrl")
    events = None
    try:
        # ready when it accepts, not when the file exists (bind comes first)
        for _ in range(200):
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                    c.connect(sock)
                break
            except OSError:
                time.sleep(0.05)
        rc, out, err = ctl(sock, "create", "c1", "--start", "--", "chardev", "--tpm2", "-c", dev,
                           "--ctrl", "type=unixio,path=" + ctrlp,
                           "--flags", "not-need-init,startup-clear")
        check(rc == 0, "vtpmctl create --start of a chardev instance (%s)" % err.strip())
        st = wait_running(sock, "c1")
        check(st is not None and st.get("state") == "running", "instance running: %r" % (st,))
        pid1 = st and st.get("pid")
        # a second instance on the same device is refused at create time
        rc, out, err = ctl(sock, "create", "c2", "--", "chardev", "--tpm2", "-c", dev)
        check(rc != 0 and "the device %s is already used by instance 'c1'" % dev in err,
              "same chardev device refused: rc %d, %s" % (rc, err.strip()))
        # cuse instances are validated the same way (created, not started:
        # this host needs no /dev/cuse for that)
        rc, out, err = ctl(sock, "create", "k1", "--", "cuse", "-n", "vtpmq", "--tpm2")
        check(rc == 0, "cuse instance created (%s)" % err.strip())
        rc, out, err = ctl(sock, "create", "k2", "--", "cuse", "-n", "vtpmq", "--tpm2")
        check(rc != 0 and "the device /dev/vtpmq is already used by instance 'k1'" in err,
              "same cuse name refused: rc %d, %s" % (rc, err.strip()))
        rc, out, err = ctl(sock, "create", "k3", "--", "cuse", "-n", "vtpmq2", "--tpm2")
        check(rc == 0, "another cuse name is fine (%s)" % err.strip())
        for k in ("k1", "k3"):
            check(ctl(sock, "destroy", k, "--purge")[0] == 0, "destroy " + k)
        r = tpm_cmd(master, GETRANDOM)
        check(len(r) == 28 and r[:10].hex() == "80010000001c00000000",
              "GetRandom(16) through the pty: " + r.hex())
        check(r[10:12] == b"\x00\x10", "16 random bytes")
        # the supervisor restarts a killed chardev instance on the same device
        events = subprocess.Popen([CTL, "--socket", sock, "events"], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        time.sleep(0.3)
        os.kill(pid1, signal.SIGKILL)
        st = wait_running(sock, "c1", not_pid=pid1)
        check(st is not None and st.get("pid") not in (None, pid1) and st.get("state") == "running",
              "restarted after kill -9: %r" % (st,))
        r = tpm_cmd(master, GETRANDOM)
        check(r[:10].hex() == "80010000001c00000000", "GetRandom after the restart: " + r.hex())
        events.terminate()
        evs = events.communicate(timeout=5)[0]
        check('instance-exited id="c1"' in evs and 'instance-restarted id="c1"' in evs,
              "exit and restart events: %r" % evs[-300:])
        # graceful stop: the instance ends, the registry says stopped
        rc, out, err = ctl(sock, "stop", "c1")
        check(rc == 0, "vtpmctl stop (%s)" % err.strip())
        st = status(sock, "c1")
        check(st is not None and st.get("state") == "stopped", "stopped: %r" % (st,))
        check(os.path.exists(os.path.join(root, "c1", "state", "tpm2-00.permall")),
              "state written to STATE_ROOT/c1/state")
        rc, out, err = ctl(sock, "destroy", "c1", "--purge")
        check(rc == 0, "destroy --purge (%s)" % err.strip())
    except Exception as e:  # a hang or protocol error is a failure, not a crash
        check(False, "exception: %r" % (e,))
    finally:
        if events and events.poll() is None:
            events.kill()
        # cleanup must not fail on the way to stopping vtpmd
        try:
            st = status(sock, "c1") if vtpmd.poll() is None else None
            if st and st.get("pid") and \
                    os.readlink("/proc/%d/cwd" % st["pid"]).startswith(root):
                os.kill(st["pid"], signal.SIGKILL)
        except Exception:
            pass
        vtpmd.terminate()
        try:
            vtpmd.wait(10)
        except subprocess.TimeoutExpired:
            vtpmd.kill()
        log.close()
        if fails:
            sys.stderr.write(open(os.path.join(tmp, "vtpmd.log")).read()[-3000:])
            for f in ("c1/log",):
                p = os.path.join(root, f)
                if os.path.exists(p):
                    sys.stderr.write(open(p).read()[-2000:])
        subprocess.run(["rm", "-rf", tmp])
    print("%d passed, %d failed" % (0 if fails else 1, 1 if fails else 0))
    return 1 if fails else 0


sys.exit(main())
