#!/usr/bin/env bash
# swtpm-tools (swtpm_ioctl, swtpm_bios) against `swtpm socket`:
#   1. TPM 2, ctrl over --unix: every read-only ctrl command, INIT, locality,
#      hashing + tpmEstablished, RESET_TPMESTABLISHED, STORE_VOLATILE, CANCEL,
#      SHUTDOWN (exit 0, socket file removed)
#   2. TPM 2, ctrl over --tcp: the same read-only set, then --save permanent/
#      volatile/savestate, --stop, --load, -i round trip (PCR 16 and an NV
#      index checked with tpm2-tools), and a migration into a fresh instance
#   3. TPM 1.2: ctrl commands, swtpm_bios (exit statuses), state file
#      (tpm-00.permall, mode 0640, header 02 01 00 0a), restart on the same
#      directory and swtpm_bios -o again
#   4. TPM 2: swtpm_bios --tpm2 (plain, -cs, -u)
#
# Reference facts used (swtpm 0.7.1, captured):
#   * `-c`: TPM 2 0xffff, TPM 1.2 0x7fff (ours additionally has
#     LOCK_STORAGE: 0x1ffff / 0x17fff);
#   * `-b 0`: TPM 2 4096/2808/4096, TPM 1.2 4096/3072/4096;
#   * `--info 1`: TPM 2 {"TPMSpecification":{"family":"2.0","level":0,"revision":164}},
#     TPM 1.2 {"TPMSpecification":{"family":"1.2","level":2,"revision":116}};
#   * commands that need a running TPM (-e, -C, -h, --save) answer
#     TPM_BAD_ORDINAL before INIT/after STOP: exit 1 and
#     "TPM result from PTM_<NAME>: 0xa" on stderr; -b N (set) while running
#     → 0xa; --load while running → 0xa;
#   * -r 0..2 → 0x3d (TPM_BAD_LOCALITY), -r 3 works;
#   * TPM 1.2: -C → 0x9 after INIT; -h before TPM_Startup → 0x26 and the
#     TPM then fails every command with 0x1c (TPM_FAILEDSELFTEST) until the
#     next INIT;
#   * --save savestate on TPM 2 → exit 0 and an empty file (0x800 answer);
#     files written by --save have mode 0600;
#   * TPM 1.2 volatile state stored with -v is loaded by the next INIT (also
#     after a restart): TPM_Startup then fails with 0x26; INIT deletes it;
#   * swtpm_bios exits 0 on success, 128 if any TPM command failed (TPM 1.2
#     errors on stderr, TPM 2 on stdout): before INIT every command fails
#     (TPM 1.2 0x9, TPM 2 0x101), a second startup fails (TPM 1.2
#     TPM_Startup 0x26, TPM 2 TPM2_Startup 0x100), a second `--tpm2 -u`
#     fails (HierarchyChangeAuth 0x9a2).
TEST_NAME=swtpm_tools
. "$(dirname "$0")/lib.sh"

require_cmd swtpm_ioctl swtpm_bios tpm2_startup tpm2_pcrextend tpm2_pcrread \
	tpm2_nvdefine tpm2_nvwrite tpm2_nvread

BUFSZ_TPM2=$'TPM buffersize: 4096\nminimum size  : 2808\nmaximum size  : 4096'
BUFSZ_TPM12=$'TPM buffersize: 4096\nminimum size  : 3072\nmaximum size  : 4096'
INFO1_TPM2='{"TPMSpecification":{"family":"2.0","level":0,"revision":164}}'
INFO1_TPM12='{"TPMSpecification":{"family":"1.2","level":2,"revision":116}}'
NV_INDEX=0x1500020

# IO = the swtpm_ioctl transport arguments of the instance being tested.
IO=()
io_ok() { ok swtpm_ioctl "${IO[@]}" "$@"; }
# io_tpm_error NAME CODE ARGS... : exit 1 with "TPM result from PTM_NAME: CODE"
io_tpm_error() {
	local name=$1 code=$2
	shift 2
	expect_rc 1 swtpm_ioctl "${IO[@]}" "$@"
	assert_contains "TPM result from PTM_$name: $code" "$ERR" "swtpm_ioctl $* (stderr)"
}

