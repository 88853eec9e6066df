#!/usr/bin/env bash
# QEMU as the client of $SWTPM_EXE (issue 6): boots Debian's kernel under
# qemu-system-x86_64 (TCG) with a vTPM backed by the emulator's ctrl socket,
# once with tpm-tis and once with tpm-crb. The guest (busybox initramfs, see
# guest-init.sh) prints PCRs 0-7 and extends PCR 16 through /dev/tpm0; the
# host checks that SeaBIOS measured PCRs 0-7, that PCR 16 holds
# SHA256(0^32 || digest), and that the emulator shut down cleanly on QEMU's
# CMD_SHUTDOWN with its permanent state written.
#
# Needs: qemu-system-x86, linux-image-amd64, busybox-static, kmod, cpio.
# Env: SWTPM_EXE (default: swtpm in PATH), VM_DEVICES (default "tpm-tis tpm-crb"),
#      VM_KERNEL (default: newest /boot/vmlinuz-*),
#      VM_KEEP=1 keeps the work directory.
# Exit: 0 pass, 1 fail, 77 skip (qemu or kernel not installed and not
# installable).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
SWTPM_EXE=${SWTPM_EXE:-$(command -v swtpm || true)}
QEMU=${QEMU:-qemu-system-x86_64}

devices=${VM_DEVICES:-tpm-tis tpm-crb}

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; failed=1; }

