#!/usr/bin/env bash
# Encrypted state (--key) and migration blobs (--migration-key) between
# Debian's reference swtpm ($REF_SWTPM, /usr/bin/swtpm 0.7.1) and the emulator
# under test ($SWTPM_EXE), TPM 2 only. With SWTPM_EXE unset (= the reference)
# every "ours" below is the reference itself, which validates the test.
#
# 1. Encrypted state directories, for (A,B) = (ref,ours) and (ours,ref) and
#    every way of giving the state key (hex file 128/256, binary file 16/32,
#    fd=, pwdfile= with kdf=sha512 and pbkdf2, pwdfd=, remove):
#      A: CMD_INIT, Startup(CLEAR), extend PCR 8+16, NV define+write,
#         Shutdown(STATE)              -> permall encrypted (flags, HMAC)
#      B: CMD_INIT, Startup(STATE): PCR 8 and NV kept; extend PCR 16, rewrite
#         NV, STORE_VOLATILE           -> permall + volatilestate encrypted
#      A: not-need-init (resume B's volatile state): PCR 8/16 + NV as B left them
#    The HMAC of every file written is checked here independently (Python
#    hashlib/hmac, key derived from the key file / passphrase per
#    state-files.md §5), so ours and ref agree on the key *and* it is the
#    documented one. Then the failures, ours vs ref: wrong key (bytes / size),
#    plain dir + key, encrypted dir without key, on directories made by ref
#    and by ours; both with --flags not-need-init (exit status) and with
#    CMD_INIT (swtpm_ioctl result); state files byte-identical afterwards.
# 2. swtpm_ioctl --save/--load with migration keys, ref->ours and ours->ref:
#    blob header flags (state-files.md §6.1, --save always DECRYPTED) equal to
#    the table and equal between ref and ours; migration HMAC checked;
#    destination (empty dir): --stop, --load permanent, --load volatile, -i ->
#    NV, PCR 8 and PCR 16 (volatile state) present, TPM resumed (GetRandom
#    works, Startup answers TPM_RC_INITIALIZE), its permall encrypted with its
#    own state key. Load failures (no / wrong / wrong-size migration key):
#    ours vs ref.
# 3. QEMU-style migration through raw ctrl-channel blobs (Python client,
#    ctrl-channel.md §5.10/§5.11): source GET_STATEBLOB x3 (with and without
#    PTM_STATE_FLAG_DECRYPTED) while running, CMD_SHUTDOWN; destination
#    CMD_STOP, SET_STATEBLOB (non-empty ones, state_flags from the GET reply),
#    CMD_INIT(DELETE_VOLATILE) -> resumed, NV/PCR present. ours->ours,
#    ref->ours, ours->ref. Then state-key-encrypted blobs into destinations
#    with no / a wrong / a 256-bit state key: SET_STATEBLOB results ours vs ref.
TEST_NAME=keys
. "$(dirname "$0")/lib.sh"

[ -x "$REF_SWTPM" ] || skip "reference emulator $REF_SWTPM is not installed"
require_cmd swtpm_ioctl tpm2_startup tpm2_shutdown tpm2_pcrextend tpm2_pcrread \
	tpm2_nvdefine tpm2_nvwrite tpm2_nvread python3 sha256sum

OURS=$SWTPM_EXE
NV_INDEX=0x1500030
D1=$(printf abc | sha256_hex)
D2=$(printf vtpmd | sha256_hex)
E8=$(pcr_extend_hex "$ZERO32" "$D1")
E16A=$(pcr_extend_hex "$ZERO32" "$D1")
E16B=$(pcr_extend_hex "$ZERO32" "$D2")
TPM2_GETRANDOM8=80010000000c0000017b0008
TPM2_STARTUP_CLEAR=80010000000c000001440000
T0=$SECONDS

exe_of() { if [ "$1" = ref ]; then echo "$REF_SWTPM"; else echo "$OURS"; fi; }

# ---------------------------------------------------------------- python helper

PY="$TMPD/ctrl_migrate.py"
cat >"$PY" <<'EOF'
"""Helper for keys.sh.

  hmac LIST
      for each line "LABEL<TAB>FILE<TAB>KEYDESC<TAB>DATATAG<TAB>HMACTAG<TAB>IVTAG"
      check HMAC-SHA256(key, data || iv) of the container (outer TLVs)
  source PORT DECRYPTED(0|1) OUTPREFIX
      GET_STATEBLOB permanent/volatile/savestate, then CMD_SHUTDOWN;
      writes OUTPREFIX.<type> and prints "type result state_flags length"
  dest PORT INPREFIX
      CMD_STOP, SET_STATEBLOB for each non-empty blob, CMD_INIT(1)
KEYDESC: hex:FILE | bin:FILE | sha512:FILE:LEN | pbkdf2:FILE:LEN
"""
import hashlib
import hmac
import socket
import struct
import sys