check_cap() { # 2|12
	io_ok -c
	if [ "$1" = 2 ]; then
		assert_match '^ptm capability is 0x(ffff|1ffff)$' "$OUT" "swtpm_ioctl -c (TPM 2)"
	else
		assert_match '^ptm capability is 0x(7fff|17fff)$' "$OUT" "swtpm_ioctl -c (TPM 1.2)"
	fi
}

# Read-only ctrl commands that work whether or not the TPM runs.
check_static() { # 2|12
	local v=$1
	check_cap "$v"
	io_ok -g
	assert_eq 'ptm configuration flags: 0x0' "$OUT" "swtpm_ioctl -g"
	io_ok -b 0
	if [ "$v" = 2 ]; then
		assert_eq "$BUFSZ_TPM2" "$OUT" "swtpm_ioctl -b 0 (TPM 2)"
	else
		assert_eq "$BUFSZ_TPM12" "$OUT" "swtpm_ioctl -b 0 (TPM 1.2)"
	fi
	io_ok --info 1
	if [ "$v" = 2 ]; then
		assert_eq "$INFO1_TPM2" "$OUT" "swtpm_ioctl --info 1 (TPM 2)"
	else
		assert_eq "$INFO1_TPM12" "$OUT" "swtpm_ioctl --info 1 (TPM 1.2)"
	fi
}

pcr16() {
	local f="$TMPD/pcr.bin"
	rm -f "$f"
	ok tpm2_pcrread sha256:16 -o "$f"
	PCRVAL=$(hex_of_file "$f")
}

nv_read_hex() {
	rm -f "$TMPD/nv.out"
	ok tpm2_nvread "$NV_INDEX" -C o -s 32 -o "$TMPD/nv.out"
	NVVAL=$(hex_of_file "$TMPD/nv.out")
}

header_hex() { head -c "$2" "$1" | od -An -v -tx1 | tr -d ' \n'; }

# ------------------------------------------------------------------ 1. TPM 2, unix ctrl
part_unix() {
	info "TPM 2 with ctrl over --unix"
	local d="$TMPD/st-unix" sock="$TMPD/ctrl-unix.sock"
	mkdir -p "$d"
	pick_ports 1
	start_swtpm unix "$SWTPM_EXE" socket --tpm2 --server "type=tcp,port=$PORT" \
		--ctrl "type=unixio,path=$sock" --tpmstate "dir=$d"
	IO=(--unix "$sock")

	check_static 2
	io_tpm_error GET_TPMESTABLISHED 0xa -e
	io_tpm_error CANCEL_TPM_CMD 0xa -C

	io_ok -i
	check_static 2
	io_ok -e
	assert_eq 'tpmEstablished is 0' "$OUT" "swtpm_ioctl -e after INIT"
	io_ok -l 3
	io_ok -l 0
	io_ok -C
	io_tpm_error SET_BUFFERSIZE 0xa -b 1024

	info "hash sequence sets tpmEstablished, -r 3 resets it"
	io_ok -h data
	io_ok -e
	assert_eq 'tpmEstablished is 1' "$OUT" "swtpm_ioctl -e after -h data"
	io_tpm_error RESET_TPMESTABLISHED 0x3d -r 0
	io_ok -e
	assert_eq 'tpmEstablished is 1' "$OUT" "swtpm_ioctl -e after refused -r 0"
	io_ok -r 3
	io_ok -e
	assert_eq 'tpmEstablished is 0' "$OUT" "swtpm_ioctl -e after -r 3"

	info "store volatile"
	assert_no_file "$d/tpm2-00.volatilestate"
	io_ok -v
	assert_file "$d/tpm2-00.volatilestate"
	assert_mode 640 "$d/tpm2-00.volatilestate"
	assert_eq 0201000a "$(header_hex "$d/tpm2-00.volatilestate" 4)" "volatilestate container header"

	info "stop then commands needing a running TPM"
	io_ok --stop
	io_tpm_error GET_TPMESTABLISHED 0xa -e
	check_cap 2

	info "shutdown"
	assert_swtpm_running unix
	io_ok -s
	expect_swtpm_exit unix 0
	[ ! -e "$sock" ] || fail "ctrl socket $sock still exists after swtpm_ioctl -s"
	assert_file "$d/.lock"
}

