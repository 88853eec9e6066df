#!/usr/bin/env bash
# tpm2-tools (tpm2_*, TCTI "swtpm": data on port P, ctrl on P+1) against
# `swtpm socket --tpm2` over TCP: startup, random, PCR extend/read with the
# value checked against a locally computed extend, transient-object flush,
# NV define/write/read, and NV (and a state-saved PCR) surviving a restart.
#
# Two variants:
#   flags    : --flags not-need-init; stop with TPM2_Shutdown(SU_STATE) +
#              SIGTERM; restart resumes with TPM2_Startup(SU_STATE)
#   ctrlinit : CMD_INIT via `swtpm_ioctl -i`, tpm2_startup -c; stop with
#              TPM2_Shutdown(SU_CLEAR) + `swtpm_ioctl -s` (CMD_SHUTDOWN)
#
# Reference facts used (swtpm 0.7.1 / libtpms 0.9):
#   * before CMD_INIT every TPM command fails with TPM_RC_FAILURE (0x101);
#   * PCRs 0-15 are saved by TPM2_Shutdown(SU_STATE), PCR 16 (debug) is not:
#     after a resume PCR 8 keeps its value and PCR 16 is zero again;
#   * tpm2_startup exits 0 even when the TPM answers TPM_RC_INITIALIZE.
TEST_NAME=tpm2_tools
. "$(dirname "$0")/lib.sh"

require_cmd swtpm_ioctl tpm2_startup tpm2_shutdown tpm2_getrandom \
	tpm2_pcrextend tpm2_pcrread tpm2_nvdefine tpm2_nvwrite tpm2_nvread \
	tpm2_nvundefine tpm2_createprimary tpm2_flushcontext tpm2_getcap

NV_INDEX=0x1500016
# Two known digests: SHA-256("abc") and SHA-256("vtpmd").
D1=$(printf abc | sha256_hex)
D2=$(printf vtpmd | sha256_hex)
assert_eq ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad "$D1" "sha256(abc) self-check"

# pcr_value SEL (e.g. sha256:16) -> PCRVAL (hex, lower case)
pcr_value() {
	local f="$TMPD/pcr.bin"
	rm -f "$f"
	ok tpm2_pcrread "$1" -o "$f"
	[ -f "$f" ] || fail "tpm2_pcrread $1 -o wrote no file"
	PCRVAL=$(hex_of_file "$f")
}