def key_of(desc):
    kind, rest = desc.split(":", 1)
    if kind == "hex":
        s = open(rest, "rb").read().split()[0].decode()
        if s.startswith("0x"):
            s = s[2:]
        return bytes.fromhex(s)
    if kind == "bin":
        return open(rest, "rb").read()
    path, n = rest.rsplit(":", 1)
    pw = open(path, "rb").read()
    if kind == "sha512":
        return hashlib.sha512(pw).digest()[: int(n)]
    if kind == "pbkdf2":
        return hashlib.pbkdf2_hmac("sha512", pw, b"swtpm", 1000, int(n))
    raise SystemExit("bad key description " + desc)


def tlvs(body):
    out, i = {}, 0
    while i + 6 <= len(body):
        tag, ln = struct.unpack(">HI", body[i : i + 6])
        if i + 6 + ln > len(body):
            break
        out.setdefault(tag, body[i + 6 : i + 6 + ln])
        i += 6 + ln
    return out


def cmd_hmac(path, desc, dtag, htag, ivtag):
    blob = open(path, "rb").read()
    ver, minv, hsz, flags, tot = struct.unpack(">BBHHI", blob[:10])
    if hsz != 10 or tot != len(blob):
        raise SystemExit("bad header in %s" % path)
    t = tlvs(blob[10:])
    key = key_of(desc)
    for need in (dtag, htag, ivtag):
        if need not in t:
            raise SystemExit("%s: TLV %d missing (have %s)" % (path, need, sorted(t)))
    if len(t[ivtag]) != len(key):
        raise SystemExit("%s: IV length %d, key length %d" % (path, len(t[ivtag]), len(key)))
    mac = hmac.new(key, t[dtag] + t[ivtag], hashlib.sha256).digest()
    if mac != t[htag][:32]:
        raise SystemExit("%s: HMAC does not verify with the expected key" % path)
    if len(t[dtag]) % 16:
        raise SystemExit("%s: ciphertext length %d" % (path, len(t[dtag])))


def cmd_hmacs(listfile):
    bad = 0
    for line in open(listfile):
        label, path, desc, dt, ht, it = line.rstrip("\n").split("\t")
        try:
            cmd_hmac(path, desc, int(dt), int(ht), int(it))
        except SystemExit as e:
            print("%s: %s" % (label, e))
            bad += 1
    sys.exit(1 if bad else 0)


def conn(port):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
    s.settimeout(10)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        c = s.recv(n - len(buf))
        if not c:
            raise SystemExit("connection closed after %d of %d bytes" % (len(buf), n))
        buf += c
    return buf


def result(s, what):
    (r,) = struct.unpack(">I", recv_exact(s, 4))
    print("%s 0x%x" % (what, r))
    return r


def cmd_source(port, decrypted, prefix):
    s = conn(port)
    for typ in (1, 2, 3):
        s.sendall(struct.pack(">IIII", 0x0C, int(decrypted), typ, 0))
        r, fl, tot, ln = struct.unpack(">IIII", recv_exact(s, 16))
        data = recv_exact(s, ln) if r == 0 else b""
        if r == 0 and tot != ln:
            raise SystemExit("GET_STATEBLOB %d: totlength %d != length %d" % (typ, tot, ln))
        open("%s.%d" % (prefix, typ), "wb").write(data)
        open("%s.%d.flags" % (prefix, typ), "w").write("%d" % fl)
        print("get %d 0x%x %d %d" % (typ, r, fl, len(data)))
    s.sendall(struct.pack(">I", 0x03))
    if result(s, "shutdown"):
        sys.exit(1)


def cmd_dest(port, prefix):
    s = conn(port)
    s.sendall(struct.pack(">I", 0x0E))
    bad = result(s, "stop") != 0
    for typ in (1, 2, 3):
        data = open("%s.%d" % (prefix, typ), "rb").read()
        if not data:
            continue
        fl = int(open("%s.%d.flags" % (prefix, typ)).read())
        s.sendall(struct.pack(">IIII", 0x0D, fl, typ, len(data)) + data)
        bad |= result(s, "set %d" % typ) != 0
    s.sendall(struct.pack(">II", 0x02, 1))
    bad |= result(s, "init") != 0
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    a = sys.argv[1:]
    {"hmac": lambda: cmd_hmacs(a[1]),
     "source": lambda: cmd_source(a[1], a[2], a[3]),
     "dest": lambda: cmd_dest(a[1], a[2])}[a[0]]()
EOF

# ---------------------------------------------------------------- key material