# ------------------------------------------------------------------ 2. TPM 2, tcp ctrl + blobs
part_tcp() {
	info "TPM 2 with ctrl over --tcp, state blobs"
	local d="$TMPD/st-tcp" d2="$TMPD/st-migrated" p c p2 c2
	mkdir -p "$d" "$d2"
	pick_ports 2
	p=$PORT
	c=$((PORT + 1))
	start_swtpm tcp "$SWTPM_EXE" socket --tpm2 --server "type=tcp,port=$p" \
		--ctrl "type=tcp,port=$c" --tpmstate "dir=$d"
	IO=(--tcp "127.0.0.1:$c")
	export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$p"

	check_static 2
	io_tpm_error GET_TPMESTABLISHED 0xa -e
	io_tpm_error GET_STATEBLOB 0xa --save permanent "$TMPD/early.bin"
	io_ok -i
	io_ok -e
	assert_eq 'tpmEstablished is 0' "$OUT" "swtpm_ioctl --tcp -e"
	io_ok -l 3
	io_ok -l 0
	check_static 2

	info "TPM state: PCR 16 and NV index"
	local dig exp16 nv
	dig=$(printf abc | sha256_hex)
	exp16=$(pcr_extend_hex "$ZERO32" "$dig")
	ok tpm2_startup -c
	ok tpm2_pcrextend "16:sha256=$dig"
	pcr16
	assert_eq "$exp16" "$PCRVAL" "PCR 16 before --save"
	head -c 32 /dev/urandom >"$TMPD/nv.in"
	nv=$(hex_of_file "$TMPD/nv.in")
	ok tpm2_nvdefine "$NV_INDEX" -C o -s 32 -a "ownerread|ownerwrite|authread|authwrite"
	ok tpm2_nvwrite "$NV_INDEX" -C o -i "$TMPD/nv.in"

	info "--save permanent / volatile / savestate"
	io_ok --save permanent "$TMPD/perm.blob"
	io_ok --save volatile "$TMPD/vol.blob"
	io_ok --save savestate "$TMPD/save.blob"
	local f
	for f in perm vol save; do
		assert_file "$TMPD/$f.blob"
		assert_mode 600 "$TMPD/$f.blob"
	done
	assert_eq 0 "$(stat -c %s "$TMPD/save.blob")" "size of the TPM 2 savestate blob"
	# container header: version 2, min 1, hdrsize 10, flags MIGRATION_DATA
	assert_eq 0201000a0004 "$(header_hex "$TMPD/perm.blob" 6)" "permanent blob header"
	assert_eq 0201000a0004 "$(header_hex "$TMPD/vol.blob" 6)" "volatile blob header"
	assert_eq "$(stat -c %s "$TMPD/perm.blob")" "$((16#$(od -An -j6 -N4 -tx1 "$TMPD/perm.blob" | tr -d ' \n')))" "permanent blob totlen field"
	assert_no_file "$d/tpm2-00.volatilestate"

	info "--stop, --load, -i on the same instance"
	io_ok --stop
	expect_fail tpm2_pcrread sha256:16
	io_ok --load permanent "$TMPD/perm.blob"
	io_ok --load volatile "$TMPD/vol.blob"
	io_ok -i
	pcr16
	assert_eq "$exp16" "$PCRVAL" "PCR 16 after --stop/--load/-i"
	nv_read_hex
	assert_eq "$nv" "$NVVAL" "NV content after --stop/--load/-i"
	io_tpm_error SET_STATEBLOB 0xa --load permanent "$TMPD/perm.blob"
	assert_swtpm_running tcp
	check_cap 2

	info "--load into a fresh instance on an empty directory"
	pick_ports 2
	p2=$PORT
	c2=$((PORT + 1))
	start_swtpm migrated "$SWTPM_EXE" socket --tpm2 --server "type=tcp,port=$p2" \
		--ctrl "type=tcp,port=$c2" --tpmstate "dir=$d2"
	IO=(--tcp "127.0.0.1:$c2")
	io_ok --load permanent "$TMPD/perm.blob"
	io_ok --load volatile "$TMPD/vol.blob"
	io_ok -i
	export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$p2"
	pcr16
	assert_eq "$exp16" "$PCRVAL" "PCR 16 in the migrated instance"
	nv_read_hex
	assert_eq "$nv" "$NVVAL" "NV content in the migrated instance"
	assert_file "$d2/tpm2-00.permall"
	assert_no_file "$d2/tpm2-00.volatilestate"
	io_ok -s
	expect_swtpm_exit migrated 0

	IO=(--tcp "127.0.0.1:$c")
	io_ok -s
	expect_swtpm_exit tcp 0
}

