#!/bin/bash
# Smoke test of bench/vtpm-bench: every mode once with --quick against
# $SWTPM_EXE (A/A + floor over unix, TCP, --duration, fleet of 5, a fleet of
# 5 under vtpmd when $VTPMD_EXE is set, an A/B against Debian's
# /usr/bin/swtpm when it is installed, and --sockdir on /dev/shm). Checks exit statuses and that the
# reports name every op; asserts no timings, since a loaded CI machine may be
# arbitrarily slow.
#
# usage: smoke.sh [PATH/TO/vtpm-bench]   (or env VTPM_BENCH); env SWTPM_EXE,
#        optional VTPMD_EXE, BARE_EXE (bench/vtpm-bare-server)
set -u

BENCH=${1:-${VTPM_BENCH:-}}
REF=/usr/bin/swtpm
OPS="getrandom pcrextend nvincrement createprimary sign bootmix"
pass=0
fail=0

if [ -z "$BENCH" ] || [ ! -x "$BENCH" ]; then
	echo "vtpm-bench binary not given (argument or VTPM_BENCH)" >&2
	exit 1
fi
if [ -z "${SWTPM_EXE:-}" ] || [ ! -x "$SWTPM_EXE" ]; then
	echo "SWTPM_EXE is not set to an executable" >&2
	exit 1
fi

work=$(mktemp -d /tmp/vtpm-bench-smoke.XXXXXX) || exit 1
sockwork=""
trap 'rm -rf "$work" ${sockwork:+"$sockwork"}' EXIT
# State dirs of the servers go into our scratch dir, so nothing is left over
# even if a server misbehaves.
export TMPDIR=$work

ok() { echo "ok - $1"; pass=$((pass + 1)); }
not_ok() {
	echo "not ok - $1"
	fail=$((fail + 1))
	[ -n "${2:-}" ] && [ -f "$2" ] && sed -e 's/^/#   /' "$2" | tail -n 40
}

# run NAME EXPECTED_STATUS ARGS...: bounded, output kept in $work/NAME.{out,err}
run() {
	local name=$1 want=$2 rc
	shift 2
	timeout -k 5 45 "$BENCH" "$@" >"$work/$name.out" 2>"$work/$name.err"
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		ok "$name: exit status $rc"
		return 0
	fi
	not_ok "$name: exit status $rc, expected $want" "$work/$name.err"
	return 1
}

# has_rows NAME FILE IMPL...: a data row (numeric op count) per op and impl
has_rows() {
	local name=$1 file=$2 missing="" op impl
	shift 2
	for op in $OPS; do
		for impl in "$@"; do
			grep -Eq "^\| $op \| $impl \| [0-9]+ \|" "$file" || missing="$missing $op/$impl"
		done
	done
	if [ -z "$missing" ]; then
		ok "$name: table has every op for $*"
	else
		not_ok "$name: table lacks$missing" "$file"
	fi
}

# 1. A/A (same binary twice) + the in-process floor, unix sockets, all outputs.
if run aa 0 --impl A="$SWTPM_EXE" --impl A2="$SWTPM_EXE" --impl floor --quick \
	--md "$work/aa.md" --csv "$work/aa.csv" --plot "$work/aa.png"; then
	has_rows aa "$work/aa.out" A A2 floor
	if grep -q '^### Ratios vs A ' "$work/aa.out"; then ok "aa: ratio table"; else
		not_ok "aa: ratio table missing" "$work/aa.out"; fi
	if cmp -s "$work/aa.out" "$work/aa.md"; then ok "aa: --md equals stdout"; else
		not_ok "aa: --md differs from stdout"; fi
	missing=""
	head -n 1 "$work/aa.csv" | grep -qx 'impl,op,seq,latency_ns' || missing=" header"
	for op in $OPS; do
		for impl in A A2 floor; do
			grep -Eq "^$impl,$op,[0-9]+,[0-9]+$" "$work/aa.csv" || missing="$missing $op/$impl"
		done
	done
	if [ -z "$missing" ]; then ok "aa: csv rows"; else not_ok "aa: csv lacks$missing"; fi
	if command -v gnuplot >/dev/null 2>&1; then
		if [ -s "$work/aa.png" ]; then ok "aa: plot written"; else
			not_ok "aa: no plot although gnuplot exists" "$work/aa.err"; fi
	else
		if grep -q 'gnuplot not found' "$work/aa.err"; then ok "aa: plot skipped (no gnuplot)"; else
			not_ok "aa: missing-gnuplot message" "$work/aa.err"; fi
	fi
fi

# 2. TCP transport.
if run tcp 0 --impl ours="$SWTPM_EXE" --transport tcp --quick; then
	has_rows tcp "$work/tcp.out" ours
fi

