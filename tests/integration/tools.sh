#!/usr/bin/env bash
# Our swtpm_ioctl / swtpm_bios (in $TOOLS_DIR) against Debian's swtpm-tools
# 0.7.1 (/usr/bin), byte for byte.
#
# For each emulator -- our $SWTPM_EXE and Debian's /usr/bin/swtpm -- two
# identical instances are started; Debian's tools drive one ("d"), ours the
# other ("o"), through the same scenario, and every step must give the same
# stdout, stderr and exit status.  Both tools run with argv[0] = their plain
# name and inside their instance's directory with relative socket paths, so
# even messages quoting arguments or getopt's program name are comparable.
# Where the two instances necessarily differ (TCP ports) the arguments carry
# @CPORT@ / @DPORT@ placeholders that each side fills in.
#
#   1. swtpm_ioctl, TPM 2, UnixIO control channel: -c, -e before INIT, -i, -e,
#      -l 3, -b 0, -g, --info 1/3, -h <data>, -h - (9000 bytes from stdin),
#      -e, -r 3, -r 0 (0x3d), -v, -b 4000 while running (0xa), --save
#      permanent/volatile/savestate (mode 0600; the permanent blob saved by
#      both tools from the same instance must be identical), --load while
#      running (0xa), --stop, -e/--save after STOP (0xa), --load of all three
#      blobs, -i, -C, bad blob type, unwritable file, --lock-storage 3 (our
#      tool only: 0 on our emulator, "TPM result from PTM_LOCK_STORAGE: 0xa"
#      on 0.7.1's), -s (both emulators exit 0), a command after that;
#   2. the same tools over TCP (control and data channel);
#   3. swtpm_bios, TPM 1.2: default sequence, second run (128), -o, -n -cs,
#      -n -ea, -n -u twice (physical presence then locked: 128), -ea -cs -u, -d;
#   4. swtpm_bios, TPM 2: --tpm2, -cs (128), -n -cs -u, -n -u again (0x9a2,
#      128), -d, TCSD_* environment;
#   5. usage errors of both tools (no command, two commands, missing device,
#      locality 5, bad --tcp ports, unknown options, missing file name,
#      unreachable sockets), --version; -h/--help/-v/usage texts are our own
#      prose, so only their first line (the version line) and status count.
TEST_NAME=tools
. "$(dirname "$0")/lib.sh"

REF_IOCTL=/usr/bin/swtpm_ioctl
REF_BIOS=/usr/bin/swtpm_bios

# run_all_ref.sh and manual runs may lack it; meson always sets it.
[ -n "${TOOLS_DIR:-}" ] || skip "TOOLS_DIR (directory of our swtpm_ioctl and swtpm_bios) is not set"
[ -x "$TOOLS_DIR/swtpm_ioctl" ] && [ -x "$TOOLS_DIR/swtpm_bios" ] ||
	fail "no swtpm_ioctl / swtpm_bios in TOOLS_DIR=$TOOLS_DIR"
[ -x "$REF_IOCTL" ] && [ -x "$REF_BIOS" ] || skip "Debian's swtpm-tools are not installed"
[ -x "$REF_SWTPM" ] || skip "Debian's swtpm is not installed"

# The same command name resolves to Debian's or our binary via PATH.
mkdir -p "$TMPD/bin-deb" "$TMPD/bin-our"
ln -s "$REF_IOCTL" "$TMPD/bin-deb/swtpm_ioctl"
ln -s "$REF_BIOS" "$TMPD/bin-deb/swtpm_bios"
ln -s "$(readlink -f "$TOOLS_DIR/swtpm_ioctl")" "$TMPD/bin-our/swtpm_ioctl"
ln -s "$(readlink -f "$TOOLS_DIR/swtpm_bios")" "$TMPD/bin-our/swtpm_bios"