K="$TMPD/k"
mkdir -p "$K"
printf '000102030405060708090a0b0c0d0e0f\n' >"$K/k128.hex"
printf '0x%s\n' "$(printf 'vtpmd state key 256' | sha256_hex)" >"$K/k256.hex"
printf '%s\n' "$(printf 'vtpmd migration 128' | sha256_hex | cut -c1-32 | tr a-f A-F)" >"$K/m128.hex"
printf '%s\n' "$(printf 'vtpmd migration 256' | sha256_hex)" >"$K/m256.hex"
printf '0f0e0d0c0b0a09080706050403020100\n' >"$K/bad128.hex"
head -c 16 /dev/urandom >"$K/k16.bin"
head -c 32 /dev/urandom >"$K/k32.bin"
head -c 16 /dev/urandom >"$K/m16.bin"
printf 'correct horse battery staple\n' >"$K/pw.txt"  # the newline is part of it
printf 'an other passphrase' >"$K/pw2.txt"
printf 'migration passphrase\n' >"$K/mpw.txt"

# key_spec OPTION CFG : set KEYARGS (e.g. --key file=...) and KEYDESC (for the
# Python HMAC check) and KEYFLAG (state-file header flags it produces); opens
# fd 7 (--key) / 8 (--migration-key) for the fd variants, closed by
# close_key_fds. CFG "none" gives no option.
key_spec() {
	local opt=$1 cfg=$2 fd=7 rm
	[ "$opt" = --migration-key ] && fd=8
	KEYARGS=()
	case $cfg in
	none) KEYDESC=; KEYFLAG=0000; return 0 ;;
	hex128) KEYARGS=("$opt" "file=$K/k128.hex"); KEYDESC=hex:$K/k128.hex; KEYFLAG=0001 ;;
	hex128m) KEYARGS=("$opt" "file=$K/m128.hex,mode=aes-128-cbc"); KEYDESC=hex:$K/m128.hex; KEYFLAG=0001 ;;
	hex256) KEYARGS=("$opt" "file=$K/k256.hex,mode=aes-256-cbc"); KEYDESC=hex:$K/k256.hex; KEYFLAG=0009 ;;
	hex256m) KEYARGS=("$opt" "file=$K/m256.hex,mode=aes-256-cbc,format=hex"); KEYDESC=hex:$K/m256.hex; KEYFLAG=0009 ;;
	bad128) KEYARGS=("$opt" "file=$K/bad128.hex"); KEYDESC=hex:$K/bad128.hex; KEYFLAG=0001 ;;
	bin16) KEYARGS=("$opt" "file=$K/k16.bin,format=binary"); KEYDESC=bin:$K/k16.bin; KEYFLAG=0001 ;;
	bin16m) KEYARGS=("$opt" "file=$K/m16.bin,format=binary,mode=aes-cbc"); KEYDESC=bin:$K/m16.bin; KEYFLAG=0001 ;;
	bin32) KEYARGS=("$opt" "file=$K/k32.bin,format=binary,mode=aes-256-cbc"); KEYDESC=bin:$K/k32.bin; KEYFLAG=0009 ;;
	fd256)
		eval "exec $fd<\"\$K/k256.hex\""
		KEYARGS=("$opt" "fd=$fd,mode=aes-256-cbc"); KEYDESC=hex:$K/k256.hex; KEYFLAG=0009 ;;
	pwsha512) KEYARGS=("$opt" "pwdfile=$K/pw.txt,kdf=sha512"); KEYDESC=sha512:$K/pw.txt:16; KEYFLAG=0001 ;;
	pwpbkdf2) KEYARGS=("$opt" "pwdfile=$K/pw.txt,mode=aes-256-cbc"); KEYDESC=pbkdf2:$K/pw.txt:32; KEYFLAG=0009 ;;
	pwpbkdf2m) KEYARGS=("$opt" "pwdfile=$K/mpw.txt,mode=aes-256-cbc,kdf=pbkdf2"); KEYDESC=pbkdf2:$K/mpw.txt:32; KEYFLAG=0009 ;;
	pwfd)
		eval "exec $fd<\"\$K/pw2.txt\""
		KEYARGS=("$opt" "pwdfd=$fd"); KEYDESC=pbkdf2:$K/pw2.txt:16; KEYFLAG=0001 ;;
	remove)
		rm="$TMPD/rm-key.hex"
		cp "$K/k128.hex" "$rm"
		KEYARGS=("$opt" "file=$rm,remove=true"); KEYDESC=hex:$K/k128.hex; KEYFLAG=0001 ;;
	pwremove)
		rm="$TMPD/rm-pw.txt"
		cp "$K/pw.txt" "$rm"
		KEYARGS=("$opt" "pwdfile=$rm,remove,kdf=sha512,mode=aes-256-cbc"); KEYDESC=sha512:$K/pw.txt:32; KEYFLAG=0009 ;;
	*) fail "internal: unknown key config $cfg" ;;
	esac
}
close_key_fds() { exec 7<&- 8<&-; }

# the key file of a remove config must be gone once the TPM is up
check_removed() { # CFG TAG
	case $1 in
	remove) assert_no_file "$TMPD/rm-key.hex" ;;
	pwremove) assert_no_file "$TMPD/rm-pw.txt" ;;
	esac
}

