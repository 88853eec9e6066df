#!/usr/bin/env bash
# `swtpm chardev --vtpm-proxy` on a real /dev/vtpmx (data-channel.md §7): this
# host's kernel has no tpm_vtpm_proxy, so a Debian kernel under QEMU (TCG) runs
# guest/vtpm_proxy.sh inside chroot of the host root (9p, read-only), with our
# build/swtpm and swtpm_ioctl and Debian's tpm2-tools. Asserted here:
#  - the emulator prints swtpm's "New TPM device: /dev/tpmN (major/minor = M/m)"
#    line, matching the kernel's sysfs dev; /dev/tpmN and /dev/tpmrmN appear;
#  - the guest kernel starts and uses the TPM (sysfs PCR read);
#  - tpm2-tools via /dev/tpmrmN: getrandom, pcrextend + pcrread (exact value),
#    NV define/write/read (exact bytes; and 2 KiB in 1 KiB commands), an ECC
#    primary key used by a second tool (context save/load in the kernel's
#    resource manager);
#  - CMD_SHUTDOWN on the ctrl socket (our swtpm_ioctl -s): exit 0, the kernel
#    removes the device, the state files are on disk; a second start on the same
#    state reads the NV index back;
#  - the ctrl socket answers (swtpm_ioctl -c) while the kernel owns the device;
#  - a second device (/dev/tpm1) next to the first, served by Debian's
#    /usr/bin/swtpm as the reference: the same device line (up to numbers);
#    with --flags startup-none the kernel sends TPM2_Startup; CMD_SHUTDOWN;
#  - errors (run as nobody: /dev/vtpmx not accessible; the ioctl not
#    permitted; with --log) give the same exit status and the same message
#    in the same place as Debian's swtpm;
#  - --print-capabilities: the device line, then the JSON, then the device is
#    gone (as Debian's swtpm);
#  - the device fd is close-on-exec (the kernel hands it out without);
#  - the emulator starts the TPM itself (the kernel sends no TPM_Startup);
#  - a second start on the same state, on the epoll loop, with --flags
#    startup-none (the kernel then sends TPM2_Startup), ended by SIGTERM;
#  - with VM_TPM12=1 also TPM 1.2 (the driver's caps/pcrs sysfs files read
#    through the proxy); opt-in because libtpms generates an RSA key at every
#    TPM 1.2 start, which takes 5-40 s under TCG.
#
# Needs: qemu-system-x86, linux-image-amd64, busybox-static, kmod, tpm2-tools.
# Env: SWTPM_EXE, SWTPM_IOCTL_EXE (our binaries; absolute paths on the host
# root, which the guest sees at the same place). Exit 0 / 1 / 77.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

SWTPM_EXE=${SWTPM_EXE:-}
SWTPM_IOCTL_EXE=${SWTPM_IOCTL_EXE:-$(dirname "${SWTPM_EXE:-.}")/tools/swtpm_ioctl}
[[ -n $SWTPM_EXE && -x $SWTPM_EXE ]] || { echo "FAIL: SWTPM_EXE not set/executable"; exit 1; }
[[ -x $SWTPM_IOCTL_EXE ]] || { echo "FAIL: SWTPM_IOCTL_EXE ($SWTPM_IOCTL_EXE) not executable"; exit 1; }
SWTPM_EXE=$(realpath "$SWTPM_EXE") SWTPM_IOCTL_EXE=$(realpath "$SWTPM_IOCTL_EXE")
vm_setup
vm_need 'command -v tpm2_getrandom >/dev/null' tpm2-tools "no tpm2-tools"

digest=$(printf 'vtpmd vtpm-proxy test' | sha256sum | cut -c1-64)
want_pcr=$({ head -c 32 /dev/zero; echo "$digest" | xxd -r -p; } | sha256sum | cut -c1-64)
zero=$(printf '0%.0s' {1..64})

t0=$(now)
vm_extra_modules=(tpm_vtpm_proxy)
vm_run_9p vp "$vm_here/guest/vtpm_proxy.sh" $((${VM_TPM12:+60} + 120)) ${VM_TPM12:+vmtest_tpm12=1} \
    vmtest_swtpm="$SWTPM_EXE" vmtest_ioctl="$SWTPM_IOCTL_EXE" vmtest_digest="$digest"