scenario() {
	local v=$1 d="$TMPD/state-$1" p c
	mkdir -p "$d"
	pick_ports 2
	p=$PORT
	c=$((PORT + 1))
	export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$p"
	local -a args=(socket --tpm2 --server "type=tcp,port=$p"
		--ctrl "type=tcp,port=$c" --tpmstate "dir=$d")

	info "[$v] start and initialise"
	if [ "$v" = flags ]; then
		start_swtpm "$v" "$SWTPM_EXE" "${args[@]}" --flags not-need-init
	else
		start_swtpm "$v" "$SWTPM_EXE" "${args[@]}"
		# not initialised yet: TPM commands fail (TPM_RC_FAILURE)
		expect_fail tpm2_getrandom --hex 8
		assert_contains 0x101 "$ERR" "[$v] tpm2_getrandom before CMD_INIT"
		ok swtpm_ioctl --tcp "127.0.0.1:$c" -i
	fi
	ok tpm2_startup -c

	info "[$v] tpm2_getrandom"
	ok tpm2_getrandom --hex 32
	assert_match '^[0-9a-f]{64}$' "$OUT" "[$v] tpm2_getrandom --hex 32"
	local r1=$OUT
	rm -f "$TMPD/rnd"
	ok tpm2_getrandom -o "$TMPD/rnd" 32
	assert_eq 32 "$(stat -c %s "$TMPD/rnd")" "[$v] size of tpm2_getrandom -o file"
	[ "$(hex_of_file "$TMPD/rnd")" != "$r1" ] || fail "[$v] two tpm2_getrandom calls returned the same 32 bytes"

	info "[$v] PCR extend/read"
	pcr_value sha256:16
	assert_eq "$ZERO32" "$PCRVAL" "[$v] PCR 16 after TPM2_Startup(CLEAR)"
	local e1 e2
	e1=$(pcr_extend_hex "$ZERO32" "$D1")
	e2=$(pcr_extend_hex "$e1" "$D2")
	ok tpm2_pcrextend "16:sha256=$D1"
	pcr_value sha256:16
	assert_eq "$e1" "$PCRVAL" "[$v] PCR 16 after one extend"
	ok tpm2_pcrextend "16:sha256=$D2"
	pcr_value sha256:16
	assert_eq "$e2" "$PCRVAL" "[$v] PCR 16 after two extends"
	ok tpm2_pcrextend "8:sha256=$D1"
	pcr_value sha256:8
	assert_eq "$e1" "$PCRVAL" "[$v] PCR 8 after one extend"
	# text output names the same value
	ok tpm2_pcrread sha256:16
	assert_contains "${e2^^}" "$OUT" "[$v] tpm2_pcrread text output"

	info "[$v] transient object + flush"
	ok tpm2_createprimary -C o -G ecc -c "$TMPD/primary.ctx"
	ok tpm2_getcap handles-transient
	assert_contains 0x80000000 "$OUT" "[$v] transient handle after createprimary"
	ok tpm2_flushcontext -t
	ok tpm2_getcap handles-transient
	assert_eq "" "$OUT" "[$v] transient handles after flushcontext -t"

	info "[$v] NV define/write/read"
	head -c 32 /dev/urandom >"$TMPD/nv-$v.in"
	ok tpm2_nvdefine "$NV_INDEX" -C o -s 32 -a "ownerread|ownerwrite|authread|authwrite"
	ok tpm2_nvwrite "$NV_INDEX" -C o -i "$TMPD/nv-$v.in"
	rm -f "$TMPD/nv.out"
	ok tpm2_nvread "$NV_INDEX" -C o -s 32 -o "$TMPD/nv.out"
	assert_eq "$(hex_of_file "$TMPD/nv-$v.in")" "$(hex_of_file "$TMPD/nv.out")" "[$v] NV content read back"
	rm -f "$TMPD/nv.out"
	ok tpm2_nvread "$NV_INDEX" -C o -s 8 --offset 4 -o "$TMPD/nv.out"
	assert_eq "$(hex_of_file "$TMPD/nv-$v.in" | cut -c 9-24)" "$(hex_of_file "$TMPD/nv.out")" "[$v] NV partial read (8 bytes at offset 4)"

	info "[$v] stop"
	if [ "$v" = flags ]; then
		ok tpm2_shutdown # SU_STATE
		stop_swtpm_ok "$v"
	else
		ok tpm2_shutdown -c
		ok swtpm_ioctl --tcp "127.0.0.1:$c" -s
		expect_swtpm_exit "$v" 0
	fi
	assert_file "$d/tpm2-00.permall"
	assert_file "$d/.lock"
	assert_mode 640 "$d/tpm2-00.permall"
	assert_eq 0201000a "$(head -c 4 "$d/tpm2-00.permall" | od -An -tx1 | tr -d ' \n')" "[$v] permall container header"

	info "[$v] restart on the same state directory and ports"
	if [ "$v" = flags ]; then
		start_swtpm "$v" "$SWTPM_EXE" "${args[@]}" --flags not-need-init
		ok tpm2_startup # resume (SU_STATE)
		pcr_value sha256:8
		assert_eq "$e1" "$PCRVAL" "[$v] PCR 8 after Shutdown(STATE)/restart/Startup(STATE)"
		pcr_value sha256:16
		assert_eq "$ZERO32" "$PCRVAL" "[$v] PCR 16 (not state-saved) after resume"
	else
		start_swtpm "$v" "$SWTPM_EXE" "${args[@]}"
		ok swtpm_ioctl --tcp "127.0.0.1:$c" -i
		ok tpm2_startup -c
		pcr_value sha256:16
		assert_eq "$ZERO32" "$PCRVAL" "[$v] PCR 16 after restart + Startup(CLEAR)"
	fi
	rm -f "$TMPD/nv.out"
	ok tpm2_nvread "$NV_INDEX" -C o -s 32 -o "$TMPD/nv.out"
	assert_eq "$(hex_of_file "$TMPD/nv-$v.in")" "$(hex_of_file "$TMPD/nv.out")" "[$v] NV content after restart"
	ok tpm2_nvundefine "$NV_INDEX" -C o
	expect_fail tpm2_nvread "$NV_INDEX" -C o -s 32
	ok tpm2_getrandom --hex 16
	assert_match '^[0-9a-f]{32}$' "$OUT" "[$v] tpm2_getrandom after restart"

	if [ "$v" = flags ]; then
		ok swtpm_ioctl --tcp "127.0.0.1:$c" -s
		expect_swtpm_exit "$v" 0
	else
		stop_swtpm_ok "$v"
	fi
}

scenario flags
scenario ctrlinit
pass