# ---------------------------------------------------------------- small helpers

hdr_flags() { head -c 6 "$1" | tail -c 2 | od -An -tx1 | tr -d ' \n'; }

# verify_hmac LABEL FILE KEYDESC DATATAG HMACTAG IVTAG : queue an HMAC check
# of a copy of FILE (Python start-up is slow here, so they run in batches).
HMAC_N=0
HMAC_LIST="$TMPD/hmac.list"
: >"$HMAC_LIST"
mkdir -p "$TMPD/hmac"
verify_hmac() {
	HMAC_N=$((HMAC_N + 1))
	cp "$2" "$TMPD/hmac/$HMAC_N"
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$TMPD/hmac/$HMAC_N" "$3" "$4" "$5" "$6" >>"$HMAC_LIST"
}
flush_hmac() { # WHAT
	local n
	n=$(wc -l <"$HMAC_LIST")
	run python3 -S "$PY" hmac "$HMAC_LIST"
	[ "$RC" = 0 ] || fail "HMAC check ($1) failed: $OUT $ERR"
	info "$1: $n HMACs verified with independently derived keys"
	: >"$HMAC_LIST"
	rm -f "$TMPD/hmac/"*
}

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

nv_make() { # NAME TAG -> file $TMPD/NAME, hex in NVHEX (known bytes per tag)
	printf '%s' "$2" | sha256_hex >"$TMPD/$1.hex"
	NVHEX=$(cat "$TMPD/$1.hex")
	hex_to_bin "$NVHEX" >"$TMPD/$1"
}

check_tpm() { # TAG E8 E16 NVHEX : PCR 8, PCR 16 and NV content
	pcr_value sha256:8
	assert_eq "$2" "$PCRVAL" "[$1] PCR 8"
	pcr_value sha256:16
	assert_eq "$3" "$PCRVAL" "[$1] PCR 16"
	nv_value
	assert_eq "$4" "$NVVAL" "[$1] NV content"
}

fill_tpm() { # TAG NVNAME : Startup(CLEAR), PCR 8+16 extended with D1, NV written
	ok tpm2_startup -c
	ok tpm2_pcrextend "8:sha256=$D1" "16:sha256=$D1"
	nv_make "$2" "$1"
	ok tpm2_nvdefine "$NV_INDEX" -C o -s 32 -a "ownerread|ownerwrite|authread|authwrite"
	ok tpm2_nvwrite "$NV_INDEX" -C o -i "$TMPD/$2"
}

setup_ports() { # -> P C, TCTI, BASE(array) for DIR
	pick_ports 2
	P=$PORT
	C=$((PORT + 1))
	export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$P"
	BASE=(socket --tpm2 --server "type=tcp,port=$P" --ctrl "type=tcp,port=$C" --tpmstate "dir=$1")
}

# DIR WITHJOURNAL(0|1): every file but .lock with its sha256; our permall
# journal (.vtpm-*.journal) only with WITHJOURNAL=1 (ours creates it at its
# first storage init in a directory that has none, even if the start fails)
state_digest() {
	local f n out=
	for f in "$1"/* "$1"/.[!.]*; do
		[ -f "$f" ] || continue
		n=${f##*/}
		[ "$n" = .lock ] && continue
		[ "$2" = 1 ] || [[ $n != .vtpm-*.journal ]] || continue
		out+="$n=$(sha256_hex <"$f") "
	done
	printf '%s' "$out"
}

# ================================================================ 1. state files

s1_pair() { # A B CFG
	local a=$1 b=$2 cfg=$3 tag="key $3 $1->$2"
	local d="$TMPD/s1-$cfg-$a-$b" n nv1 nv2
	mkdir -p "$d"
	setup_ports "$d"
	n="$cfg-$a-$b"

	key_spec --key "$cfg"
	start_swtpm "A-$n" "$(exe_of "$a")" "${BASE[@]}" "${KEYARGS[@]}"
	close_key_fds
	ok swtpm_ioctl --tcp "127.0.0.1:$C" -i
	check_removed "$cfg"
	fill_tpm "$tag" nv1
	nv1=$NVHEX
	ok tpm2_shutdown # SU_STATE
	stop_swtpm_ok "A-$n"
	assert_eq "$KEYFLAG" "$(hdr_flags "$d/tpm2-00.permall")" "[$tag] permall header flags written by $a"
	verify_hmac "[$tag] permall by $a" "$d/tpm2-00.permall" "$KEYDESC" 2 3 6

	key_spec --key "$cfg"
	start_swtpm "B-$n" "$(exe_of "$b")" "${BASE[@]}" "${KEYARGS[@]}"
	close_key_fds
	ok swtpm_ioctl --tcp "127.0.0.1:$C" -i
	check_removed "$cfg"
	ok tpm2_startup # SU_STATE
	check_tpm "$tag, B after Startup(STATE)" "$E8" "$ZERO32" "$nv1"
	ok tpm2_pcrextend "16:sha256=$D2"
	nv_make nv2 "$tag second"
	nv2=$NVHEX
	ok tpm2_nvwrite "$NV_INDEX" -C o -i "$TMPD/nv2"
	ok swtpm_ioctl --tcp "127.0.0.1:$C" -v
	stop_swtpm_ok "B-$n"
	assert_eq "$KEYFLAG" "$(hdr_flags "$d/tpm2-00.permall")" "[$tag] permall header flags written by $b"
	assert_eq "$KEYFLAG" "$(hdr_flags "$d/tpm2-00.volatilestate")" "[$tag] volatilestate header flags written by $b"
	verify_hmac "[$tag] permall by $b" "$d/tpm2-00.permall" "$KEYDESC" 2 3 6
	verify_hmac "[$tag] volatilestate by $b" "$d/tpm2-00.volatilestate" "$KEYDESC" 2 3 6

	key_spec --key "$cfg"
	start_swtpm "A2-$n" "$(exe_of "$a")" "${BASE[@]}" "${KEYARGS[@]}" --flags not-need-init
	close_key_fds
	check_tpm "$tag, A resuming B's volatile state" "$E8" "$E16B" "$nv2"
	check_removed "$cfg"
	ok tpm2_shutdown -c
	ok swtpm_ioctl --tcp "127.0.0.1:$C" -s
	expect_swtpm_exit "A2-$n" 0
}