# 3. Duration mode on one op (bounded by --duration, not by --ops).
if run duration 0 --impl ours="$SWTPM_EXE" --ops-list getrandom --duration 0.2 --quick; then
	if grep -Eq '^\| getrandom \| ours \| [0-9]+ \|' "$work/duration.out"; then
		ok "duration: getrandom row"
	else
		not_ok "duration: getrandom row missing" "$work/duration.out"
	fi
fi

# 4. A/B against Debian's swtpm, when installed.
if [ -x "$REF" ]; then
	if run ab 0 --impl swtpm="$REF" --impl ours="$SWTPM_EXE" --quick; then
		has_rows ab "$work/ab.out" swtpm ours
	fi
else
	echo "ok - ab: skipped, $REF not installed # SKIP"
fi

# 4b. The bare reference server (bench/bare_server.c) answers every op as
#     a swtpm-compatible implementation would, and ends on CMD_SHUTDOWN.
if [ -n "${BARE_EXE:-}" ] && [ -x "$BARE_EXE" ]; then
	if run bare 0 --impl ours="$SWTPM_EXE" --impl bare="$BARE_EXE" --quick; then
		has_rows bare "$work/bare.out" ours bare
	fi
fi

# 5. Fleet of 5 instances.
if run fleet 0 --fleet 5 --impl ours="$SWTPM_EXE" --quick --csv "$work/fleet.csv"; then
	if grep -Eq '^\| fleet-getrandom \| ours \| 5 \|' "$work/fleet.out"; then
		ok "fleet: row for 5 instances"
	else
		not_ok "fleet: row missing" "$work/fleet.out"
	fi
	n=$(grep -c '^ours,launch,' "$work/fleet.csv")
	if [ "$n" -eq 5 ]; then ok "fleet: 5 launch times in csv"; else
		not_ok "fleet: $n launch times in csv, expected 5"; fi
fi

# 5b. Fleet of 5 under vtpmd: created through its management socket, one at a
#     time, then all at once; destroyed with purge. Every instance the bench
#     created must be gone afterwards (the bench reports and kills leftovers).
if [ -n "${VTPMD_EXE:-}" ] && [ -x "$VTPMD_EXE" ]; then
	for w in 1 all; do
		name=vtpmd-fleet-w$w
		if run "$name" 0 --fleet 5 --fleet-window "$w" --impl mgr="vtpmd:$VTPMD_EXE" \
			--quick --csv "$work/$name.csv"; then
			if grep -Eq '^\| fleet-getrandom \| mgr \| 5 \| 1 \| [0-9]+ \|' "$work/$name.out" &&
				grep -Eq '^\| launch \| mgr \| 5 \| [0-9]+ \| [0-9.]+ \|' "$work/$name.out"; then
				ok "$name: fleet and launch rows for 5 instances"
			else
				not_ok "$name: rows missing" "$work/$name.out"
			fi
			n=$(grep -c '^mgr,launch,' "$work/$name.csv")
			r=$(grep -c '^mgr,create-reply,' "$work/$name.csv")
			if [ "$n" -eq 5 ] && [ "$r" -eq 5 ]; then ok "$name: 5 launch and 5 reply times in csv"
			else not_ok "$name: $n launch / $r reply times in csv, expected 5 / 5"; fi
			if grep -q 'still running after destroy' "$work/$name.out" ||
				grep -q 'left after destroy' "$work/$name.err"; then
				not_ok "$name: instances outlived destroy" "$work/$name.err"
			else
				ok "$name: destroy left no instance running"
			fi
		fi
	done
	# Side by side with a process fleet in the same run.
	if run vtpmd-fleet-mixed 0 --fleet 5 --impl ours="$SWTPM_EXE" --impl mgr="vtpmd:$VTPMD_EXE" \
		--quick; then
		if grep -Eq '^\| launch \| ours \| 5 \|' "$work/vtpmd-fleet-mixed.out" &&
			grep -Eq '^\| launch \| mgr \| 5 \|' "$work/vtpmd-fleet-mixed.out"; then
			ok "vtpmd-fleet-mixed: both fleets reported"
		else
			not_ok "vtpmd-fleet-mixed: a fleet row is missing" "$work/vtpmd-fleet-mixed.out"
		fi
	fi
	run usage-vtpmd-ab 2 --impl mgr="vtpmd:$VTPMD_EXE" --quick
	run vtpmd-not-vtpmd 1 --fleet 2 --impl bad=vtpmd:/bin/true --quick
else
	echo "ok - vtpmd-fleet: skipped, VTPMD_EXE not set # SKIP"
fi

