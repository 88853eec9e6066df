#!/usr/bin/env bash
# The linear file backend (--tpmstate backend-uri=file://PATH) and the swtpm 0.8
# storage-lock hand-off (--migration incoming,release-lock-outgoing).
#
# 1. TPM 2 state in one regular file moved between Debian's swtpm ($REF_SWTPM)
#    and the emulator under test ($SWTPM_EXE), both ways, for (A,B) = (ref,ours)
#    and (ours,ref):
#      A: CMD_INIT, Startup(CLEAR), STORE_VOLATILE (volatilestate after permall),
#         NV define (1500 bytes) + write: permall outgrows its section, so
#         volatilestate moves down and permall goes last; Shutdown(STATE);
#         GET_STATEBLOB(volatile) deletes volatilestate: permall moves down to
#         192 and the file shrinks; SIGTERM
#      B: CMD_INIT, Startup(STATE), NV content kept; rewrite NV; STORE_VOLATILE
#      A: not-need-init resumes B's volatile state; NV as B left it
#    and --print-states of both emulators agree on every file.
# 2. --print-states of both emulators on directories and files (empty, written
#    by either), byte-identical output; a fresh file is formatted identically.
# 3. The same on a loop block device (losetup), which is never resized; skipped
#    with a message when loop devices cannot be set up.
# 4. Ours only: two instances on shared storage (a directory, then a file).
#    The source holds the lock; a destination started with --migration
#    incoming starts, and its CMD_INIT does not lock; the source releases the
#    lock after GET_STATEBLOB(savestate) with release-lock-outgoing; the
#    destination's SET_STATEBLOB takes it, CMD_INIT resumes the state; the
#    source's next TPM command cannot lock (TPM_RC_FAILURE); a third
#    instance's SET_STATEBLOB cannot lock: TPM_IOERROR and exit status 1;
#    CMD_LOCK_STORAGE takes a deferred lock.
TEST_NAME=linear
. "$(dirname "$0")/lib.sh"

[ -x "$REF_SWTPM" ] || skip "reference emulator $REF_SWTPM is not installed"
require_cmd swtpm_ioctl tpm2_startup tpm2_shutdown tpm2_nvdefine tpm2_nvwrite tpm2_nvread \
	tpm2_getrandom od truncate

OURS=$SWTPM_EXE
NV_INDEX=0x1500031
NV_SIZE=1500

is_ours() { "$OURS" --version 2>/dev/null | grep -q vtpmd; }
exe_of() { if [ "$1" = ref ]; then echo "$REF_SWTPM"; else echo "$OURS"; fi; }

LOOPDEVS=()
_detach_loops() {
	local d
	for d in "${LOOPDEVS[@]}"; do
		losetup -d "$d" 2>/dev/null || true
	done
	LOOPDEVS=()
}
# The emulators must be gone before their loop devices are detached; lib.sh's
# cleanup then removes the temporary directory and keeps the exit status.
_linear_exit() {
	local rc=$? n
	set +e
	for n in "${!SW_PID[@]}"; do
		_pid_running "${SW_PID[$n]}" && stop_swtpm "$n" >/dev/null 2>&1
	done
	_detach_loops
	(exit "$rc")
	_cleanup
}
trap _linear_exit EXIT

# linear_layout FILE: sets SLOT_OFF[i], SLOT_LEN[i], SLOT_SEC[i] for slots 0..2.
SLOT_OFF=()
SLOT_LEN=()
SLOT_SEC=()
linear_layout() {
	local -a v
	assert_eq nilmptws "$(head -c 8 "$1")" "magic of $1"
	read -r -a v <<<"$(od --endian=little -An -v -tu4 -j12 -N36 "$1" | tr -s ' \n' '  ')"
	SLOT_OFF=("${v[0]}" "${v[3]}" "${v[6]}")
	SLOT_LEN=("${v[1]}" "${v[4]}" "${v[7]}")
	SLOT_SEC=("${v[2]}" "${v[5]}" "${v[8]}")
	info "layout of $1: permall ${v[0]}/${v[1]}/${v[2]} volatile ${v[3]}/${v[4]}/${v[5]} savestate ${v[6]}/${v[7]}/${v[8]} (offset/length/section), size $(blockdev_or_file_size "$1")"
}