# ------------------------------------------------------------------ 3. TPM 1.2 + swtpm_bios
part_tpm12() {
	info "TPM 1.2: ctrl commands and swtpm_bios"
	local d="$TMPD/st-tpm12" p c sock="$TMPD/ctrl-12.sock"
	mkdir -p "$d"
	pick_ports 2
	p=$PORT
	c=$((PORT + 1))
	local -a args=(socket --server "type=tcp,port=$p" --ctrl "type=tcp,port=$c"
		--tpmstate "dir=$d")
	start_swtpm tpm12 "$SWTPM_EXE" "${args[@]}"
	IO=(--tcp "127.0.0.1:$c")

	check_static 12
	io_tpm_error CANCEL_TPM_CMD 0xa -C
	# before INIT every TPM command fails (TPM_FAIL) -> 128
	expect_rc 128 swtpm_bios --tcp "127.0.0.1:$p"
	assert_contains "TPM_Startup(0x01) returned error code 0x00000009" "$ERR" "swtpm_bios before INIT"

	io_ok -i
	assert_file "$d/tpm-00.permall"
	check_static 12
	io_tpm_error CANCEL_TPM_CMD 0x9 -C
	io_ok -e
	assert_eq 'tpmEstablished is 0' "$OUT" "TPM 1.2 -e after INIT"

	ok swtpm_bios --tcp "127.0.0.1:$p"
	expect_rc 128 swtpm_bios --tcp "127.0.0.1:$p"
	assert_contains "TPM_Startup(0x01) returned error code 0x00000026" "$ERR" "second swtpm_bios (TPM 1.2)"
	expect_rc 128 swtpm_bios --tcp "127.0.0.1:$p" -o
	ok swtpm_bios --tcp "127.0.0.1:$p" -n -cs
	ok swtpm_bios --tcp "127.0.0.1:$p" -n -u

	info "TPM 1.2 hash sequence after TPM_Startup"
	io_ok -h data
	io_ok -e
	assert_eq 'tpmEstablished is 1' "$OUT" "TPM 1.2 -e after -h data"
	io_ok -r 3
	io_ok -e
	assert_eq 'tpmEstablished is 0' "$OUT" "TPM 1.2 -e after -r 3"

	info "TPM 1.2 state file"
	assert_file "$d/tpm-00.permall"
	assert_file "$d/.lock"
	assert_mode 640 "$d/tpm-00.permall"
	assert_eq 0201000a "$(header_hex "$d/tpm-00.permall" 4)" "tpm-00.permall container header"
	assert_no_file "$d/tpm2-00.permall"

	io_ok -s
	expect_swtpm_exit tpm12 0

	info "TPM 1.2 restart on the same directory"
	start_swtpm tpm12 "$SWTPM_EXE" "${args[@]}"
	io_ok -i
	ok swtpm_bios --tcp "127.0.0.1:$p" -o
	expect_rc 128 swtpm_bios --tcp "127.0.0.1:$p" -o
	assert_contains "TPM_Startup(0x01) returned error code 0x00000026" "$ERR" "second swtpm_bios -o (TPM 1.2)"
	io_ok -v
	assert_file "$d/tpm-00.volatilestate"
	stop_swtpm_ok tpm12

	info "TPM 1.2 with ctrl over --unix"
	start_swtpm tpm12u "$SWTPM_EXE" socket --server "type=tcp,port=$p" \
		--ctrl "type=unixio,path=$sock" --tpmstate "dir=$d"
	IO=(--unix "$sock")
	check_static 12
	# INIT loads the volatile state stored by -v above (the TPM resumes in
	# the started state: TPM_Startup -> 0x26), then deletes the file
	io_ok -i
	assert_no_file "$d/tpm-00.volatilestate"
	expect_rc 128 swtpm_bios --tcp "127.0.0.1:$p" -o
	assert_contains "TPM_Startup(0x01) returned error code 0x00000026" "$ERR" "swtpm_bios -o after INIT with stored volatile state"
	# a second INIT finds no volatile state: fresh TPM_Startup works
	io_ok -i
	ok swtpm_bios --tcp "127.0.0.1:$p" -o -cs
	io_ok -h data
	io_ok -e
	assert_eq 'tpmEstablished is 1' "$OUT" "TPM 1.2 -e after -h data (unix)"

	info "TPM 1.2: HASH_START before TPM_Startup (libtpms: 0x26, then failed self-test)"
	io_ok -i
	io_tpm_error HASH_START 0x26 -h data
	expect_rc 128 swtpm_bios --tcp "127.0.0.1:$p" -o
	assert_contains "TPM_Startup(0x01) returned error code 0x0000001c" "$ERR" "swtpm_bios after a refused HASH_START"
	io_ok -s
	expect_swtpm_exit tpm12u 0
	[ ! -e "$sock" ] || fail "ctrl socket $sock still exists after swtpm_ioctl -s"
}

