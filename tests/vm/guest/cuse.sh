# shellcheck shell=bash
# Guest side of cuse.sh (run by guest-9p-init.sh inside chroot of the host
# root, cuse loaded). Kernel command line: vmtest_swtpm= (our swtpm),
# vmtest_ioctl= (our swtpm_ioctl), vmtest_digest= (64 hex digits to extend into
# PCR 16).
#
# `swtpm cuse -n vtpm0 --tpm2` creates /dev/vtpm0; every ctrl command is driven
# as an ioctl by our swtpm_ioctl and by Debian's /usr/bin/swtpm_ioctl, TPM
# commands go by raw write()/read() and by tpm2-tools (device TCTI). Only
# values are printed here; cuse.sh on the host asserts on them.
set -u
. "$(dirname "$0")/lib.sh"

SWTPM=$(arg vmtest_swtpm)
IOCTL=$(arg vmtest_ioctl)
DEB_IOCTL=/usr/bin/swtpm_ioctl
DIGEST=$(arg vmtest_digest)
DEV=/dev/vtpm0
W=/tmp/cu
ST=$W/state
mkdir -p $W $ST

# io KEY TOOL ARGS... [/dev/X]: a swtpm_ioctl run on $DEV (or /dev/X); prints KEY-rc, KEY-out
# (stdout lines joined with '|') and KEY-err (stderr, likewise).
io() {
    local key=$1 tool=$2 rc
    shift 2
    if [[ ${!#} == /dev/* ]]; then    # the device given last
        timeout 20 "$tool" "$@" > $W/$key.out 2> $W/$key.err
    else
        timeout 20 "$tool" "$@" $DEV > $W/$key.out 2> $W/$key.err
    fi
    rc=$?
    say "$key-rc $rc"
    say "$key-out $(paste -sd'|' $W/$key.out)"
    say "$key-err $(paste -sd'|' $W/$key.err)"
}

# raw KEY HEX: writes the bytes HEX in one write() and reads the response
# with one read() of up to 4096 bytes, on one open file of $DEV.
raw() {
    local key=$1
    echo "$2" | xxd -r -p > $W/cmd
    # (test -c first: <> would create a regular file)
    if [[ ! -c $DEV ]] || ! exec 4<> $DEV; then
        say "$key-open failed"
        return
    fi
    dd if=$W/cmd bs=4096 count=1 status=none >&4
    say "$key-write-rc $?"
    timeout 10 dd bs=4096 count=1 status=none <&4 > $W/rsp
    exec 4>&-
    say "$key $(hexof $W/rsp)"
}

# alive: the daemon still runs (it is not our child: libfuse daemonized it)
alive() { [[ -n ${pid:-} && -d /proc/$pid ]] && ! grep -q '^State:[[:space:]]*Z' /proc/$pid/status 2>/dev/null; }

say "cuse-ctl $([[ -c /dev/cuse ]] && echo yes || echo no)"
mark cuse-start
"$SWTPM" cuse -n vtpm0 --tpm2 --tpmstate dir=$ST --pid file=$W/pid \
    --log file=$W/log,level=20 > $W/out 2> $W/err
say "start-rc $?"
wait_for 20 test -c $DEV
mark cuse-dev
say "dev $([[ -c $DEV ]] && echo yes || echo no)"
say "sysfs $(cat /sys/class/cuse/vtpm0/dev 2>/dev/null)"
pid=$(cat $W/pid 2>/dev/null)
say "pid-alive $(alive && echo yes || echo no)"
if [[ ! -c $DEV ]]; then
    say "error no $DEV"
    dump $W/out $W/err $W/log
    exit 1
fi

# ---- a second device with a chosen major/minor, started by --flags ----
mkdir -p $W/state1
"$SWTPM" cuse -n vtpm1 -M 60 -m 7 --tpm2 --tpmstate dir=$W/state1 \
    --flags not-need-init,startup-clear --log file=$W/log1 > $W/out1 2> $W/err1
say "dev1-start-rc $?"
wait_for 20 test -c /dev/vtpm1
say "dev1-sysfs $(cat /sys/class/cuse/vtpm1/dev 2>/dev/null)"
say "dev1-node $(stat -c '%t:%T' /dev/vtpm1 2>/dev/null)"
io dev1-e "$IOCTL" -e /dev/vtpm1 # running without -i
DEV=/dev/vtpm1 raw dev1-getrandom 80010000000c0000017b0010
io dev1-s "$IOCTL" -s /dev/vtpm1
wait_for 5 test ! -e /dev/vtpm1
say "dev1-gone $([[ -e /dev/vtpm1 ]] && echo no || echo yes)"
mark dev1

# a major that is taken (1: mem): the kernel refuses the device; the daemon
# must not linger without one
"$SWTPM" cuse -n vtpmbad -M 1 -m 200 --tpm2 --tpmstate dir=$W/state1 \
    --pid file=$W/pidbad --log file=$W/logbad > $W/outbad 2> $W/errbad
say "bad-start-rc $?"
sleep 0.5
pid0=$pid
pid=$(cat $W/pidbad 2>/dev/null)
wait_for 5 eval '! alive'
say "bad-lingers $(alive && echo yes || echo no)"
say "bad-dev $([[ -e /dev/vtpmbad ]] && echo yes || echo no)"
alive && kill -9 $pid
pid=$pid0
mark bad-major

# ---- before CMD_INIT ----
io c0 "$IOCTL" -c
io e0 "$IOCTL" -e               # not running: TPM_BAD_ORDINAL
io g0 "$IOCTL" -g
io b0 "$IOCTL" -b 3000          # settable while stopped
io b2 "$IOCTL" -b 4096         # prints the size now in use
raw raw-notinit 80010000000c0000017b0010   # GetRandom before init: fatal error answer
io i0 "$IOCTL" -i
mark init

# ---- TPM commands by write()/read() ----
raw raw-startup 80010000000c000001440000   # TPM2_Startup(SU_CLEAR)
raw raw-getrandom 80010000000c0000017b0010 # TPM2_GetRandom(16)
raw raw-short 8001000000                   # shorter than a header
# a read with no response pending returns nothing
exec 4<> $DEV && { timeout 10 dd bs=4096 count=1 status=none <&4 > $W/rsp; say "raw-empty-read-rc $?"; exec 4>&-; }
say "raw-empty-read $(hexof $W/rsp)"

# ---- tpm2-tools through the device TCTI ----
export TPM2TOOLS_TCTI=device:$DEV
run t-getrandom timeout 20 tpm2_getrandom --hex 16 > $W/rand
say "t-random $(cat $W/rand)"
run t-pcrextend timeout 20 tpm2_pcrextend 16:sha256=$DIGEST
run t-pcrread timeout 20 tpm2_pcrread sha256:16 -o $W/pcr16 > /dev/null
say "t-pcr16 $(hexof $W/pcr16)"
mark tpm2-tools

# ---- ctrl ioctls while running ----
io e1 "$IOCTL" -e
io h1 "$IOCTL" -h abc           # hash sequence at locality 4: PCR 17, tpmEstablished
io e2 "$IOCTL" -e
run t-pcr17 timeout 20 tpm2_pcrread sha256:17 -o $W/pcr17 > /dev/null
say "t-pcr17 $(hexof $W/pcr17)"
io r0 "$IOCTL" -r 0             # resetting needs locality 3 or 4
io r3 "$IOCTL" -r 3
io e3 "$IOCTL" -e
io l3 "$IOCTL" -l 3
io l0 "$IOCTL" -l 0
io l5 "$IOCTL" -l 5             # refused by the tool itself
io C "$IOCTL" -C
io v "$IOCTL" -v
say "volatile-file $(ls $ST | grep -c volatilestate)"
io b3 "$IOCTL" -b 0
io b4 "$IOCTL" -b 3000          # not while running
io info "$IOCTL" --info 3
io lock "$IOCTL" --lock-storage 0
mark ctrl

# ---- state blobs: save, change, stop, load, init: the saved state is back ----
io save-perm "$IOCTL" --save permanent $W/perm
io save-vol "$IOCTL" --save volatile $W/vol
say "blob-sizes $(stat -c %s $W/perm) $(stat -c %s $W/vol)"
io load-running "$IOCTL" --load permanent $W/perm   # refused while running
run t-pcrextend2 timeout 20 tpm2_pcrextend 16:sha256=$DIGEST
run t-pcrread2 timeout 20 tpm2_pcrread sha256:16 -o $W/pcr16b > /dev/null
say "t-pcr16-changed $(hexof $W/pcr16b)"
io stop "$IOCTL" --stop
io e4 "$IOCTL" -e               # stopped: TPM_BAD_ORDINAL
io load-perm "$IOCTL" --load permanent $W/perm
io load-vol "$IOCTL" --load volatile $W/vol
io i1 "$IOCTL" -i
run t-pcrread3 timeout 20 tpm2_pcrread sha256:16 -o $W/pcr16c > /dev/null
say "t-pcr16-restored $(hexof $W/pcr16c)"
mark blobs

# ---- Debian's swtpm_ioctl on the same device ----
io d-c "$DEB_IOCTL" -c
io d-e "$DEB_IOCTL" -e
io d-info "$DEB_IOCTL" --info 3
io d-h "$DEB_IOCTL" -h abc
io d-e2 "$DEB_IOCTL" -e
io d-r "$DEB_IOCTL" -r 4
# the same blob fetched by both tools is the same bytes (a volatile blob
# is several 3072-byte packets: Debian's tool reads the rest with read())
io d-save-perm "$DEB_IOCTL" --save permanent $W/dperm
io o-save-perm "$IOCTL" --save permanent $W/operm
say "perm-same $(cmp -s $W/dperm $W/operm && echo yes || echo no) $(stat -c %s $W/dperm)"
io d-save-vol "$DEB_IOCTL" --save volatile $W/dvol
say "dvol-size $(stat -c %s $W/dvol)"
io d-stop "$DEB_IOCTL" --stop
io d-load-perm "$DEB_IOCTL" --load permanent $W/dperm
io d-load-vol "$DEB_IOCTL" --load volatile $W/dvol
io d-i "$DEB_IOCTL" -i
run t-pcrread4 timeout 20 tpm2_pcrread sha256:16 -o $W/pcr16d > /dev/null
say "t-pcr16-deb $(hexof $W/pcr16d)"
mark debian

# ---- edge cases by python (one open file, split reads, oversize writes,
# ioctls CUSE lacks, out-of-range arguments) ----
timeout 30 python3 "$(dirname "$0")/cuse_raw.py" $DEV
say "py-rc $?"
run t-pcr17b timeout 20 tpm2_pcrread sha256:17 -o $W/pcr17b > /dev/null
say "t-pcr17-after-py $(hexof $W/pcr17b)"
mark python

# ---- shutdown ----
io s "$IOCTL" -s
wait_for 20 eval '! alive'
say "exited $(alive && echo no || echo yes)"
wait_for 5 test ! -e $DEV
say "dev-gone $([[ -e $DEV ]] && echo no || echo yes)"
say "files $(ls $ST | sort | paste -sd' ')"
say "permall-size $(stat -c %s $ST/tpm2-00.permall 2>/dev/null)"
say "log-errors $(grep -a -c -i 'error' $W/log)"
say "stderr $(cat $W/out $W/err | wc -c)"
if [[ -n $(arg vmtest_debug) ]] || grep -a -q -i error $W/log || [[ -s $W/err ]]; then
    dump $W/out $W/err
    grep -a -i -B3 -A3 error $W/log | tail -n 40
fi
mark end
