# shellcheck shell=bash
# Helpers of the guest-side test scripts (bash, run inside chroot of the
# host's root by guest-9p-init.sh). Results are "VMTEST KEY VALUE..." lines on
# stdout (the serial console); the host script asserts on them.

# fd 3: the console, for result lines of commands whose stdout is redirected
exec 3>&1
say() { echo "VMTEST $*" >&3; }
# mark NAME: guest uptime at a step (timing of the run)
mark() { say "time $1 $(cut -d' ' -f1 /proc/uptime)"; }

# arg NAME: the value of NAME= on the kernel command line.
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | head -n1; }

# wait_for SECONDS TEST...: polls `TEST...` every 0.1 s; status of the last try.
wait_for() {
    local n=$(($1 * 10))
    shift
    while ! "$@"; do
        ((n-- > 0)) || return 1
        sleep 0.1
    done
}

# wait_exit SECONDS PID: waits for the child PID to end; sets $wrc to its
# exit status, or "timeout" after SECONDS (the child is then killed with
# SIGKILL). Not in $(...): only the parent shell can wait for the child, and
# kill -0 cannot tell (an unreaped child answers it).
wait_exit() {
    local wd
    (sleep "$1"; kill -9 "$2" 2>/dev/null && touch /tmp/.wait_exit_timeout.$2) &
    wd=$!
    wait "$2"
    wrc=$?
    kill $wd 2>/dev/null
    wait $wd 2>/dev/null
    if [[ -e /tmp/.wait_exit_timeout.$2 ]]; then
        rm -f /tmp/.wait_exit_timeout.$2
        wrc=timeout
    fi
}

# hexof FILE: the file's bytes as lower-case hex on one line.
hexof() { od -An -tx1 -v "$1" | tr -d ' \n'; }

# run KEY CMD...: runs CMD, prints "VMTEST KEY-rc N"; its stderr goes to
# the console prefixed for debugging.
run() {
    local key=$1 rc
    shift
    "$@" 2> >(sed "s/^/[$key] /" >&2)
    rc=$?
    say "$key-rc $rc"
    return $rc
}

# dump FILE...: files' contents to the console (for failure diagnosis).
dump() {
    local f
    for f in "$@"; do
        [[ -f $f ]] || continue
        echo "--- $f"
        tail -n 40 "$f"
    done
}
