#!/usr/bin/env bash
# vtpmd supervising a `swtpm cuse` instance on a real CUSE driver and a
# `swtpm chardev --vtpm-proxy` instance on the kernel's vTPM proxy (issue 5:
# every front end of swtpm runs under vtpmd). This host's kernel has neither,
# so a Debian kernel under QEMU (TCG) runs guest/vtpmd_devices.sh inside
# chroot of the host root (9p, read-only). Asserted here, on the guest's
# output:
#  - `vtpmctl create k1 --start -- cuse -n vtpmk1 --tpm2 ...` gives a running
#    instance whose parent is vtpmd (it does not daemonize) and /dev/vtpmk1;
#  - tpm2-tools through the device TCTI: getrandom, NV define + write;
#  - kill -9 of the instance: vtpmd restarts it, /dev/vtpmk1 is back and the
#    NV index holds what was written before;
#  - vtpmctl stop: state stopped, the device goes away, permall in
#    STATE_ROOT/k1/state;
#  - the same for `chardev --vtpm-proxy --tpm2`: the guest kernel's TPM driver
#    takes the proxy device, tpm2-tools use /dev/tpmrmN, NV survives kill -9
#    (the restarted instance makes a new proxy device), stop removes it;
#  - vtpmd ends with status 0 on SIGTERM.
#
# Needs: qemu-system-x86, linux-image-amd64, busybox-static, kmod, tpm2-tools,
# python3. Env: VTPMD_EXE, VTPMCTL_EXE. Exit 0 / 1 / 77.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

VTPMD_EXE=${VTPMD_EXE:-}
VTPMCTL_EXE=${VTPMCTL_EXE:-}
[[ -n $VTPMD_EXE && -x $VTPMD_EXE ]] || { echo "FAIL: VTPMD_EXE not set/executable"; exit 1; }
[[ -n $VTPMCTL_EXE && -x $VTPMCTL_EXE ]] || { echo "FAIL: VTPMCTL_EXE not set/executable"; exit 1; }
VTPMD_EXE=$(realpath "$VTPMD_EXE") VTPMCTL_EXE=$(realpath "$VTPMCTL_EXE")
vm_setup
vm_need 'command -v tpm2_getrandom >/dev/null' tpm2-tools "no tpm2-tools"
vm_need 'command -v python3 >/dev/null' python3 "no python3"

t0=$(now)
vm_extra_modules=(cuse tpm_vtpm_proxy)
vm_run_9p vc "$vm_here/guest/vtpmd_devices.sh" 120 \
    vmtest_vtpmd="$VTPMD_EXE" vmtest_vtpmctl="$VTPMCTL_EXE"
echo "guest run: $(elapsed "$t0") s (qemu rc $vm_rc)"
log=$work/vc.console
v() { vm_val "$log" "$1"; }

if ! grep -aq '^VMTEST END' "$log"; then
    bad "guest did not finish (no VMTEST END)"
else
    grep -aq '^VMTEST error' "$log" &&
        bad "guest: $(grep -a '^VMTEST error' "$log" | head -n1 | tr -d '\r')"
    while read -r key want; do
        [[ -z $key || $key == '#'* ]] && continue
        check "$key" "$(v "$key")" "$want"
    done <<EXPECT
exit 0
vtpmd-up yes
pool-parked 4
create-rc 0
k1-from-pool 1
dev yes
state running
parent-is-vtpmd yes
t-getrandom-rc 0
t-nvdefine-rc 0
t-nvwrite-rc 0
restarted running 1
t-nvread-rc 0
t-nvread vtpmd-k1
stop-rc 0
stopped stopped
dev-gone yes
permall yes
p-create-rc 0
p1-from-pool 1
p-dev yes
p-state running
p-getrandom-rc 0
p-nvdefine-rc 0
p-nvwrite-rc 0
p-restarted running 1
p-nvread-rc 0
p-nvread vtpmd-p1
p-stop-rc 0
p-dev-gone yes
vtpmd-rc 0
EXPECT
    check_re "tpm2_getrandom output" "$(v t-random)" '^[0-9a-f]{32}$'
    check_re "tpm2_getrandom output (proxy)" "$(v p-random)" '^[0-9a-f]{32}$'
fi
((failed)) || [[ -n ${VM_DEBUG:-} ]] && vm_dump vc 200
vm_finish