# missing packages are installed if possible (lib.sh vm_need); skip otherwise
. "$here/lib.sh"
vm_need 'command -v "$QEMU" >/dev/null' qemu-system-x86 "$QEMU not found"
[[ -n ${VM_KERNEL:-} ]] || vm_need '[[ -n $(vm_newest_kernel) ]]' linux-image-amd64 "no /boot/vmlinuz-*"
kernel=${VM_KERNEL:-$(vm_newest_kernel)}
[[ -e $kernel ]] || skip "no $kernel"
[[ -r $kernel ]] || skip "$kernel is not readable by $(id -un) (Debian installs it mode 0600)"
vm_need '[[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1' busybox-static "no static /bin/busybox"
vm_need 'command -v modprobe >/dev/null' kmod "no modprobe"
[[ -n $SWTPM_EXE && -x $SWTPM_EXE ]] || { echo "FAIL: SWTPM_EXE not set/executable"; exit 1; }
kver=${kernel##*/vmlinuz-}

work=$(mktemp -d /tmp/vtpm-vm.XXXXXX)
swtpm_pid= qemu_pid=
cleanup() {
    [[ -n $qemu_pid ]] && kill "$qemu_pid" 2>/dev/null
    [[ -n $swtpm_pid ]] && kill "$swtpm_pid" 2>/dev/null
    [[ -n ${VM_KEEP:-} ]] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# tpm_tis / tpm_crb are built into Debian's kernel; mkinitramfs.sh skips
# built-in modules and resolves the rest with modprobe --show-depends.
t0=$(date +%s.%N)
"$here/mkinitramfs.sh" "$kver" "$work/initrd.gz" tpm_tis tpm_crb ||
    { echo "FAIL: mkinitramfs"; exit 1; }

hex2bin() { if command -v xxd >/dev/null; then xxd -r -p; else /bin/busybox xxd -r -p; fi; }
digest=$(printf 'vtpmd vm test' | sha256sum | cut -c1-64)
expected=$({ head -c 32 /dev/zero; echo "$digest" | hex2bin; } | sha256sum | cut -c1-64)
expected=${expected^^}
zero=$(printf '0%.0s' {1..64})
# TPM2 response: TPM_ST_SESSIONS, size 19, TPM_RC_SUCCESS, parameterSize 0,
# one session: empty nonce, continueSession, empty hmac.
rsp_ok=80020000001300000000000000000000010000

failed=0
for dev in $devices; do
    d=$work/$dev
    mkdir -p "$d/state"
    ts=$(date +%s.%N)
    "$SWTPM_EXE" socket --tpm2 --tpmstate dir="$d/state" \
        --ctrl type=unixio,path="$d/ctrl" \
        --log file="$d/swtpm.log",level=1 > "$d/swtpm.out" 2>&1 &
    swtpm_pid=$!
    for _ in $(seq 100); do [[ -S $d/ctrl ]] && break; sleep 0.05; done
    if [[ ! -S $d/ctrl ]]; then
        fail "$dev: emulator did not create $d/ctrl"; cat "$d/swtpm.out"
        kill "$swtpm_pid" 2>/dev/null; wait "$swtpm_pid" 2>/dev/null; swtpm_pid=
        continue
    fi

    # TCG: KVM on this kind of host does not boot Debian's kernel. The TCG
    # default CPU reports AMD, and the kernel then disables the TPM RNG for
    # CRB, so claim Intel.
    timeout 90 "$QEMU" -accel tcg -cpu qemu64,vendor=GenuineIntel -m 256 -smp 1 \
        -nodefaults -no-user-config -nographic -display none -monitor none \
        -net none -no-reboot \
        -serial file:"$d/console.log" \
        -kernel "$kernel" -initrd "$work/initrd.gz" \
        -append "console=ttyS0 panic=-1 loglevel=4 vmtest_digest=$digest" \
        -chardev socket,id=chrtpm,path="$d/ctrl" \
        -tpmdev emulator,id=tpm0,chardev=chrtpm \
        -device "$dev",tpmdev=tpm0 \
        < /dev/null > "$d/qemu.out" 2>&1 &
    qemu_pid=$!
    wait "$qemu_pid"; qrc=$?; qemu_pid=
    # QEMU sends CMD_SHUTDOWN when it quits; the emulator then exits by itself.
    for _ in $(seq 100); do kill -0 "$swtpm_pid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$swtpm_pid" 2>/dev/null; then
        fail "$dev: emulator still running 5 s after QEMU quit"
        kill "$swtpm_pid"
    fi
    wait "$swtpm_pid"; src=$?; swtpm_pid=
    te=$(date +%s.%N)
    printf '%s: qemu rc=%d swtpm rc=%d %.1f s\n' "$dev" "$qrc" "$src" "$(awk "BEGIN{print $te - $ts}")"

    log=$d/console.log
    val() { grep -a "^VMTEST $1" "$log" | head -n1 | tr -d '\r' | awk '{print $NF}'; }
    ok=1
    bad() { fail "$dev: $*"; ok=0; }
    ((qrc == 0)) || bad "QEMU exited with $qrc$( ((qrc == 124)) && echo ' (timeout 90 s)')"
    if grep -aq '^VMTEST END' "$log"; then
        grep -aq '^VMTEST error' "$log" && bad "$(grep -a '^VMTEST error' "$log" | head -n1)"
        [[ $(val tpm-version) == 2 ]] || bad "guest TPM version is '$(val tpm-version)', want 2"
        for n in 0 1 2 3 4 5 6 7; do
            v=$(val "pcr-sha256 $n ")
            [[ $v =~ ^[0-9A-Fa-f]{64}$ && ${v^^} != "$zero" ]] ||
                bad "PCR $n is '$v' (want non-zero: SeaBIOS measures PCRs 0-7)"
        done
        [[ $(val "pcr-sha256 16 ") == "$zero" ]] || bad "PCR 16 before extend is '$(val "pcr-sha256 16 ")'"
        [[ $(val cmd-bytes) == 65 ]] || bad "guest built a $(val cmd-bytes)-byte command, want 65"
        [[ $(val extend-rsp) == "$rsp_ok" ]] || bad "TPM2_PCR_Extend response '$(val extend-rsp)', want $rsp_ok"
        [[ $(val pcr16-after) == "$expected" ]] ||
            bad "PCR 16 after extend '$(val pcr16-after)', want $expected"
    else
        bad "guest did not finish (no VMTEST END)"
    fi
    ((src == 0)) || bad "emulator exited with $src"
    [[ -s $d/state/tpm2-00.permall ]] || bad "no permanent state $d/state/tpm2-00.permall"
    if ((ok)); then
        echo "ok: $dev: PCRs 0-7 non-zero, PCR 16 = $expected, clean shutdown"
    else
        echo "--- console ($dev) ---"; tail -n 40 "$log" | tr -d '\r'
        echo "--- qemu ---"; cat "$d/qemu.out"
        echo "--- emulator ---"; cat "$d/swtpm.out"; tail -n 20 "$d/swtpm.log" 2>/dev/null
    fi
done
printf 'total %.1f s\n' "$(awk "BEGIN{print $(date +%s.%N) - $t0}")"
((failed == 0)) && echo PASS || echo FAIL
exit "$failed"