# A state dir made by IMPL (clean stop): encrypted with KEYCFG (or plain for
# none), permall + volatilestate. -> $TMPD/neg-src-IMPL-KEYCFG
make_neg_src() { # IMPL KEYCFG
	local d="$TMPD/neg-src-$1-$2"
	mkdir -p "$d"
	setup_ports "$d"
	key_spec --key "$2"
	start_swtpm "negsrc-$1-$2" "$(exe_of "$1")" "${BASE[@]}" "${KEYARGS[@]}"
	close_key_fds
	ok swtpm_ioctl --tcp "127.0.0.1:$C" -i
	fill_tpm "neg $1 $2" nvneg
	ok swtpm_ioctl --tcp "127.0.0.1:$C" -v
	stop_swtpm_ok "negsrc-$1-$2"
}

# neg_case NAME SRCIMPL SRCKEYCFG KEYCFG : start ref and ours on copies of the
# source dir with KEYCFG; both must fail the same way and leave every file
# (an existing journal of ours included) byte-identical.
neg_case() {
	local name="$1 (dir by $2)" src="$TMPD/neg-src-$2-$3" cfg=$4 impl d before after wj
	local -A res=()
	for impl in ref ours; do
		d="$TMPD/neg-$1-$2-$impl"
		rm -rf "$d"
		cp -a "$src" "$d"
		wj=0
		! compgen -G "$d/.vtpm-*.journal" >/dev/null || wj=1
		before=$(state_digest "$d" $wj)
		setup_ports "$d"

		# (a) --flags not-need-init: exit status
		key_spec --key "$cfg"
		CLIENT_TIMEOUT=5 run "$(exe_of "$impl")" "${BASE[@]}" "${KEYARGS[@]}" --flags not-need-init
		close_key_fds
		res[$impl]="not-need-init: exit $RC"

		# (b) CMD_INIT: the result swtpm_ioctl reports
		key_spec --key "$cfg"
		start_swtpm "neg-$1-$2-$impl" "$(exe_of "$impl")" "${BASE[@]}" "${KEYARGS[@]}"
		close_key_fds
		run swtpm_ioctl --tcp "127.0.0.1:$C" -i
		res[$impl]+="; CMD_INIT: exit $RC, '$(grep -o 'TPM result from PTM_INIT: 0x[0-9a-f]*' <<<"$ERR" || true)'"
		ok swtpm_ioctl --tcp "127.0.0.1:$C" -s
		expect_swtpm_exit "neg-$1-$2-$impl" 0
		after=$(state_digest "$d" $wj)
		assert_eq "$before" "$after" "[neg $name] state files after $impl's failed starts"
	done
	info "[neg $name] ref: ${res[ref]}"
	assert_eq "not-need-init: exit 1; CMD_INIT: exit 1, 'TPM result from PTM_INIT: 0x101'" "${res[ref]}" \
		"[neg $name] reference behaviour (test assumption)"
	assert_eq "${res[ref]}" "${res[ours]}" "[neg $name] ours vs ref"
}

t=$SECONDS
for cfg in hex128 hex256 bin16 bin32 fd256 pwsha512 pwpbkdf2 pwfd remove pwremove; do
	info "== 1. state key $cfg"
	s1_pair ref ours "$cfg"
	s1_pair ours ref "$cfg"
done
flush_hmac "1. state files"
info "1. state key pairs: $((SECONDS - t)) s"

