#!/usr/bin/env bash
# `swtpm cuse` on a real CUSE driver (ctrl-channel.md §8, data-channel.md §8):
# this host's kernel has no CUSE, so a Debian kernel under QEMU (TCG) runs
# guest/cuse.sh inside chroot of the host root (9p, read-only), with our
# build/swtpm and swtpm_ioctl, Debian's /usr/bin/swtpm_ioctl and tpm2-tools.
# Asserted here, on the guest's output:
#  - `swtpm cuse -n vtpm0 --tpm2` (daemonized by libfuse, pid file) creates
#    /dev/vtpm0; a second one, `-n vtpm1 -M 60 -m 7 --flags
#    not-need-init,startup-clear`, gets that major/minor and answers TPM
#    commands without -i, and ends on -s; with a taken major (-M 1) the
#    daemon ends instead of lingering without a device;
#  - every ctrl ioctl through our swtpm_ioctl, with its exact output or error:
#    -c (0x16fff: no SET_DATAFD, no SEND_COMMAND_HEADER), -e before -i
#    (0xa), -g, -b set/query while stopped and refused (0xa) while running,
#    -i, -e, -h (hash sequence: tpmEstablished 1, exact PCR 17), -r 0 (0x3d)
#    and -r 3, -l 3/5/0, -C, -v (volatile state file), --info 3,
#    --lock-storage, --save/--load of permanent and volatile blobs (load
#    refused while running; after --stop, load and -i the PCR 16 value of the
#    save is back although PCR 16 was extended after it), --stop, -s (the
#    daemon ends, /dev/vtpm0 goes away, permall stays);
#  - Debian's swtpm_ioctl on the same device: -c, -e, --info 3, -h, -r 4,
#    --save (the permanent blob is byte-identical to ours; the volatile blob
#    is several 3072-byte packets), --stop, --load, -i;
#  - TPM commands by raw write()/read(): the not-initialised answer,
#    TPM2_Startup, TPM2_GetRandom (exact header, 16 bytes), a short command
#    (TPM_RC_INSUFFICIENT), an empty read with no response pending;
#  - tpm2-tools with the device TCTI: getrandom, pcrextend + pcrread (exact);
#  - edge cases (guest/cuse_raw.py): a second open() fails with EBUSY, a
#    response read in pieces (10 bytes, rest, then 0), a 5000-byte write is
#    acknowledged as 4096 and answered TPM_RC_COMMAND_SIZE, PTM_SET_DATAFD and
#    an unknown ioctl fail with EINVAL, PTM_RESET_TPMESTABLISHED from locality
#    5 answers 0x3d, PTM_HASH_DATA above 4096 bytes answers TPM_FAIL and is
#    not hashed (PCR 17 after the sequence is that of "abc" alone); after a
#    PTM_GET_STATEBLOB that left data to read() a write() fails with EIO, and
#    a new open() is back in command mode.
#
# Needs: qemu-system-x86, linux-image-amd64, busybox-static, kmod, tpm2-tools,
# swtpm-tools. Env: SWTPM_EXE, SWTPM_IOCTL_EXE. Exit 0 / 1 / 77.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

SWTPM_EXE=${SWTPM_EXE:-}
SWTPM_IOCTL_EXE=${SWTPM_IOCTL_EXE:-$(dirname "${SWTPM_EXE:-.}")/tools/swtpm_ioctl}
[[ -n $SWTPM_EXE && -x $SWTPM_EXE ]] || { echo "FAIL: SWTPM_EXE not set/executable"; exit 1; }
[[ -x $SWTPM_IOCTL_EXE ]] || { echo "FAIL: SWTPM_IOCTL_EXE ($SWTPM_IOCTL_EXE) not executable"; exit 1; }
SWTPM_EXE=$(realpath "$SWTPM_EXE") SWTPM_IOCTL_EXE=$(realpath "$SWTPM_IOCTL_EXE")
vm_setup
vm_need 'command -v tpm2_getrandom >/dev/null' tpm2-tools "no tpm2-tools"
vm_need '[[ -x /usr/bin/swtpm_ioctl ]]' swtpm-tools "no /usr/bin/swtpm_ioctl"
vm_need 'command -v python3 >/dev/null' python3 "no python3"

digest=$(printf 'vtpmd cuse test' | sha256sum | cut -c1-64)
t0=$(now)
vm_extra_modules=(cuse)
vm_run_9p cu "$vm_here/guest/cuse.sh" 120 \
    vmtest_swtpm="$SWTPM_EXE" vmtest_ioctl="$SWTPM_IOCTL_EXE" vmtest_digest="$digest"
echo "guest run: $(elapsed "$t0") s (qemu rc $vm_rc)"
log=$work/cu.console
v() { vm_val "$log" "$1"; }
pcr() { { head -c 32 /dev/zero; echo "$1" | xxd -r -p; } | sha256sum | cut -c1-64; }
pcr16=$(pcr "$digest")
pcr17=$(pcr "$(printf abc | sha256sum | cut -c1-64)")

if ! grep -aq '^VMTEST END' "$log"; then
    bad "guest did not finish (no VMTEST END)"
else
    grep -aq '^VMTEST error' "$log" &&
        bad "guest: $(grep -a '^VMTEST error' "$log" | head -n1 | tr -d '\r')"
    # KEY VALUE: the guest's line "VMTEST KEY" must carry exactly VALUE.
    while read -r key want; do
        [[ -z $key || $key == '#'* ]] && continue
        check "$key" "$(v "$key")" "$want"
    done <<EXPECT