nv_value() {
	rm -f "$TMPD/nv.out"
	ok tpm2_nvread "$NV_INDEX" -C o -s "$NV_SIZE" -o "$TMPD/nv.out"
	NVVAL=$(sha256sum <"$TMPD/nv.out" | cut -d' ' -f1)
}

# print_states_equal WHAT ARGS... : both emulators print the same states JSON.
print_states_equal() {
	local what=$1 ref
	shift
	ok "$REF_SWTPM" socket "$@" --print-states
	ref=$OUT
	ok "$OURS" socket "$@" --print-states
	assert_eq "$ref" "$OUT" "--print-states ($what)"
	PSTATES=$OUT
}

# ------------------------------------------------------------------ 1. state moves

# move_pair A B STATEURI [SIZECHECK]: the sequence above on STATEURI (a file or a
# block device behind file://); SIZECHECK=fixed expects the size never to change.
move_pair() {
	local a=$1 b=$2 uri=$3 sizecheck=${4:-} tag="$1->$2 $3"
	local path=${uri#file://} p c size0 nv1 nv2 sect0
	pick_ports 2
	p=$PORT
	c=$((PORT + 1))
	export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$p"
	local -a args=(socket --tpm2 --server "type=tcp,port=$p" --ctrl "type=tcp,port=$c"
		--tpmstate "backend-uri=$uri")
	size0=$(blockdev_or_file_size "$path")

	info "[$tag] A=$a: create, grow, move"
	start_swtpm "A-$a" "$(exe_of "$a")" "${args[@]}"
	ok swtpm_ioctl --tcp "127.0.0.1:$c" -i
	ok tpm2_startup -c
	ok swtpm_ioctl --tcp "127.0.0.1:$c" -v
	linear_layout "$path"
	assert_eq 192 "${SLOT_OFF[0]}" "[$tag] permall first"
	assert_eq $((192 + SLOT_SEC[0])) "${SLOT_OFF[1]}" "[$tag] volatilestate after permall"
	sect0=${SLOT_SEC[0]}
	head -c "$NV_SIZE" /dev/urandom >"$TMPD/nv1"
	nv1=$(sha256sum <"$TMPD/nv1" | cut -d' ' -f1)
	ok tpm2_nvdefine "$NV_INDEX" -C o -s "$NV_SIZE" -a "ownerread|ownerwrite|authread|authwrite"
	ok tpm2_nvwrite "$NV_INDEX" -C o -i "$TMPD/nv1"
	linear_layout "$path"
	[ "${SLOT_LEN[0]}" -gt "$sect0" ] || fail "[$tag] permall (${SLOT_LEN[0]}) did not outgrow its section ($sect0)"
	assert_eq 192 "${SLOT_OFF[1]}" "[$tag] volatilestate moved down"
	assert_eq $((192 + SLOT_SEC[1])) "${SLOT_OFF[0]}" "[$tag] permall re-allocated last"
	ok tpm2_shutdown
	ok swtpm_ioctl --tcp "127.0.0.1:$c" --save volatile "$TMPD/vol.blob"
	linear_layout "$path"
	assert_eq 192 "${SLOT_OFF[0]}" "[$tag] permall moved down after the volatilestate deletion"
	assert_eq 0 "${SLOT_OFF[1]}" "[$tag] volatilestate deleted"
	if [ "$sizecheck" = fixed ]; then
		assert_eq "$size0" "$(blockdev_or_file_size "$path")" "[$tag] device size"
	else
		assert_eq $((192 + SLOT_SEC[0])) "$(stat -c %s "$path")" "[$tag] file size"
	fi
	stop_swtpm_ok "A-$a"
	print_states_equal "[$tag] after A" --tpm2 --tpmstate "backend-uri=$uri"
	assert_eq "{ \"type\": \"swtpm\", \"states\": [ {\"name\": \"permall\", \"size\": ${SLOT_LEN[0]}} ] }" "$PSTATES" "[$tag] print-states after A"

	info "[$tag] B=$b: Startup(STATE) from A's state"
	start_swtpm "B-$b" "$(exe_of "$b")" "${args[@]}"
	ok swtpm_ioctl --tcp "127.0.0.1:$c" -i
	ok tpm2_startup
	nv_value
	assert_eq "$nv1" "$NVVAL" "[$tag] NV content on B"
	head -c "$NV_SIZE" /dev/urandom >"$TMPD/nv2"
	nv2=$(sha256sum <"$TMPD/nv2" | cut -d' ' -f1)
	ok tpm2_nvwrite "$NV_INDEX" -C o -i "$TMPD/nv2"
	ok swtpm_ioctl --tcp "127.0.0.1:$c" -v
	stop_swtpm_ok "B-$b"
	linear_layout "$path"
	# (ours sends TPM2_Shutdown at SIGTERM, which may move permall once more)
	if [ "${SLOT_OFF[0]}" -lt 192 ] || [ "${SLOT_OFF[1]}" -lt 192 ]; then
		fail "[$tag] permall and volatilestate expected after B"
	fi
	print_states_equal "[$tag] after B" --tpm2 --tpmstate "backend-uri=$uri"
	assert_eq "{ \"type\": \"swtpm\", \"states\": [ {\"name\": \"permall\", \"size\": ${SLOT_LEN[0]}}, {\"name\": \"volatilestate\", \"size\": ${SLOT_LEN[1]}} ] }" "$PSTATES" "[$tag] print-states after B"
	# the TPM version is not part of the layout
	print_states_equal "[$tag] after B, TPM 1.2" --tpmstate "backend-uri=$uri"

	info "[$tag] A=$a again: resume B's volatile state"
	start_swtpm "A2-$a" "$(exe_of "$a")" "${args[@]}" --flags not-need-init
	nv_value
	assert_eq "$nv2" "$NVVAL" "[$tag] NV content on A written by B"
	ok tpm2_shutdown -c
	ok swtpm_ioctl --tcp "127.0.0.1:$c" -s
	expect_swtpm_exit "A2-$a" 0
	if [ "$sizecheck" = fixed ]; then
		assert_eq "$size0" "$(blockdev_or_file_size "$path")" "[$tag] device size at the end"
	fi
}

blockdev_or_file_size() {
	if [ -b "$1" ]; then
		blockdev --getsize64 "$1"
	else
		stat -c %s "$1" 2>/dev/null || echo 0
	fi
}

move_pair ref ours "file://$TMPD/ref-ours.img"
move_pair ours ref "file://$TMPD/ours-ref.img"
assert_mode 640 "$TMPD/ours-ref.img"

# ------------------------------------------------------------------ 2. --print-states

info "--print-states: new files are formatted alike"
print_states_equal "new file" --tpm2 --tpmstate "backend-uri=file://$TMPD/new-ref.img"
mv "$TMPD/new-ref.img" "$TMPD/new-ref.keep"
ok "$OURS" socket --tpm2 --tpmstate "backend-uri=file://$TMPD/new-ref.img" --print-states
assert_eq '{ "type": "swtpm", "states": [] }' "$OUT" "print-states (new file)"
assert_eq "$(hex_of_file "$TMPD/new-ref.keep")" "$(hex_of_file "$TMPD/new-ref.img")" "formatted header"
assert_eq 192 "$(stat -c %s "$TMPD/new-ref.img")" "size of a formatted file"

info "--print-states: directories written by either emulator"
for who in ref ours; do
	d=$TMPD/ps-$who
	mkdir -p "$d"
	print_states_equal "empty dir" --tpm2 --tpmstate "dir=$d"
	assert_eq '{ "type": "swtpm", "states": [] }' "$PSTATES" "print-states (empty dir)"
	pick_ports 2
	start_swtpm "PS-$who" "$(exe_of "$who")" socket --tpm2 --server "type=tcp,port=$PORT" \
		--ctrl "type=tcp,port=$((PORT + 1))" --tpmstate "dir=$d"
	ok swtpm_ioctl --tcp "127.0.0.1:$((PORT + 1))" -i
	ok swtpm_ioctl --tcp "127.0.0.1:$((PORT + 1))" -v
	stop_swtpm_ok "PS-$who"
	print_states_equal "dir by $who" --tpm2 --tpmstate "dir=$d"
	assert_eq "{ \"type\": \"swtpm\", \"states\": [ {\"name\": \"permall\", \"size\": $(stat -c %s "$d/tpm2-00.permall")}, {\"name\": \"volatilestate\", \"size\": $(stat -c %s "$d/tpm2-00.volatilestate")} ] }" "$PSTATES" "print-states (dir by $who)"
	print_states_equal "dir by $who, TPM 1.2 names" --tpmstate "dir=$d"
	assert_eq '{ "type": "swtpm", "states": [] }' "$PSTATES" "print-states (TPM 1.2 view of a TPM 2 dir)"
	print_states_equal "dir by $who, backend-uri" --tpm2 --tpmstate "backend-uri=dir://$d"
done

if is_ours; then
	info "--print-states of ours waits for nobody: a running instance holds the file"
	pick_ports 2
	start_swtpm "PSL" "$OURS" socket --tpm2 --server "type=tcp,port=$PORT" \
		--ctrl "type=tcp,port=$((PORT + 1))" --tpmstate "backend-uri=file://$TMPD/ours-ref.img" \
		--flags not-need-init
	expect_rc 1 "$OURS" socket --tpm2 --tpmstate "backend-uri=file://$TMPD/ours-ref.img" --print-states
	assert_contains "Could not lock" "$ERR" "print-states on a locked file"
	# swtpm 0.7.1 does not lock the file at all
	ok "$REF_SWTPM" socket --tpm2 --tpmstate "backend-uri=file://$TMPD/ours-ref.img" --print-states
	stop_swtpm_ok "PSL"
fi

# ------------------------------------------------------------------ 3. block device

LOOP_OK=0
if ! command -v losetup >/dev/null 2>&1 || ! command -v blockdev >/dev/null 2>&1; then
	info "SKIP block device part: losetup/blockdev not installed"
elif [ ! -e /dev/loop-control ]; then
	info "SKIP block device part: /dev/loop-control does not exist (no loop driver)"
else
	truncate -s 1M "$TMPD/loop-ref.img"
	truncate -s 1M "$TMPD/loop-ours.img"
	if L1=$(losetup -f --show "$TMPD/loop-ref.img" 2>"$TMPD/losetup.err"); then
		LOOPDEVS+=("$L1")
		if L2=$(losetup -f --show "$TMPD/loop-ours.img" 2>>"$TMPD/losetup.err"); then
			LOOPDEVS+=("$L2")
			LOOP_OK=1
		fi
	fi
	[ $LOOP_OK = 1 ] ||
		info "SKIP block device part: losetup failed: $(tr '\n' ' ' <"$TMPD/losetup.err")"
fi
if [ $LOOP_OK = 1 ]; then
	info "block devices: $L1 $L2"
	move_pair ref ours "file://$L1" fixed
	move_pair ours ref "file://$L2" fixed
	_detach_loops
	assert_eq 1048576 "$(stat -c %s "$TMPD/loop-ours.img")" "backing file size"
	assert_eq nilmptws "$(head -c 8 "$TMPD/loop-ours.img")" "header on the backing file"
fi

# ------------------------------------------------------------------ 4. lock hand-off

# expect_locked / expect_unlocked TPMSTATE WHAT : a --print-states probe of ours
# (which takes the storage lock for a moment) fails while another holds it.
expect_locked() {
	expect_rc 1 "$OURS" socket --tpm2 --tpmstate "$1" --print-states
	assert_contains "Could not lock" "$ERR" "$2"
}
expect_unlocked() {
	run "$OURS" socket --tpm2 --tpmstate "$1" --print-states
	[ "$RC" = 0 ] || fail "$2: storage still locked ($ERR)"
}

# ctrl_raw PORT HEX NBYTES : one control command on a fresh TCP connection; CRESP
# gets NBYTES of the response as hex.
ctrl_raw() {
	local esc st=0
	esc=$(sed 's/../\\x&/g' <<<"${2,,}")
	CRESP=$(timeout -k 2 10 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 2
		printf "$2" >&3
		head -c "$3" <&3 | od -An -v -tx1 | tr -d " \n"' _ "$1" "$esc" "$3") || st=$?
	[ "$st" = 0 ] || fail "control command $2 to port $1 failed (status $st)"
}

handoff() {
	local kind=$1 state sp sc dp dc tp tc nv1 nv2
	case $kind in
	dir)
		mkdir -p "$TMPD/shared"
		state="dir=$TMPD/shared"
		;;
	file)
		state="backend-uri=file://$TMPD/shared.img"
		;;
	esac
	pick_ports 6
	sp=$PORT sc=$((PORT + 1)) dp=$((PORT + 2)) dc=$((PORT + 3)) tp=$((PORT + 4)) tc=$((PORT + 5))
	local -a common=(socket --tpm2 --tpmstate "$state")

	info "[handoff $kind] source holds the lock"
	start_swtpm SRC "$OURS" "${common[@]}" --server "type=tcp,port=$sp" --ctrl "type=tcp,port=$sc" \
		--flags not-need-init,startup-clear --migration release-lock-outgoing
	export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$sp"
	head -c "$NV_SIZE" /dev/urandom >"$TMPD/nv1"
	nv1=$(sha256sum <"$TMPD/nv1" | cut -d' ' -f1)
	ok tpm2_nvdefine "$NV_INDEX" -C o -s "$NV_SIZE" -a "ownerread|ownerwrite|authread|authwrite"
	ok tpm2_nvwrite "$NV_INDEX" -C o -i "$TMPD/nv1"
	expect_locked "$state" "[handoff $kind] source running"

	info "[handoff $kind] destination with --migration incoming starts; its CMD_INIT does not lock"
	start_swtpm DST "$OURS" "${common[@]}" --server "type=tcp,port=$dp" --ctrl "type=tcp,port=$dc" \
		--migration incoming
	assert_swtpm_running DST
	ok swtpm_ioctl --tcp "127.0.0.1:$dc" -i
	ok swtpm_ioctl --tcp "127.0.0.1:$dc" --stop
	assert_swtpm_running SRC

	info "[handoff $kind] source: GET_STATEBLOB x3; the lock goes with the savestate blob"
	ok swtpm_ioctl --tcp "127.0.0.1:$sc" --save permanent "$TMPD/perm.blob"
	ok swtpm_ioctl --tcp "127.0.0.1:$sc" --save volatile "$TMPD/vol.blob"
	expect_locked "$state" "[handoff $kind] after two blobs"
	ok swtpm_ioctl --tcp "127.0.0.1:$sc" --save savestate "$TMPD/save.blob"
	assert_eq 0 "$(stat -c %s "$TMPD/save.blob")" "[handoff $kind] TPM 2 has no savestate"
	expect_unlocked "$state" "[handoff $kind] after the savestate blob"
	assert_swtpm_running SRC

	info "[handoff $kind] destination: SET_STATEBLOB takes the lock, CMD_INIT resumes"
	ok swtpm_ioctl --tcp "127.0.0.1:$dc" --load permanent "$TMPD/perm.blob"
	expect_locked "$state" "[handoff $kind] destination after SET_STATEBLOB"
	ok swtpm_ioctl --tcp "127.0.0.1:$dc" --load volatile "$TMPD/vol.blob"
	ok swtpm_ioctl --tcp "127.0.0.1:$dc" -i
	export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$dp"
	nv_value
	assert_eq "$nv1" "$NVVAL" "[handoff $kind] NV content on the destination"
	head -c "$NV_SIZE" /dev/urandom >"$TMPD/nv2"
	nv2=$(sha256sum <"$TMPD/nv2" | cut -d' ' -f1)
	ok tpm2_nvwrite "$NV_INDEX" -C o -i "$TMPD/nv2"

	info "[handoff $kind] source: a TPM command cannot re-take the lock (3 s of retries)"
	tpm_raw "$sp" 80010000000c0000017b0008
	assert_eq 00000101 "$RESP_RC" "[handoff $kind] source answers TPM_RC_FAILURE"
	tpm_raw "$sp" 80010000000c0000017b0008
	assert_eq 00000101 "$RESP_RC" "[handoff $kind] source still without the lock"
	assert_contains "Could not lock the TPM state storage" "$(cat "${SW_LOG[SRC]}")" "[handoff $kind] source log"
	stop_swtpm_ok SRC

	info "[handoff $kind] a third instance cannot lock in SET_STATEBLOB: TPM_IOERROR, exit 1"
	start_swtpm THIRD "$OURS" "${common[@]}" --server "type=tcp,port=$tp" --ctrl "type=tcp,port=$tc" \
		--migration incoming
	expect_fail swtpm_ioctl --tcp "127.0.0.1:$tc" --load permanent "$TMPD/perm.blob"
	assert_contains "0x1f" "$ERR$OUT" "[handoff $kind] SET_STATEBLOB result"
	expect_swtpm_exit THIRD 1

	info "[handoff $kind] the destination kept everything"
	nv_value
	assert_eq "$nv2" "$NVVAL" "[handoff $kind] NV content after the others ended"
	ok tpm2_shutdown
	ok swtpm_ioctl --tcp "127.0.0.1:$dc" -s
	expect_swtpm_exit DST 0

	info "[handoff $kind] swtpm 0.7.1 takes over the files"
	start_swtpm REFTAKE "$REF_SWTPM" "${common[@]}" --server "type=tcp,port=$sp" --ctrl "type=tcp,port=$sc"
	export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$sp"
	ok swtpm_ioctl --tcp "127.0.0.1:$sc" -i
	ok tpm2_startup
	nv_value
	assert_eq "$nv2" "$NVVAL" "[handoff $kind] NV content read by swtpm 0.7.1"
	ok swtpm_ioctl --tcp "127.0.0.1:$sc" -s
	expect_swtpm_exit REFTAKE 0

	info "[handoff $kind] CMD_LOCK_STORAGE takes a deferred lock"
	start_swtpm LOCKER "$OURS" "${common[@]}" --server "type=tcp,port=$tp" --ctrl "type=tcp,port=$tc" \
		--migration incoming
	expect_unlocked "$state" "[handoff $kind] incoming instance before LOCK_STORAGE"
	ctrl_raw "$tc" 0000001300000000 4
	assert_eq 00000000 "$CRESP" "[handoff $kind] CMD_LOCK_STORAGE result"
	expect_locked "$state" "[handoff $kind] after LOCK_STORAGE"
	stop_swtpm_ok LOCKER
}

if is_ours; then
	handoff dir
	handoff file
else
	info "SKIP lock hand-off: --migration is swtpm 0.8 ($SWTPM_EXE is not vtpmd)"
fi

pass
