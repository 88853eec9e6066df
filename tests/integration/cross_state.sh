#!/usr/bin/env bash
# State directories moved between Debian's reference swtpm ($REF_SWTPM,
# always /usr/bin/swtpm) and the emulator under test ($SWTPM_EXE), both ways.
#
# TPM 2, for (A,B) = (ref,ours) and (ours,ref), one state directory:
#   A: CMD_INIT, Startup(CLEAR), extend PCR 8 and PCR 16, NV define+write,
#      Shutdown(STATE), SIGTERM    -> dir holds exactly .lock, tpm2-00.permall
#   B: CMD_INIT, Startup(STATE): PCR 8 kept (state-saved), PCR 16 zero (PCR
#      16 is not state-saved), NV content kept; extend PCR 16, rewrite NV,
#      STORE_VOLATILE, SIGTERM     -> + tpm2-00.volatilestate
#   A: --flags not-need-init (resumes from the volatile state written by B,
#      no Startup): PCR 8, PCR 16 and NV as B left them; CMD_SHUTDOWN.
#
# TPM 1.2, same pairs:
#   A: CMD_INIT, swtpm_bios (creates tpm-00.permall), TPM_Extend(PCR 8),
#      TPM_SaveState (tpm-00.savestate), SIGTERM
#   B: CMD_INIT, swtpm_bios -s -o (TPM_Startup(ST_STATE) from A's savestate)
#      succeeds, PCR 8 kept, savestate consumed; CMD_SHUTDOWN; restart B,
#      CMD_INIT, swtpm_bios -o (ST_CLEAR) succeeds, PCR 8 zero.
TEST_NAME=cross_state
. "$(dirname "$0")/lib.sh"

[ -x "$REF_SWTPM" ] || skip "reference emulator $REF_SWTPM is not installed"
require_cmd swtpm_ioctl swtpm_bios tpm2_startup tpm2_shutdown tpm2_pcrextend \
	tpm2_pcrread tpm2_nvdefine tpm2_nvwrite tpm2_nvread sha1sum

OURS=$SWTPM_EXE
NV_INDEX=0x1500030
D1=$(printf abc | sha256_hex)
D2=$(printf vtpmd | sha256_hex)

exe_of() { if [ "$1" = ref ]; then echo "$REF_SWTPM"; else echo "$OURS"; fi; }

# Our permall journal (.vtpm-*.journal) sits beside swtpm's files; swtpm ignores it.
dir_listing() { (cd "$1" && ls -A | grep -v '^\.vtpm-.*\.journal$' | sort | tr '\n' ' ' | sed 's/ $//'); }

pcr_value() { # SEL -> PCRVAL
	local f="$TMPD/pcr.bin"
	rm -f "$f"
	ok tpm2_pcrread "$1" -o "$f"
	PCRVAL=$(hex_of_file "$f")
}

nv_value() {
	rm -f "$TMPD/nv.out"
	ok tpm2_nvread "$NV_INDEX" -C o -s 32 -o "$TMPD/nv.out"
	NVVAL=$(hex_of_file "$TMPD/nv.out")
}

tpm2_pair() {
	local a=$1 b=$2 tag="tpm2 $1->$2"
	local d="$TMPD/tpm2-$a-$b" p c
	mkdir -p "$d"
	pick_ports 2
	p=$PORT
	c=$((PORT + 1))
	export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$p"
	local -a args=(socket --tpm2 --server "type=tcp,port=$p"
		--ctrl "type=tcp,port=$c" --tpmstate "dir=$d")
	local e8 e16 nv1 nv2

	info "[$tag] A=$a: create state"
	start_swtpm "A-$a" "$(exe_of "$a")" "${args[@]}"
	ok swtpm_ioctl --tcp "127.0.0.1:$c" -i
	ok tpm2_startup -c
	ok tpm2_pcrextend "8:sha256=$D1" "16:sha256=$D1"
	e8=$(pcr_extend_hex "$ZERO32" "$D1")
	pcr_value sha256:8
	assert_eq "$e8" "$PCRVAL" "[$tag] PCR 8 on A"
	head -c 32 /dev/urandom >"$TMPD/nv1"
	nv1=$(hex_of_file "$TMPD/nv1")
	ok tpm2_nvdefine "$NV_INDEX" -C o -s 32 -a "ownerread|ownerwrite|authread|authwrite"
	ok tpm2_nvwrite "$NV_INDEX" -C o -i "$TMPD/nv1"
	ok tpm2_shutdown # SU_STATE
	stop_swtpm_ok "A-$a"
	assert_eq ".lock tpm2-00.permall" "$(dir_listing "$d")" "[$tag] state dir after A"
	assert_mode 640 "$d/tpm2-00.permall"
	assert_eq 0201000a "$(head -c 4 "$d/tpm2-00.permall" | od -An -tx1 | tr -d ' \n')" "[$tag] permall header written by $a"

	info "[$tag] B=$b: resume A's state"
	start_swtpm "B-$b" "$(exe_of "$b")" "${args[@]}"
	ok swtpm_ioctl --tcp "127.0.0.1:$c" -i
	ok tpm2_startup # SU_STATE
	pcr_value sha256:8
	assert_eq "$e8" "$PCRVAL" "[$tag] PCR 8 on B after Startup(STATE)"
	pcr_value sha256:16
	assert_eq "$ZERO32" "$PCRVAL" "[$tag] PCR 16 on B after Startup(STATE)"
	nv_value
	assert_eq "$nv1" "$NVVAL" "[$tag] NV content on B"
	ok tpm2_pcrextend "16:sha256=$D2"
	e16=$(pcr_extend_hex "$ZERO32" "$D2")
	head -c 32 /dev/urandom >"$TMPD/nv2"
	nv2=$(hex_of_file "$TMPD/nv2")
	ok tpm2_nvwrite "$NV_INDEX" -C o -i "$TMPD/nv2"
	ok swtpm_ioctl --tcp "127.0.0.1:$c" -v
	stop_swtpm_ok "B-$b"
	assert_eq ".lock tpm2-00.permall tpm2-00.volatilestate" "$(dir_listing "$d")" "[$tag] state dir after B"
	assert_mode 640 "$d/tpm2-00.volatilestate"
	assert_eq 0201000a "$(head -c 4 "$d/tpm2-00.volatilestate" | od -An -tx1 | tr -d ' \n')" "[$tag] volatilestate header written by $b"

	info "[$tag] A=$a again: resume B's volatile state (not-need-init)"
	start_swtpm "A2-$a" "$(exe_of "$a")" "${args[@]}" --flags not-need-init
	pcr_value sha256:8
	assert_eq "$e8" "$PCRVAL" "[$tag] PCR 8 on A from B's volatile state"
	pcr_value sha256:16
	assert_eq "$e16" "$PCRVAL" "[$tag] PCR 16 on A from B's volatile state"
	nv_value
	assert_eq "$nv2" "$NVVAL" "[$tag] NV content on A written by B"
	ok tpm2_shutdown -c
	ok swtpm_ioctl --tcp "127.0.0.1:$c" -s
	expect_swtpm_exit "A2-$a" 0
}

