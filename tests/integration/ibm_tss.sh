#!/usr/bin/env bash
# IBM TSS utilities (tss2 package: tssstartup, tssgetrandom, tsspcrextend,
# tsspcrread) against `swtpm socket --tpm2 --server tcp,P --ctrl tcp,Q`,
# once with TPM_SERVER_TYPE=mssim (every command wrapped in the TCG
# TPM_SEND_COMMAND header, data-channel.md §4) and once with
# TPM_SERVER_TYPE=raw (plain TPM 2 commands).
#
# The TSS parses its ports as signed 16-bit numbers: ports stay < 32768.
# Power-on uses `swtpm_ioctl -i` on the ctrl port; `tsspowerup` speaks the
# MS-simulator platform protocol, which the ctrl channel does not: with it
# the reference fails the client (exit 1, "rc 000b0009") and must stay alive.
#
# Reference facts used (swtpm 0.7.1):
#   * before CMD_INIT TPM commands fail with TPM_RC_FAILURE (rc 00000101);
#   * a second TPM2_Startup fails with TPM_RC_INITIALIZE (rc 00000100);
#   * PCR 17 needs locality 4: extending it from locality 0 gives
#     TPM_RC_LOCALITY (rc 00000907);
#   * tsspcrextend -ic STR extends STR zero-padded to the digest size.
TEST_NAME=ibm_tss
. "$(dirname "$0")/lib.sh"

require_cmd swtpm_ioctl tssstartup tssgetrandom tsspcrextend tsspcrread

export TPM_INTERFACE_TYPE=socsim
export TPM_SERVER_NAME=127.0.0.1
export TPM_DATA_DIR="$TMPD/tssdata"
mkdir -p "$TPM_DATA_DIR"

# tss_pcr PCR -> PCRVAL (sha256 bank, hex)
tss_pcr() {
	local f="$TMPD/pcr.bin"
	rm -f "$f"
	ok tsspcrread -ha "$1" -halg sha256 -of "$f"
	[ -f "$f" ] || fail "tsspcrread -ha $1 -of wrote no file"
	PCRVAL=$(hex_of_file "$f")
}

scenario() {
	local t=$1 p q pcr
	local d="$TMPD/state-$t"
	mkdir -p "$d"
	pick_ports 1
	p=$PORT
	pick_ports 1
	q=$PORT
	# mssim: PCR 16, raw: PCR 23 (both resettable / extendable at locality 0)
	pcr=16
	[ "$t" = raw ] && pcr=23
	export TPM_SERVER_TYPE=$t TPM_COMMAND_PORT=$p TPM_PLATFORM_PORT=$q

	start_swtpm "$t" "$SWTPM_EXE" socket --tpm2 \
		--server "type=tcp,port=$p" --ctrl "type=tcp,port=$q" \
		--tpmstate "dir=$d"

	info "[$t] before CMD_INIT"
	expect_fail tssgetrandom -by 8
	assert_contains 00000101 "$OUT$ERR" "[$t] tssgetrandom before CMD_INIT"

	if [ "$t" = mssim ]; then
		info "[$t] tsspowerup (foreign platform protocol on the ctrl port)"
		expect_fail tsspowerup
		assert_swtpm_running "$t"
		ok swtpm_ioctl --tcp "127.0.0.1:$q" -c
		assert_match '^ptm capability is 0x' "$OUT" "[$t] ctrl channel after tsspowerup"
	fi

	info "[$t] power on with swtpm_ioctl -i, tssstartup"
	ok swtpm_ioctl --tcp "127.0.0.1:$q" -i
	ok tssstartup
	expect_fail tssstartup
	assert_contains 00000100 "$OUT$ERR" "[$t] second tssstartup (TPM_RC_INITIALIZE)"

	info "[$t] tssgetrandom -by 16"
	ok tssgetrandom -by 16
	assert_contains "randomBytes length 16" "$OUT" "[$t] tssgetrandom text output"
	rm -f "$TMPD/rnd"
	ok tssgetrandom -by 16 -of "$TMPD/rnd"
	assert_eq 16 "$(stat -c %s "$TMPD/rnd")" "[$t] size of tssgetrandom -of file"
	ok tssgetrandom -by 16 -ns
	assert_match '^[0-9a-f]{32}$' "$OUT" "[$t] tssgetrandom -ns output"

	info "[$t] PCR $pcr extend/read"
	local dig e1 e2
	dig=$(printf abc | sha256_hex)
	hex_to_bin "$dig" >"$TMPD/digest.bin"
	tss_pcr "$pcr"
	assert_eq "$ZERO32" "$PCRVAL" "[$t] PCR $pcr after startup"
	e1=$(pcr_extend_hex "$ZERO32" "$dig")
	ok tsspcrextend -ha "$pcr" -halg sha256 -if "$TMPD/digest.bin"
	tss_pcr "$pcr"
	assert_eq "$e1" "$PCRVAL" "[$t] PCR $pcr after extending sha256(abc)"
	# -ic: the string zero-padded to 32 bytes
	e2=$(pcr_extend_hex "$e1" "$(printf vtpmd | od -An -v -tx1 | tr -d ' \n')$(printf '%054d' 0)")
	ok tsspcrextend -ha "$pcr" -ic vtpmd
	tss_pcr "$pcr"
	assert_eq "$e2" "$PCRVAL" "[$t] PCR $pcr after extending 'vtpmd' (zero padded)"
	ok tsspcrread -ha "$pcr" -halg sha256 -ns
	assert_eq "$e2" "$OUT" "[$t] tsspcrread -ns output"

	info "[$t] locality-4 PCR 17 refused at locality 0"
	expect_fail tsspcrextend -ha 17 -halg sha256 -if "$TMPD/digest.bin"
	assert_contains 00000907 "$OUT$ERR" "[$t] extend of PCR 17"
	tss_pcr 17
	assert_eq "$(printf 'f%.0s' {1..64})" "$PCRVAL" "[$t] PCR 17 (DRTM, never started)"

	info "[$t] shutdown via ctrl"
	ok swtpm_ioctl --tcp "127.0.0.1:$q" -s
	expect_swtpm_exit "$t" 0
	assert_file "$d/tpm2-00.permall"
}

scenario mssim
scenario raw
pass