exit 0
cuse-ctl yes
start-rc 0
dev yes
pid-alive yes
# second device: -M 60 -m 7, --flags not-need-init,startup-clear
dev1-start-rc 0
dev1-sysfs 60:7
dev1-node 3c:7
dev1-e-out tpmEstablished is 0
dev1-s-rc 0
dev1-gone yes
# -M 1 (taken): no device, and the daemon does not linger
bad-lingers no
bad-dev no
# before CMD_INIT
c0-out ptm capability is 0x16fff
e0-rc 1
e0-err TPM result from PTM_GET_TPMESTABLISHED: 0xa
g0-out ptm configuration flags: 0x0
b0-out TPM buffersize: 3000|minimum size  : 2808|maximum size  : 4096
b2-out TPM buffersize: 4096|minimum size  : 2808|maximum size  : 4096
raw-notinit 80010000000a00000101
i0-rc 0
# raw write()/read()
raw-startup-write-rc 0
raw-startup 80010000000a00000000
raw-short 80010000000a0000009a
raw-empty-read-rc 0
raw-empty-read
# tpm2-tools
t-getrandom-rc 0
t-pcrextend-rc 0
t-pcrread-rc 0
t-pcr16 $pcr16
# ctrl ioctls while running
e1-out tpmEstablished is 0
h1-rc 0
e2-out tpmEstablished is 1
t-pcr17 $pcr17
r0-rc 1
r0-err TPM result from PTM_RESET_TPMESTABLISHED: 0x3d
r3-rc 0
e3-out tpmEstablished is 0
l3-rc 0
l5-rc 1
l5-err Locality outside valid range of [0..4].
l0-rc 0
C-rc 0
v-rc 0
volatile-file 1
b3-out TPM buffersize: 4096|minimum size  : 2808|maximum size  : 4096
b4-rc 1
b4-err TPM result from PTM_SET_BUFFERSIZE: 0xa
info-out {"TPMSpecification":{"family":"2.0","level":0,"revision":164},"TPMAttributes":{"manufacturer":"id:00001014","version":"id:20191023","model":"swtpm"}}
lock-rc 0
# state blobs
save-perm-rc 0
save-vol-rc 0
load-running-rc 1
load-running-err TPM result from PTM_SET_STATEBLOB: 0xa
stop-rc 0
e4-rc 1
e4-err TPM result from PTM_GET_TPMESTABLISHED: 0xa
load-perm-rc 0
load-vol-rc 0
i1-rc 0
t-pcr16-restored $pcr16
# Debian's swtpm_ioctl
d-c-out ptm capability is 0x16fff
d-e-out tpmEstablished is 0
d-info-out {"TPMSpecification":{"family":"2.0","level":0,"revision":164},"TPMAttributes":{"manufacturer":"id:00001014","version":"id:20191023","model":"swtpm"}}
d-h-rc 0
d-e2-out tpmEstablished is 1
d-r-rc 0
d-save-perm-rc 0
o-save-perm-rc 0
d-save-vol-rc 0
d-stop-rc 0
d-load-perm-rc 0
d-load-vol-rc 0
d-i-rc 0
t-pcr16-deb $pcr16
# edge cases (guest/cuse_raw.py)
py-second-open EBUSY
py-split-read 12 80010000001c00000000 18 0
py-big-write 4096 80010000000a00000142
py-set-datafd EINVAL
py-unknown-ioctl EINVAL
py-reset-est-loc5 0x3d
py-hash-start 0x0
py-hash-data-big 0x9
py-hash-data 0x0
py-hash-end 0x0
py-getblob 0x0 total>3072 3072
py-write-during-blob EIO
py-reopen-command 80010000001c000000000010
py-reopen ok
py-rc 0
t-pcr17-after-py $pcr17
# shutdown
s-rc 0
exited yes
dev-gone yes
log-errors 0
stderr 0
EXPECT
    check_re "sysfs dev of /dev/vtpm0" "$(v sysfs)" '^[0-9]+:[0-9]+$'
    check_re "second device: GetRandom without -i (started by --flags)" "$(v dev1-getrandom)" \
        '^80010000001c000000000010[0-9a-f]{32}$'
    check_re "GetRandom by write()/read()" "$(v raw-getrandom)" '^80010000001c000000000010[0-9a-f]{32}$'
    check_re "tpm2_getrandom output" "$(v t-random)" '^[0-9a-f]{32}$'
    check_re "PCR 16 changed after the save" "$(v t-pcr16-changed)" "^[0-9a-f]{64}\$"
    [[ $(v t-pcr16-changed) != "$pcr16" ]] || bad "PCR 16 did not change after the second extend"
    check_re "blob sizes (permanent, volatile)" "$(v blob-sizes)" '^[0-9]{3,} [0-9]{4,}$'
    vol=$(v blob-sizes | cut -d' ' -f2)
    ((vol > 3072)) || bad "volatile blob of $vol bytes does not need several packets"
    check_re "permanent blob: Debian's swtpm_ioctl and ours fetch the same bytes" "$(v perm-same)" '^yes [0-9]+$'
    check_re "Debian's swtpm_ioctl: volatile blob size" "$(v dvol-size)" '^[0-9]{4,}$'
    check_re "state files after -s" "$(v files)" '(^| )tpm2-00\.permall( |$)'
    check_re "permall size" "$(v permall-size)" '^[1-9][0-9]{2,}$'
fi
grep -a '^VMTEST time' "$log" | tr -d '\r' | awk '{printf "%s %s  ", $3, $4} END {print ""}'
((failed)) || [[ -n ${VM_DEBUG:-} ]] && vm_dump cu 200
vm_finish