t=$SECONDS
for impl in ref ours; do
	make_neg_src "$impl" hex128
	make_neg_src "$impl" none
	neg_case wrong-key "$impl" hex128 bad128
	neg_case wrong-key-size "$impl" hex128 hex256
	neg_case wrong-passphrase "$impl" hex128 pwsha512
	neg_case plain-dir-with-key "$impl" none hex128
	neg_case encrypted-dir-without-key "$impl" hex128 none
done
info "1. failures: $((SECONDS - t)) s"

# ================================================================ 2. swtpm_ioctl --save/--load

declare -A BLOBFLAGS=()

# s2_pair SRC DST COMBO SRCKEY SRCMIG DSTKEY EXPFLAGS
s2_pair() {
	local a=$1 b=$2 combo=$3 skey=$4 mig=$5 dkey=$6 exp=$7
	local tag="migration $combo $a->$b" d="$TMPD/s2-$combo-$a-$b" e="$TMPD/s2-$combo-$a-$b-dst"
	local f="$TMPD/s2-$combo-$a-$b-blob" ty migdesc dflag nv1
	local -a migargs
	mkdir -p "$d" "$e"

	setup_ports "$d"
	key_spec --migration-key "$mig"
	migargs=("${KEYARGS[@]}")
	migdesc=$KEYDESC
	key_spec --key "$skey"
	start_swtpm "s2src-$combo-$a-$b" "$(exe_of "$a")" "${BASE[@]}" "${KEYARGS[@]}" "${migargs[@]}"
	close_key_fds
	ok swtpm_ioctl --tcp "127.0.0.1:$C" -i
	fill_tpm "$tag" nvm
	nv1=$NVHEX
	for ty in permanent volatile savestate; do
		ok swtpm_ioctl --tcp "127.0.0.1:$C" --save "$ty" "$f.$ty"
	done
	ok swtpm_ioctl --tcp "127.0.0.1:$C" -s
	expect_swtpm_exit "s2src-$combo-$a-$b" 0
	assert_eq 0 "$(stat -c %s "$f.savestate")" "[$tag] size of the saved TPM 2 savestate blob"
	for ty in permanent volatile; do
		BLOBFLAGS[$combo,$a,$ty]=$(hdr_flags "$f.$ty")
		assert_eq "$exp" "${BLOBFLAGS[$combo,$a,$ty]}" "[$tag] header flags of the $ty blob saved from $a"
		[ -z "$migdesc" ] || verify_hmac "[$tag] $ty blob by $a" "$f.$ty" "$migdesc" 5 3 7
	done

	setup_ports "$e"
	key_spec --migration-key "$mig"
	migargs=("${KEYARGS[@]}")
	key_spec --key "$dkey"
	dflag=$KEYFLAG
	start_swtpm "s2dst-$combo-$a-$b" "$(exe_of "$b")" "${BASE[@]}" "${KEYARGS[@]}" "${migargs[@]}"
	close_key_fds
	ok swtpm_ioctl --tcp "127.0.0.1:$C" --stop
	ok swtpm_ioctl --tcp "127.0.0.1:$C" --load permanent "$f.permanent"
	ok swtpm_ioctl --tcp "127.0.0.1:$C" --load volatile "$f.volatile"
	ok swtpm_ioctl --tcp "127.0.0.1:$C" -i
	tpm_raw "$P" "$TPM2_GETRANDOM8"
	assert_eq 00000000 "$RESP_RC" "[$tag] TPM2_GetRandom on the destination without Startup"
	assert_eq 40 "${#RESP}" "[$tag] TPM2_GetRandom response length (hex digits)"
	tpm_raw "$P" "$TPM2_STARTUP_CLEAR"
	assert_eq 00000100 "$RESP_RC" "[$tag] TPM2_Startup on the resumed destination (TPM_RC_INITIALIZE)"
	check_tpm "$tag, destination" "$E8" "$E16A" "$nv1"
	assert_file "$e/tpm2-00.permall"
	assert_no_file "$e/tpm2-00.volatilestate"
	assert_eq "$dflag" "$(hdr_flags "$e/tpm2-00.permall")" "[$tag] destination permall flags (its own state key)"
	[ "$dkey" = none ] || verify_hmac "[$tag] destination permall by $b" "$e/tpm2-00.permall" "$KEYDESC" 2 3 6
	ok swtpm_ioctl --tcp "127.0.0.1:$C" -s
	expect_swtpm_exit "s2dst-$combo-$a-$b" 0
}