declare -A SIDE_DIR=() SIDE_BIN=() SIDE_CPORT=() SIDE_DPORT=()
SIDE_BIN[d]=$TMPD/bin-deb
SIDE_BIN[o]=$TMPD/bin-our
INST=0
STEP=

# ---------------------------------------------------------------- running both

# side S CMD ARGS... : run CMD (swtpm_ioctl, swtpm_bios or env ... TOOL) with
# side S's binaries in its directory; placeholders @CPORT@/@DPORT@ are filled
# in.  Keeps stdout, stderr and status in $dir/.last.{out,err,rc}.
side() {
	local s=$1 a dir
	shift
	local -a args=()
	dir=${SIDE_DIR[$s]}
	for a in "$@"; do
		a=${a//@CPORT@/${SIDE_CPORT[$s]:-0}}
		args+=("${a//@DPORT@/${SIDE_DPORT[$s]:-0}}")
	done
	pushd "$dir" >/dev/null || fail "cannot enter $dir"
	run env PATH="${SIDE_BIN[$s]}:$PATH" "${args[@]}"
	popd >/dev/null || fail "popd failed"
	cp "$TMPD/.run.out" "$dir/.last.out"
	cp "$TMPD/.run.err" "$dir/.last.err"
	echo "$RC" >"$dir/.last.rc"
}

_show() { # FILE
	if [ -s "$1" ]; then head -c 1500 "$1" | od -An -c | head -20 | sed 's/^/      /'; else echo "      (empty)"; fi
}

_pair_fail() { # WHAT ARGS...
	local what=$1 s
	shift
	{
		printf '%s differs between Debian'"'"'s tool and ours (%s)\n' "$what" "$STEP"
		printf '  command: %s\n' "$*"
		for s in d o; do
			printf '  %s (%s): exit status %s\n    stdout:\n%s\n    stderr:\n%s\n' \
				"$([ $s = d ] && echo Debian || echo ours)" "${SIDE_DIR[$s]}" \
				"$(cat "${SIDE_DIR[$s]}/.last.rc")" \
				"$(_show "${SIDE_DIR[$s]}/.last.out")" "$(_show "${SIDE_DIR[$s]}/.last.err")"
		done
	} >"$TMPD/.pairfail"
	fail "$(cat "$TMPD/.pairfail")"
}

# pair [--first-line] CMD ARGS... : Debian's tool on side d, ours on side o;
# exit status, stderr and stdout (or only its first line) must be identical.
# Leaves our side's results in RC / OUT / ERR.
pair() {
	local first=0
	if [ "$1" = --first-line ]; then
		first=1
		shift
	fi
	side d "$@"
	side o "$@"
	local d=${SIDE_DIR[d]} o=${SIDE_DIR[o]}
	[ "$(cat "$d/.last.rc")" = "$(cat "$o/.last.rc")" ] || _pair_fail "exit status" "$@"
	cmp -s "$d/.last.err" "$o/.last.err" || _pair_fail "stderr" "$@"
	if [ $first = 1 ]; then
		[ "$(head -n 1 "$d/.last.out")" = "$(head -n 1 "$o/.last.out")" ] ||
			_pair_fail "first stdout line" "$@"
	else
		cmp -s "$d/.last.out" "$o/.last.out" || _pair_fail "stdout" "$@"
	fi
	RC=$(cat "$o/.last.rc")
	OUT=$(cat "$o/.last.out")
	ERR=$(cat "$o/.last.err")
}

# pair_rc WANT CMD ARGS... : pair, and the (common) status must be WANT.
pair_rc() {
	local want=$1
	shift
	pair "$@"
	[ "$RC" = "$want" ] || fail "$STEP: expected exit status $want from both tools, got $RC: $*
  stdout: $OUT
  stderr: $ERR"
}

# ---------------------------------------------------------------- instances

# start_pair EXE KIND [tcp] : two fresh instances (KIND tpm2|tpm12) of EXE with
# UnixIO channels "ctrl"/"data" in their directories, or TCP channels.
start_pair() {
	local exe=$1 kind=$2 net=${3:-unix} s dir
	local -a ver=() chan=()
	INST=$((INST + 1))
	[ "$kind" = tpm2 ] && ver=(--tpm2)
	[ "$net" = tcp ] && pick_ports 4
	for s in d o; do
		dir=$TMPD/i$INST$s
		mkdir -p "$dir/st"
		SIDE_DIR[$s]=$dir
		if [ "$net" = tcp ]; then
			SIDE_CPORT[$s]=$PORT
			SIDE_DPORT[$s]=$((PORT + 1))
			PORT=$((PORT + 2))
			chan=(--ctrl "type=tcp,port=${SIDE_CPORT[$s]}"
				--server "type=tcp,port=${SIDE_DPORT[$s]}")
		else
			chan=(--ctrl "type=unixio,path=$dir/ctrl"
				--server "type=unixio,path=$dir/data")
		fi
		start_swtpm "i$INST$s" "$exe" socket "${ver[@]}" --tpmstate "dir=$dir/st" "${chan[@]}"
	done
}

stop_pair() {
	stop_swtpm "i${INST}d"
	stop_swtpm "i${INST}o"
}

is_ours() { # EXE : is this our emulator (not Debian's)?
	[ "$(readlink -f "$1")" != "$(readlink -f "$REF_SWTPM")" ]
}

# ---------------------------------------------------------------- scenarios

ioctl_unix_scenario() {
	local exe=$1 IO=(swtpm_ioctl --unix ctrl) s sz_d sz_o
	STEP="swtpm_ioctl over UnixIO on $exe"
	start_pair "$exe" tpm2
	head -c 9000 /dev/zero | tr '\0' 'h' >"$TMPD/hash9000"

	pair_rc 0 "${IO[@]}" -c
	assert_match '^ptm capability is 0x[0-9a-f]+$' "$OUT" "-c"
	pair_rc 1 "${IO[@]}" -e
	assert_eq 'TPM result from PTM_GET_TPMESTABLISHED: 0xa' "$ERR" "-e before -i"
	pair_rc 0 "${IO[@]}" -i
	pair_rc 0 "${IO[@]}" -e
	assert_eq 'tpmEstablished is 0' "$OUT" "-e after -i"
	pair_rc 0 "${IO[@]}" -l 3
	pair_rc 0 "${IO[@]}" -b 0
	assert_match '^TPM buffersize: [0-9]+$' "$(head -n 1 <<<"$OUT")" "-b 0"
	pair_rc 0 "${IO[@]}" -g
	assert_eq 'ptm configuration flags: 0x0' "$OUT" "-g"
	pair_rc 0 "${IO[@]}" --info 1
	assert_contains '"TPMSpecification"' "$OUT" "--info 1"
	pair_rc 0 "${IO[@]}" --info 3
	assert_contains '"TPMAttributes"' "$OUT" "--info 3"
	pair_rc 0 "${IO[@]}" -h 'hello, world'
	pair_rc 0 "${IO[@]}" -h - <"$TMPD/hash9000"
	pair_rc 0 "${IO[@]}" -e
	assert_eq 'tpmEstablished is 1' "$OUT" "-e after -h"
	pair_rc 0 "${IO[@]}" -r 3
	pair_rc 1 "${IO[@]}" -r 0
	assert_eq 'TPM result from PTM_RESET_TPMESTABLISHED: 0x3d' "$ERR" "-r 0"
	pair_rc 0 "${IO[@]}" -v
	pair_rc 1 "${IO[@]}" -b 4000
	assert_eq 'TPM result from PTM_SET_BUFFERSIZE: 0xa' "$ERR" "-b 4000 while running"

	pair_rc 0 "${IO[@]}" --save permanent perm.blob
	pair_rc 0 "${IO[@]}" --save volatile vol.blob
	pair_rc 0 "${IO[@]}" --save savestate save.blob
	for s in d o; do
		assert_mode 600 "${SIDE_DIR[$s]}/perm.blob"
		assert_mode 600 "${SIDE_DIR[$s]}/vol.blob"
		[ -s "${SIDE_DIR[$s]}/perm.blob" ] || fail "$STEP: empty permanent blob ($s)"
		[ -s "${SIDE_DIR[$s]}/vol.blob" ] || fail "$STEP: empty volatile blob ($s)"
		# No TPM2_Shutdown(STATE) happened: no savestate, an empty file.
		[ -f "${SIDE_DIR[$s]}/save.blob" ] && [ ! -s "${SIDE_DIR[$s]}/save.blob" ] ||
			fail "$STEP: savestate file of side $s should exist and be empty"
	done
	sz_d=$(stat -c %s "${SIDE_DIR[d]}/vol.blob")
	sz_o=$(stat -c %s "${SIDE_DIR[o]}/vol.blob")
	assert_eq "$sz_d" "$sz_o" "size of the volatile blobs"
	# The other tool, same instance, nothing in between: identical blob.
	SIDE_BIN[d]=$TMPD/bin-our
	SIDE_BIN[o]=$TMPD/bin-deb
	side d "${IO[@]}" --save permanent perm.other
	side o "${IO[@]}" --save permanent perm.other
	SIDE_BIN[d]=$TMPD/bin-deb
	SIDE_BIN[o]=$TMPD/bin-our
	for s in d o; do
		cmp -s "${SIDE_DIR[$s]}/perm.blob" "${SIDE_DIR[$s]}/perm.other" ||
			fail "$STEP: permanent blobs saved by Debian's and our tool from instance $s differ"
	done
	# A command spelled differently passes the parser, then prints the usage.
	pair_rc 1 --first-line "${IO[@]}" --c

	pair_rc 1 "${IO[@]}" --load permanent perm.blob
	assert_eq 'TPM result from PTM_SET_STATEBLOB: 0xa' "$ERR" "--load while running"
	pair_rc 0 "${IO[@]}" --stop
	pair_rc 1 "${IO[@]}" -e
	pair_rc 1 "${IO[@]}" --save permanent after-stop.blob
	assert_eq 'TPM result from PTM_GET_STATEBLOB: 0xa' "$ERR" "--save after --stop"
	pair_rc 0 "${IO[@]}" --load permanent perm.blob
	pair_rc 0 "${IO[@]}" --load volatile vol.blob
	pair_rc 0 "${IO[@]}" --load savestate save.blob
	pair_rc 0 "${IO[@]}" -i
	pair_rc 0 "${IO[@]}" -e
	pair_rc 0 "${IO[@]}" -C
	pair_rc 1 "${IO[@]}" --load bogus perm.blob
	assert_eq "Unknown TPM state type 'bogus'" "$ERR" "--load bogus"
	pair_rc 1 "${IO[@]}" --save volatile no/such/dir/vol.blob

	# 0.8's command; Debian's 0.7.1 tool does not know it, so ours alone.
	side o "${IO[@]}" --lock-storage 3
	if is_ours "$exe"; then
		[ "$RC" = 0 ] && [ -z "$OUT$ERR" ] ||
			fail "$STEP: --lock-storage 3 on our emulator: status $RC, stdout '$OUT', stderr '$ERR'"
	else
		[ "$RC" = 1 ] && [ "$ERR" = 'TPM result from PTM_LOCK_STORAGE: 0xa' ] ||
			fail "$STEP: --lock-storage 3 on swtpm 0.7.1: status $RC, stderr '$ERR'"
	fi

	pair_rc 0 "${IO[@]}" -s
	expect_swtpm_exit "i${INST}d" 0
	expect_swtpm_exit "i${INST}o" 0
	pair_rc 1 "${IO[@]}" -c
	assert_eq 'Connect failed: No such file or directory' "$ERR" "-c after -s"
}

tcp_scenario() {
	local exe=$1
	STEP="swtpm_ioctl / swtpm_bios over TCP on $exe"
	start_pair "$exe" tpm2 tcp
	pair_rc 0 swtpm_ioctl --tcp :@CPORT@ -c
	pair_rc 0 swtpm_ioctl --tcp 127.0.0.1:@CPORT@ -i
	pair_rc 0 swtpm_ioctl --tcp localhost:@CPORT@ -g
	pair_rc 0 swtpm_ioctl --tcp :@CPORT@ --info 1
	pair_rc 0 swtpm_bios --tcp :@DPORT@ --tpm2
	pair_rc 128 swtpm_bios --tcp :@DPORT@ --tpm2 -cs
	assert_eq 'TPM2_Startup returned error code 0x00000100' "$(head -n 1 <<<"$OUT")" "second TPM2_Startup"
	pair_rc 0 env TCSD_USE_TCP_DEVICE=1 TCSD_TCP_DEVICE_HOSTNAME=127.0.0.1 \
		TCSD_TCP_DEVICE_PORT=@DPORT@ swtpm_bios --tpm2 -n -cs
	pair_rc 0 swtpm_ioctl --tcp :@CPORT@ --save permanent perm.blob
	pair_rc 0 swtpm_ioctl --tcp :@CPORT@ --save volatile vol.blob
	pair_rc 0 swtpm_ioctl --tcp :@CPORT@ --stop
	pair_rc 0 swtpm_ioctl --tcp :@CPORT@ --load permanent perm.blob
	pair_rc 0 swtpm_ioctl --tcp :@CPORT@ --load volatile vol.blob
	pair_rc 0 swtpm_ioctl --tcp :@CPORT@ -i
	pair_rc 0 swtpm_ioctl --tcp :@CPORT@ -s
	expect_swtpm_exit "i${INST}d" 0
	expect_swtpm_exit "i${INST}o" 0
}

bios_tpm12_scenario() {
	local exe=$1 B=(swtpm_bios --unix data)
	STEP="swtpm_bios, TPM 1.2, on $exe"
	start_pair "$exe" tpm12
	# INIT both the same way (Debian's tool), then the BIOS sequences.
	SIDE_BIN[o]=$TMPD/bin-deb
	pair_rc 0 swtpm_ioctl --unix ctrl -i
	SIDE_BIN[o]=$TMPD/bin-our
	pair_rc 0 "${B[@]}"
	pair_rc 128 "${B[@]}"
	assert_eq 'TPM_Startup(0x01) returned error code 0x00000026' "$ERR" "second swtpm_bios"
	pair_rc 128 "${B[@]}" -o
	pair_rc 0 "${B[@]}" -n -cs
	pair_rc 0 "${B[@]}" -n -ea
	pair_rc 0 "${B[@]}" -n -u
	pair_rc 128 "${B[@]}" -n -u
	assert_contains 'TSC_PhysicalPresence(NOT_PRESENT|LOCK) returned error code' "$ERR" "-u after -u"
	pair_rc 128 "${B[@]}" -ea -cs -u
	pair_rc 0 swtpm_ioctl --unix ctrl -i
	pair_rc 0 "${B[@]}" -d
	pair_rc 128 "${B[@]}" -c -s
	stop_pair
}

bios_tpm2_scenario() {
	local exe=$1 B=(swtpm_bios --tpm2 --unix data)
	STEP="swtpm_bios, TPM 2, on $exe"
	start_pair "$exe" tpm2
	SIDE_BIN[o]=$TMPD/bin-deb
	pair_rc 0 swtpm_ioctl --unix ctrl -i
	SIDE_BIN[o]=$TMPD/bin-our
	pair_rc 0 "${B[@]}"
	pair_rc 128 "${B[@]}" -cs
	pair_rc 0 "${B[@]}" -n -cs -u
	pair_rc 128 "${B[@]}" -n -u
	assert_eq 'TPM2_HierarchyChangeAuth returned error code 0x000009a2' "$OUT" "-u twice"
	pair_rc 0 "${B[@]}" -d
	pair_rc 128 "${B[@]}" -s -o -ea
	stop_pair
}

usage_scenario() {
	local s long
	STEP="usage errors"
	INST=$((INST + 1))
	for s in d o; do
		SIDE_DIR[$s]=$TMPD/u$s
		mkdir -p "${SIDE_DIR[$s]}"
	done
	long=/tmp/$(printf 'x%.0s' $(seq 120))

	pair_rc 1 swtpm_ioctl
	assert_eq 'No valid command.' "$ERR" "no command"
	pair_rc 1 swtpm_ioctl -c -i --unix ctrl
	assert_eq 'Only one command may be given.' "$ERR" "two commands"
	pair_rc 1 swtpm_ioctl -c -c --unix ctrl
	pair_rc 1 swtpm_ioctl -c
	assert_eq 'Error: Missing device name.' "$ERR" "missing device"
	pair_rc 1 swtpm_ioctl -l 5 --unix ctrl
	assert_eq 'Locality outside valid range of [0..4].' "$ERR" "locality 5"
	pair_rc 1 swtpm_ioctl -r x --unix ctrl
	pair_rc 1 swtpm_ioctl -b x --unix ctrl
	pair_rc 1 swtpm_ioctl --info 1x --unix ctrl
	pair_rc 1 swtpm_ioctl --tcp :99999 -c
	assert_eq "Port '99999' outside valid range." "$ERR" "port 99999"
	pair_rc 1 swtpm_ioctl --tcp :abc -c
	assert_eq "Invalid port 'abc'" "$ERR" "port abc"
	pair_rc 1 swtpm_ioctl --tcp host: -c
	pair_rc 1 swtpm_ioctl --tcp :1 -c
	pair_rc 1 swtpm_ioctl -x
	pair_rc 1 swtpm_ioctl --t :1 -c
	pair_rc 1 swtpm_ioctl --save permanent
	pair_rc 1 swtpm_ioctl --save permanent -c --unix ctrl
	pair_rc 1 swtpm_ioctl --unix no-such-socket -c
	pair_rc 1 swtpm_ioctl --unix "$long" -c
	pair_rc 1 swtpm_ioctl -c no-such-device
	pair_rc 0 swtpm_ioctl --version
	pair_rc 0 swtpm_ioctl -x --version
	pair_rc 0 --first-line swtpm_ioctl --help
	pair_rc 1 swtpm_ioctl --c
	pair_rc 1 swtpm_ioctl -l=3 no-such-device

	pair_rc 1 swtpm_bios --tcp :99999
	pair_rc 1 swtpm_bios --tcp :abc
	pair_rc 255 swtpm_bios --tcp :1
	assert_eq 'Could not connect using TCP socket.' "$ERR" "swtpm_bios --tcp :1"
	pair_rc 255 swtpm_bios --unix no-such-socket
	pair_rc 255 swtpm_bios --unix "$long"
	pair_rc 255 swtpm_bios --tpm-device no-such-device
	pair_rc 255 env TPM_DEVICE=no-such-device swtpm_bios --tpm2
	pair_rc 0 swtpm_bios -n -o
	pair_rc 0 --first-line swtpm_bios -h
	pair_rc 1 --first-line swtpm_bios -v
	pair_rc 1 --first-line swtpm_bios -x
	pair_rc 1 --first-line swtpm_bios -t
}

# ---------------------------------------------------------------- main

SERVERS=("$SWTPM_EXE")
if [ "$(readlink -f "$SWTPM_EXE")" != "$(readlink -f "$REF_SWTPM")" ]; then
	SERVERS+=("$REF_SWTPM")
fi

usage_scenario
for exe in "${SERVERS[@]}"; do
	info "emulator $exe"
	ioctl_unix_scenario "$exe"
	tcp_scenario "$exe"
	bios_tpm12_scenario "$exe"
	bios_tpm2_scenario "$exe"
done

pass