# TPM 1.2 raw commands
TPM12_SAVESTATE=00c10000000a00000098
tpm12_extend() { # PORT PCR DIGEST(20 bytes hex)
	tpm_raw "$1" "00c100000022000000140000$(printf '%04x' "$2")$3"
	assert_eq 00000000 "$RESP_RC" "TPM_Extend(PCR $2) return code"
}
tpm12_pcrread() { # PORT PCR -> PCRVAL
	tpm_raw "$1" "00c10000000e000000150000$(printf '%04x' "$2")"
	assert_eq 00000000 "$RESP_RC" "TPM_PCRRead(PCR $2) return code"
	PCRVAL=${RESP:20:40}
}

tpm12_pair() {
	local a=$1 b=$2 tag="tpm1.2 $1->$2"
	local d="$TMPD/tpm12-$a-$b" p c dig e8
	mkdir -p "$d"
	pick_ports 2
	p=$PORT
	c=$((PORT + 1))
	local -a args=(socket --server "type=tcp,port=$p" --ctrl "type=tcp,port=$c"
		--tpmstate "dir=$d")
	dig=$(printf abc | sha1_hex)
	e8=$({ hex_to_bin 0000000000000000000000000000000000000000; hex_to_bin "$dig"; } | sha1_hex)

	info "[$tag] A=$a: swtpm_bios, extend PCR 8, TPM_SaveState"
	start_swtpm "A-$a" "$(exe_of "$a")" "${args[@]}"
	ok swtpm_ioctl --tcp "127.0.0.1:$c" -i
	ok swtpm_bios --tcp "127.0.0.1:$p"
	assert_file "$d/tpm-00.permall"
	tpm12_extend "$p" 8 "$dig"
	tpm12_pcrread "$p" 8
	assert_eq "$e8" "$PCRVAL" "[$tag] PCR 8 on A"
	tpm_raw "$p" "$TPM12_SAVESTATE"
	assert_eq 00000000 "$RESP_RC" "[$tag] TPM_SaveState on A"
	stop_swtpm_ok "A-$a"
	assert_eq ".lock tpm-00.permall tpm-00.savestate" "$(dir_listing "$d")" "[$tag] state dir after A"
	assert_mode 640 "$d/tpm-00.permall"
	assert_eq 0201000a "$(head -c 4 "$d/tpm-00.permall" | od -An -tx1 | tr -d ' \n')" "[$tag] tpm-00.permall header written by $a"
	assert_eq 0201000a "$(head -c 4 "$d/tpm-00.savestate" | od -An -tx1 | tr -d ' \n')" "[$tag] tpm-00.savestate header written by $a"

	info "[$tag] B=$b: TPM_Startup(ST_STATE) from A's savestate"
	start_swtpm "B-$b" "$(exe_of "$b")" "${args[@]}"
	ok swtpm_ioctl --tcp "127.0.0.1:$c" -i
	ok swtpm_bios --tcp "127.0.0.1:$p" -s -o
	tpm12_pcrread "$p" 8
	assert_eq "$e8" "$PCRVAL" "[$tag] PCR 8 on B after ST_STATE"
	assert_eq ".lock tpm-00.permall" "$(dir_listing "$d")" "[$tag] state dir after Startup(ST_STATE) on B"
	expect_rc 128 swtpm_bios --tcp "127.0.0.1:$p" -o
	ok swtpm_ioctl --tcp "127.0.0.1:$c" -s
	expect_swtpm_exit "B-$b" 0

	info "[$tag] B=$b: restart, TPM_Startup(ST_CLEAR)"
	start_swtpm "B2-$b" "$(exe_of "$b")" "${args[@]}"
	ok swtpm_ioctl --tcp "127.0.0.1:$c" -i
	ok swtpm_bios --tcp "127.0.0.1:$p" -o
	tpm12_pcrread "$p" 8
	assert_eq 0000000000000000000000000000000000000000 "$PCRVAL" "[$tag] PCR 8 on B after ST_CLEAR"
	ok swtpm_ioctl --tcp "127.0.0.1:$c" -s
	expect_swtpm_exit "B2-$b" 0
}

tpm2_pair ref ours
tpm2_pair ours ref
tpm12_pair ref ours
tpm12_pair ours ref
pass