# s2_load_fail NAME BLOB MIGCFG: --load permanent BLOB into ref and ours
# configured with MIGCFG; both must fail alike.
s2_load_fail() {
	local name=$1 blob=$2 mig=$3 impl d
	local -A res=()
	for impl in ref ours; do
		d="$TMPD/s2neg-$name-$impl"
		mkdir -p "$d"
		setup_ports "$d"
		key_spec --migration-key "$mig"
		start_swtpm "s2neg-$name-$impl" "$(exe_of "$impl")" "${BASE[@]}" "${KEYARGS[@]}"
		close_key_fds
		ok swtpm_ioctl --tcp "127.0.0.1:$C" --stop
		run swtpm_ioctl --tcp "127.0.0.1:$C" --load permanent "$blob"
		res[$impl]="exit $RC, '$(grep -o 'TPM result from PTM_SET_STATEBLOB: 0x[0-9a-f]*' <<<"$ERR" || true)'"
		ok swtpm_ioctl --tcp "127.0.0.1:$C" -s
		expect_swtpm_exit "s2neg-$name-$impl" 0
	done
	info "[load failure $name] ref: ${res[ref]}"
	[ "${res[ref]:0:6}" = "exit 1" ] || fail "[load failure $name] the reference accepted the blob: ${res[ref]}"
	assert_eq "${res[ref]}" "${res[ours]}" "[load failure $name] ours vs ref"
}

# (source key sizes: see the note in section 3)
t=$SECONDS
# combo       src --key  --migration-key  dst --key  expected flags
S2_COMBOS=(
	"m128      none      hex128m          none       0006"
	"m256pw    none      pwpbkdf2m        hex256     0016"
	"k128m128  hex128    bin16m           bin32      0006"
	"k256m256  hex256    hex256m          none       0016"
	"k256only  hex256    none             hex128     0004"
)
for line in "${S2_COMBOS[@]}"; do
	read -r combo skey mig dkey exp <<<"$line"
	info "== 2. swtpm_ioctl --save/--load $combo"
	s2_pair ref ours "$combo" "$skey" "$mig" "$dkey" "$exp"
	s2_pair ours ref "$combo" "$skey" "$mig" "$dkey" "$exp"
	for ty in permanent volatile; do
		assert_eq "${BLOBFLAGS[$combo,ref,$ty]}" "${BLOBFLAGS[$combo,ours,$ty]}" "[migration $combo] $ty blob flags ours vs ref"
	done
done
for a in ref ours; do
	s2_load_fail "no-migration-key-$a" "$TMPD/s2-m128-$a-$([ $a = ref ] && echo ours || echo ref)-blob.permanent" none
	s2_load_fail "wrong-migration-key-$a" "$TMPD/s2-m128-$a-$([ $a = ref ] && echo ours || echo ref)-blob.permanent" bin16m
	s2_load_fail "wrong-migration-key-size-$a" "$TMPD/s2-m256pw-$a-$([ $a = ref ] && echo ours || echo ref)-blob.permanent" hex128m
done
flush_hmac "2. migration blobs"
info "2. swtpm_ioctl migration: $((SECONDS - t)) s"

# ================================================================ 3. QEMU-style raw ctrl migration

declare -A S3FLAGS=()

# s3_pair SRC DST VARIANT SRCKEY MIG DSTKEY DECRYPTED EXPFLAGS EXPSTATEFLAGS
s3_pair() {
	local a=$1 b=$2 v=$3 skey=$4 mig=$5 dkey=$6 dec=$7 exp=$8 expsf=$9
	local tag="ctrl migration $v $a->$b" d="$TMPD/s3-$v-$a-$b" e="$TMPD/s3-$v-$a-$b-dst"
	local f="$TMPD/s3-$v-$a-$b-blob" nv1 ty
	local -a migargs
	mkdir -p "$d" "$e"

	setup_ports "$d"
	key_spec --migration-key "$mig"
	migargs=("${KEYARGS[@]}")
	key_spec --key "$skey"
	start_swtpm "s3src-$v-$a-$b" "$(exe_of "$a")" "${BASE[@]}" "${KEYARGS[@]}" "${migargs[@]}"
	close_key_fds
	ok swtpm_ioctl --tcp "127.0.0.1:$C" -i
	fill_tpm "$tag" nvq
	nv1=$NVHEX
	ok python3 -S "$PY" source "$C" "$dec" "$f"
	info "[$tag] source: $(tr '\n' ';' <<<"$OUT")"
	expect_swtpm_exit "s3src-$v-$a-$b" 0
	assert_contains "get 1 0x0 $expsf " "$OUT" "[$tag] GET_STATEBLOB permanent (result, state_flags)"
	assert_contains "get 2 0x0 $expsf " "$OUT" "[$tag] GET_STATEBLOB volatile (result, state_flags)"
	assert_contains "get 3 0x800 0 0" "$OUT" "[$tag] GET_STATEBLOB savestate (TPM_RETRY, no data)"
	for ty in 1 2; do
		S3FLAGS[$v,$a,$ty]=$(hdr_flags "$f.$ty")
		assert_eq "$exp" "${S3FLAGS[$v,$a,$ty]}" "[$tag] header flags of blob type $ty from $a"
	done
	assert_no_file "$d/tpm2-00.volatilestate"

	setup_ports "$e"
	key_spec --migration-key "$mig"
	migargs=("${KEYARGS[@]}")
	key_spec --key "$dkey"
	start_swtpm "s3dst-$v-$a-$b" "$(exe_of "$b")" "${BASE[@]}" "${KEYARGS[@]}" "${migargs[@]}"
	close_key_fds
	ok python3 -S "$PY" dest "$C" "$f"
	info "[$tag] destination: $(tr '\n' ';' <<<"$OUT")"
	tpm_raw "$P" "$TPM2_GETRANDOM8"
	assert_eq 00000000 "$RESP_RC" "[$tag] TPM2_GetRandom on the destination without Startup"
	assert_eq 40 "${#RESP}" "[$tag] TPM2_GetRandom response length (hex digits)"
	tpm_raw "$P" "$TPM2_STARTUP_CLEAR"
	assert_eq 00000100 "$RESP_RC" "[$tag] TPM2_Startup on the resumed destination (TPM_RC_INITIALIZE)"
	check_tpm "$tag, destination" "$E8" "$E16A" "$nv1"
	assert_no_file "$e/tpm2-00.volatilestate"
	key_spec --key "$dkey"
	assert_eq "$KEYFLAG" "$(hdr_flags "$e/tpm2-00.permall")" "[$tag] destination permall flags"
	ok swtpm_ioctl --tcp "127.0.0.1:$C" -s
	expect_swtpm_exit "s3dst-$v-$a-$b" 0
}