# 5c. --sockdir: the sockets in a tmpfs dir of their own, the state in $work.
#     An A/B run and a fleet of processes next to one under vtpmd; neither
#     socket nor dir may be left in the socket dir afterwards.
if [ -d /dev/shm ] && sockwork=$(mktemp -d /dev/shm/vtpm-bench-smoke.XXXXXX); then
	# A2 records the command line the bench gave it, then is our swtpm.
	printf '#!/bin/sh\nprintf "%%s\\n" "$@" >"%s/argv.$$"\nexec "%s" "$@"\n' \
		"$work" "$SWTPM_EXE" >"$work/argv-swtpm"
	chmod +x "$work/argv-swtpm"
	if run sockdir-ab 0 --impl ours="$SWTPM_EXE" --impl A2="$work/argv-swtpm" --quick \
		--sockdir "$sockwork"; then
		has_rows sockdir-ab "$work/sockdir-ab.out" ours A2
		if grep -qx "type=unixio,path=$sockwork/vtpm-bench\.[^/]*/data" "$work"/argv.* &&
			grep -qx "type=unixio,path=$sockwork/vtpm-bench\.[^/]*/ctrl" "$work"/argv.* &&
			grep -qx "dir=$work/vtpm-bench\.[^/]*" "$work"/argv.*; then
			ok "sockdir-ab: sockets under --sockdir, state under \$TMPDIR"
		else
			not_ok "sockdir-ab: unexpected server command line" "$(ls "$work"/argv.* | head -n 1)"
		fi
	fi
	fleet_impls=(--impl ours="$SWTPM_EXE")
	[ -n "${VTPMD_EXE:-}" ] && [ -x "$VTPMD_EXE" ] && fleet_impls+=(--impl mgr="vtpmd:$VTPMD_EXE")
	if run sockdir-fleet 0 --fleet 3 "${fleet_impls[@]}" --quick --sockdir "$sockwork"; then
		if grep -q "^- unix sockets under $sockwork (tmpfs)" "$work/sockdir-fleet.out"; then
			ok "sockdir-fleet: report names the socket dir"
		else
			not_ok "sockdir-fleet: no socket dir in the report header" "$work/sockdir-fleet.out"
		fi
	fi
	left=$(find "$sockwork" -mindepth 1 | wc -l)
	if [ "$left" -eq 0 ]; then ok "sockdir: nothing left in the socket dir"; else
		not_ok "sockdir: $left entries left in the socket dir"; fi
else
	echo "ok - sockdir: skipped, no /dev/shm # SKIP"
fi

# 6. Failure paths: a server that never answers, and usage errors.
run dead-server 1 --impl dead=/bin/true --quick --ops-list getrandom
run usage-floor-fleet 2 --fleet 2 --impl floor --quick
run usage-bad-op 2 --impl ours="$SWTPM_EXE" --ops-list nosuchop

# 7. A server whose answers fail validation: exit 1 and the bytes printed.
#    The fake speaks just enough of the socket protocol; it answers
#    GetRandom(32) with 31 bytes in a correctly sized frame.
if command -v python3 >/dev/null 2>&1; then
	cat >"$work/fake-swtpm" <<'PYEOF'
#!/usr/bin/env python3
import os, select, socket, struct, sys
def path_of(opt):
    spec = sys.argv[sys.argv.index(opt) + 1]
    return dict(kv.split("=", 1) for kv in spec.split(",") if "=" in kv)["path"]
def listen(p):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(p)
    s.listen(1)
    return s
data, ctrl = listen(path_of("--server")), listen(path_of("--ctrl"))
kind = {}  # connection -> "data" | "ctrl"
while True:
    r, _, _ = select.select([data, ctrl] + list(kind), [], [], 30)
    if not r:
        sys.exit(1)
    for s in r:
        if s in (data, ctrl):
            c, _ = s.accept()
            kind[c] = "ctrl" if s is ctrl else "data"
            continue
        b = s.recv(4096)
        if not b:
            del kind[s]
            s.close()
        elif kind[s] == "ctrl":  # CMD_SHUTDOWN (or anything): success, exit
            s.sendall(bytes(4))
            sys.exit(0)
        else:
            s.sendall(struct.pack(">HIIH", 0x8001, 43, 0, 31) + os.urandom(31))
PYEOF
	chmod +x "$work/fake-swtpm"
	if run bad-response 1 --impl bad="$work/fake-swtpm" --quick --ops-list getrandom; then
		if grep -q '^FAIL bad setup: GetRandom returned 31 bytes' "$work/bad-response.err" &&
			grep -q 'response (43 bytes)' "$work/bad-response.err"; then
			ok "bad-response: failure and bytes reported"
		else
			not_ok "bad-response: report lacks the failure or its bytes" "$work/bad-response.err"
		fi
	fi
else
	echo "ok - bad-response: skipped, no python3 # SKIP"
fi

# No server may outlive the bench.
left=$(find "$work" -maxdepth 1 -name 'vtpm-bench.*' | wc -l)
if [ "$left" -eq 0 ]; then ok "no state dirs left behind"; else
	not_ok "$left state dirs left behind"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
