#!/usr/bin/env python3
"""Minimal QMP client for the VM tests (QEMU's JSON monitor on a unix socket).

  qmp.py SOCKET run COMMAND [JSON_ARGUMENTS]
      runs one command; prints its "return" value as JSON (exit 0), or its
      "error" (exit 1)
  qmp.py SOCKET wait-migration TIMEOUT_S
      polls query-migrate until the status is completed, failed or
      cancelled; prints the final status (exit 0 only for completed)

Events that arrive meanwhile are skipped. Every socket operation is bounded.
"""
import json
import socket
import sys
import time


class Qmp:
    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.f = self.sock.makefile("rw", encoding="utf-8")
        self._recv()  # greeting: {"QMP": {...}}
        self.cmd("qmp_capabilities")

    def _recv(self):
        while True:
            line = self.f.readline()
            if not line:
                raise ConnectionError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, args=None):
        msg = {"execute": name}
        if args is not None:
            msg["arguments"] = args
        self.f.write(json.dumps(msg) + "\n")
        self.f.flush()
        return self._recv()


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, mode = argv[1], argv[2]
    q = Qmp(path)
    if mode == "run":
        args = json.loads(argv[4]) if len(argv) > 4 else None
        r = q.cmd(argv[3], args)
        if "error" in r:
            print(json.dumps(r["error"]))
            return 1
        print(json.dumps(r.get("return")))
        return 0
    if mode == "wait-migration":
        deadline = time.monotonic() + float(argv[3])
        status = "unknown"
        while time.monotonic() < deadline:
            r = q.cmd("query-migrate")
            status = r.get("return", {}).get("status", "none")
            if status in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.1)
        else:
            status = "timeout(" + status + ")"
        print(status)
        return 0 if status == "completed" else 1
    print("unknown mode " + mode, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