# The source's state key and migration key have the same size everywhere:
# swtpm 0.7.1 cannot export blobs when they differ (GET_STATEBLOB answers
# TPM_ENCRYPT_ERROR 0x20: all types for a 256-bit state key with a 128-bit
# migration key, the volatile one for 128/256). Destinations may mix sizes.
t=$SECONDS
# variant   src --key  --migration-key  dst --key  DECRYPTED  header flags  state_flags
S3_VARIANTS=(
	"plain     none       none             none       1          0004          0"
	"dec       hex256     pwpbkdf2m        hex128     1          0016          0"
	"enc128    hex128     bin16m           hex128     0          0007          2"
	"enc256    pwpbkdf2   hex256m          pwpbkdf2   0          001f          2"
)
for line in "${S3_VARIANTS[@]}"; do
	read -r v skey mig dkey dec exp expsf <<<"$line"
	info "== 3. raw ctrl migration $v"
	s3_pair ours ours "$v" "$skey" "$mig" "$dkey" "$dec" "$exp" "$expsf"
	s3_pair ref ours "$v" "$skey" "$mig" "$dkey" "$dec" "$exp" "$expsf"
	s3_pair ours ref "$v" "$skey" "$mig" "$dkey" "$dec" "$exp" "$expsf"
	for ty in 1 2; do
		assert_eq "${S3FLAGS[$v,ref,$ty]}" "${S3FLAGS[$v,ours,$ty]}" "[ctrl migration $v] blob type $ty flags ours vs ref"
	done
done
# state-key-encrypted blobs (enc128: 128-bit state key, sent with
# state_flags 2) into destinations with the right migration key but no / a
# wrong / a 256-bit state key: ours vs ref.
s3_set_fail() { # NAME BLOBPREFIX MIGCFG KEYCFG
	local name=$1 impl d
	local -A res=()
	for impl in ref ours; do
		d="$TMPD/s3neg-$name-$impl"
		mkdir -p "$d"
		setup_ports "$d"
		key_spec --migration-key "$3"
		local -a migargs=("${KEYARGS[@]}")
		key_spec --key "$4"
		start_swtpm "s3neg-$name-$impl" "$(exe_of "$impl")" "${BASE[@]}" "${KEYARGS[@]}" "${migargs[@]}"
		close_key_fds
		run python3 -S "$PY" dest "$C" "$2"
		res[$impl]="exit $RC, $(grep -o '^set 1 0x[0-9a-f]*' <<<"$OUT" || true)"
		ok swtpm_ioctl --tcp "127.0.0.1:$C" -s
		expect_swtpm_exit "s3neg-$name-$impl" 0
	done
	info "[SET_STATEBLOB failure $name] ref: ${res[ref]}"
	assert_match '^exit 1, set 1 0x[1-9a-f]' "${res[ref]}" "[SET_STATEBLOB failure $name] reference result (test assumption)"
	assert_eq "${res[ref]}" "${res[ours]}" "[SET_STATEBLOB failure $name] ours vs ref"
}
for a in ref ours; do
	blob="$TMPD/s3-enc128-$a-$([ $a = ref ] && echo ours || echo ref)-blob"
	s3_set_fail "no-state-key-$a" "$blob" bin16m none
	s3_set_fail "wrong-state-key-$a" "$blob" bin16m bad128
	s3_set_fail "state-key-size-$a" "$blob" bin16m hex256
done
info "3. raw ctrl migration: $((SECONDS - t)) s"

info "total: $((SECONDS - T0)) s"
pass