# ------------------------------------------------------------------ 4. TPM 2 + swtpm_bios
part_bios2() {
	info "TPM 2: swtpm_bios --tpm2"
	local d="$TMPD/st-bios2" p c
	mkdir -p "$d"
	pick_ports 2
	p=$PORT
	c=$((PORT + 1))
	start_swtpm bios2 "$SWTPM_EXE" socket --tpm2 --server "type=tcp,port=$p" \
		--ctrl "type=tcp,port=$c" --tpmstate "dir=$d"
	IO=(--tcp "127.0.0.1:$c")

	expect_rc 128 swtpm_bios --tpm2 --tcp "127.0.0.1:$p"
	assert_contains "TPM2_Startup returned error code 0x00000101" "$OUT" "swtpm_bios --tpm2 before INIT"
	io_ok -i
	ok swtpm_bios --tpm2 --tcp "127.0.0.1:$p"
	expect_rc 128 swtpm_bios --tpm2 --tcp "127.0.0.1:$p"
	assert_contains "TPM2_Startup returned error code 0x00000100" "$OUT" "second swtpm_bios --tpm2"
	ok swtpm_bios --tpm2 --tcp "127.0.0.1:$p" -n -cs
	ok swtpm_bios --tpm2 --tcp "127.0.0.1:$p" -n -u
	expect_rc 128 swtpm_bios --tpm2 --tcp "127.0.0.1:$p" -n -u
	assert_contains "TPM2_HierarchyChangeAuth returned error code 0x000009a2" "$OUT" "second swtpm_bios --tpm2 -u"

	info "TPM 2: INIT again, then startup + -cs + -u in one run"
	io_ok -i
	ok swtpm_bios --tpm2 --tcp "127.0.0.1:$p" -cs -u
	ok swtpm_bios --tpm2 --tcp "127.0.0.1:$p" -n
	io_ok -s
	expect_swtpm_exit bios2 0
}

part_unix
part_tcp
part_tpm12
part_bios2
pass