echo "guest run: $(elapsed "$t0") s (qemu rc $vm_rc)"
log=$work/vp.console
v() { vm_val "$log" "$1"; }

if ! grep -aq '^VMTEST END' "$log"; then
    bad "guest did not finish (no VMTEST END)"
else
    grep -a '^VMTEST error' "$log" | tr -d '\r' | while read -r l; do echo "FAIL: guest: $l"; done
    grep -aq '^VMTEST error' "$log" && failed=1
    check "guest script exit status" "$(v exit)" 0
    check "/dev/vtpmx present" "$(v vtpmx)" yes
    check "no TPM before" "$(v tpm-before)" 0
    tags="tpm2 ref tpm2b"
    [[ -n ${VM_TPM12:-} ]] && tags+=" tpm12"
    for t in $tags; do
        line=$(v $t-newdev)
        check_re "$t: device line" "$line" '^New TPM device: /dev/tpm[0-9]+ \(major/minor = [0-9]+/[0-9]+\)$'
        n=$(sed -n 's|.*/dev/tpm\([0-9]*\) .*|\1|p' <<<"$line")
        mm=$(sed -n 's|.*= \([0-9]*\)/\([0-9]*\))$|\1:\2|p' <<<"$line")
        check "$t: sysfs dev of tpm$n is the printed major/minor" "$(v $t-sysdev)" "$mm"
        if [[ $t == tpm12 ]]; then
            check "$t: nodes" "$(v $t-nodes)" "tpm$n"
            check "$t: TPM version seen by the kernel" "$(v $t-version)" 1
        else
            check "$t: nodes" "$(v $t-nodes)" "tpm$n tpmrm$n"
            check "$t: TPM version seen by the kernel" "$(v $t-version)" 2
        fi
        check "$t: pid file" "$(v $t-pidfile)" ok
        fl=$(v $t-proxy-fd-flags)
        if [[ $t == ref ]]; then
            :   # swtpm leaves the fd as the kernel made it (without close-on-exec)
        elif [[ $fl =~ ^[0-7]+$ ]]; then
            check "$t: proxy fd has close-on-exec" "$(( (8#$fl & 8#2000000) != 0 ))" 1
        else
            bad "$t: no anon_inode:[vtpms] fd found in the emulator (flags '$fl')"
        fi
        if [[ $t == ref ]]; then
            check "$t: TPM2_Startup sent by the kernel (--flags startup-none)" "$(v $t-startups-received)" 1
            check "$t: swtpm_ioctl -s" "$(v $t-shutdown-rc)" 0
            check "$t: emulator exit status after CMD_SHUTDOWN" "$(v $t-exit)" 0
        elif [[ $t == tpm2b ]]; then
            check "$t: TPM2_Startup sent by the kernel (--flags startup-none)" "$(v $t-startups-received)" 1
            check "$t: emulator exit status after SIGTERM" "$(v $t-exit)" 0
        else
            check "$t: no TPM_Startup from the kernel (the emulator sent it)" "$(v $t-startups-received)" 0
            check "$t: swtpm_ioctl -s" "$(v $t-shutdown-rc)" 0
            check "$t: emulator exit status after CMD_SHUTDOWN" "$(v $t-exit)" 0
        fi
        check "$t: kernel removed tpm$n after the emulator ended" "$(v $t-gone)" yes
        check "$t: nothing on stderr" "$(v $t-stderr)" 0
    done
    # Debian's swtpm prints the same line (up to the numbers)
    check "device line format = Debian swtpm's" "$(v tpm2-newdev | tr -s 0-9 N)" "$(v ref-newdev | tr -s 0-9 N)"
    # errors as nobody: /dev/vtpmx not accessible, then the ioctl not
    # permitted, then the same with --log (exit status/stdout/stderr[/log])
    for k in err-0600 err-0666 err-log; do
        check "error output like Debian swtpm's ($k)" "$(v ours-$k)" "$(v ref-$k)"
    done
    check "error: /dev/vtpmx not accessible" "$(v ours-err-0600)" "1 /swtpm: Could not open /dev/vtpmx: Permission denied"
    # --print-capabilities: device line, then JSON (rc/line 1/JSON start/lines/stderr bytes)
    check "--vtpm-proxy --print-capabilities like Debian swtpm's" "$(v ours-printcaps)" "$(v ref-printcaps)"
    check_re "--vtpm-proxy --print-capabilities" "$(v ours-printcaps)" '^0 New TPM device: /dev/tpmN \(major/minor = N/N\)/\{ "type": "swtpm/2/0$'
    check "device gone after --print-capabilities" "$(v ours-printcaps-left)" 0
    check "second device (while /dev/tpm0 exists)" "$(v ref-newdev | grep -o '/dev/tpm[0-9]*')" /dev/tpm1
    check "Debian swtpm: tpm2_getrandom rc" "$(v ref-getrandom-rc)" 0
    check_re "Debian swtpm: tpm2_getrandom output" "$(v ref-random)" '^[0-9a-f]{16}$'
    check "first device still there after the second went away" "$(v tpm2-still-there)" yes
    check_re "tpm2: state files" "$(v tpm2-files)" '(^| )tpm2-00\.permall( |$)'
    check_re "tpm2: permall size" "$(v tpm2-permall-size)" '^[1-9][0-9]{2,}$'
    check "tpm2_getrandom rc" "$(v tpm2-getrandom-rc)" 0
    check_re "tpm2_getrandom output" "$(v tpm2-random)" '^[0-9a-f]{32}$'
    check "PCR 16 (sysfs) before extend" "$(v tpm2-pcr16-before)" "${zero^^}"
    check "tpm2_pcrextend rc" "$(v tpm2-pcrextend-rc)" 0
    check "tpm2_pcrread rc" "$(v tpm2-pcrread-rc)" 0
    check "PCR 16 after extend (tpm2_pcrread)" "$(v tpm2-pcr16)" "$want_pcr"
    check "PCR 16 after extend (kernel sysfs)" "$(v tpm2-pcr16-sysfs)" "${want_pcr^^}"
    nvhex=$(printf 'vtpm-proxy NV ok' | od -An -tx1 -v | tr -d ' \n')
    check "tpm2_nvdefine rc" "$(v tpm2-nvdefine-rc)" 0
    check "tpm2_nvwrite rc" "$(v tpm2-nvwrite-rc)" 0
    check "tpm2_nvread rc" "$(v tpm2-nvread-rc)" 0
    check "NV bytes read back" "$(v tpm2-nv)" "$nvhex"
    for k in nvdefine-big nvwrite-big nvread-big createprimary readpublic; do
        check "tpm2 $k rc" "$(v tpm2-$k-rc)" 0
    done
    check "2 KiB NV index read back" "$(v tpm2-nv-big)" same
    check "ECC primary through the resource manager" "$(v tpm2-primary-pub)" yes
    check "NV bytes after restart on the same state" "$(v tpm2b-nv)" "$nvhex"
    check "ctrl channel: swtpm_ioctl -c rc" "$(v tpm2-ioctl-c-rc)" 0
    check_re "ctrl channel: capabilities" "$(v tpm2-ioctl-caps)" '^ptm capability is 0x[0-9a-f]+$'
    if [[ -n ${VM_TPM12:-} ]]; then
        check_re "tpm12: state files" "$(v tpm12-files)" '(^| )tpm-00\.permall( |$)'
        check_re "TPM 1.2 caps via the proxy" "$(v tpm12-caps)" '^TCG version: 1\.2'
        check_re "TPM 1.2 PCR-00 via the proxy" "$(v tpm12-pcr00)" '^PCR-00: ([0-9A-F]{2} ){19}[0-9A-F]{2} ?$'
    fi
    check "no TPM left" "$(v tpm-after)" 0
fi
((failed)) || [[ -n ${VM_DEBUG:-} ]] && vm_dump vp 150
vm_finish
