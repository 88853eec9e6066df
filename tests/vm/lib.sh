# shellcheck shell=bash
# Shared helpers of the host-side VM tests (sourced, bash). See README.md.
#
# vm_setup           finds qemu and the kernel (installs them if missing and
#                    possible, else exit 77), makes $work
# vm_need TEST PKG WHAT   installs PKG unless TEST holds; exit 77 if it fails
# vm_initramfs OUT INIT MODULE...   initramfs with INIT as /init
# vm_run_9p NAME GUEST_SCRIPT TIMEOUT [CMDLINE_WORD...]
#                    boots the 9p guest that runs GUEST_SCRIPT (a file of this
#                    checkout, run with bash inside chroot of the host root);
#                    console in $work/NAME.console, QEMU's rc in $vm_rc
# vm_val LOG KEY     the rest of the first "VMTEST KEY ..." line of LOG
# check DESC GOT WANT  / bad MSG   record a result; vm_finish prints PASS/FAIL
#
# Env: QEMU (default qemu-system-x86_64), VM_KERNEL (default newest
#      /boot/vmlinuz-*), VM_KEEP=1 keeps the work directory.

vm_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
QEMU=${QEMU:-qemu-system-x86_64}
failed=0
work=

skip() { echo "SKIP: $*"; exit 77; }
bad() { echo "FAIL: $*"; failed=1; }
# check DESC GOT WANT
check() {
    if [[ $2 == "$3" ]]; then echo "ok: $1"
    else bad "$1: got '$2', want '$3'"; fi
}
# check_re DESC GOT REGEX
check_re() {
    if [[ $2 =~ $3 ]]; then echo "ok: $1"
    else bad "$1: got '$2', want /$3/"; fi
}

now() { date +%s.%N; }
elapsed() { awk "BEGIN{printf \"%.1f\", $(now) - $1}"; }

vm_cleanup_hooks=()
vm_cleanup() {
    local h
    for h in "${vm_cleanup_hooks[@]}"; do eval "$h"; done
    if [[ -n $work ]]; then
        [[ -n ${VM_KEEP:-} ]] && echo "kept $work" || rm -rf "$work"
    fi
}

# vm_install PKG...: installs Debian packages when running as root with
# apt-get (bounded); 0 if that worked. scripts/install-deps.sh normally did it.
vm_install() {
    [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null || return 1
    echo "installing $* ..."
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 && return 0
    timeout 120 apt-get update -qq >/dev/null 2>&1
    timeout 300 apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}

# vm_need TEST PKG WHAT: unless `TEST` (a shell condition) holds, install PKG;
# skip if it still does not hold.
vm_need() {
    eval "$1" && return 0
    vm_install "$2"
    eval "$1" || skip "$3 (even after trying to install package $2)"
}

vm_newest_kernel() { ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1; }

vm_setup() {
    vm_need 'command -v "$QEMU" >/dev/null' qemu-system-x86 "$QEMU not found"
    [[ -n ${VM_KERNEL:-} ]] || vm_need '[[ -n $(vm_newest_kernel) ]]' linux-image-amd64 "no /boot/vmlinuz-*"
    kernel=${VM_KERNEL:-$(vm_newest_kernel)}
    [[ -e $kernel ]] || skip "no $kernel"
    [[ -r $kernel ]] || skip "$kernel is not readable by $(id -un) (Debian installs it mode 0600)"
    vm_need '[[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1' busybox-static "no static /bin/busybox"
    vm_need 'command -v modprobe >/dev/null' kmod "no modprobe"
    vm_need 'command -v xxd >/dev/null' xxd "no xxd"
    kver=${kernel##*/vmlinuz-}
    [[ -d /lib/modules/$kver ]] || skip "no /lib/modules/$kver for $kernel"
    work=$(mktemp -d /tmp/vtpm-vm.XXXXXX)
    trap vm_cleanup EXIT
    trap 'exit 143' TERM INT
}

# vm_initramfs OUT INIT MODULE...
vm_initramfs() {
    local out=$1 init=$2
    shift 2
    VM_INIT=$init "$vm_here/mkinitramfs.sh" "$kver" "$out" "$@"
}

# The 9p guest's modules: virtio-pci transport, 9p, and the test's own.
vm_9p_modules=(virtio_pci 9pnet_virtio 9p)
vm_extra_modules=()   # set by the test: tpm_vtpm_proxy, cuse, ...

# vm_run_9p NAME GUEST_SCRIPT TIMEOUT [CMDLINE_WORD...]
vm_run_9p() {
    local name=$1 script=$2 tmo=$3
    shift 3
    local initrd=$work/initrd-9p.gz
    if [[ ! -f $initrd ]]; then
        vm_initramfs "$initrd" "$vm_here/guest-9p-init.sh" "${vm_9p_modules[@]}" \
            "${vm_extra_modules[@]}" || { bad "mkinitramfs"; vm_rc=1; return 1; }
    fi
    # TCG: KVM on this kind of host does not boot Debian's kernel. -cpu: see
    # qemu_tpm.sh. The host root is exported read-only; multidevs=remap keeps
    # inode numbers unique across the host's mounts.
    # This checkout and the directories of the files passed to the guest
    # (vmtest_X=/path: the binaries under test) must stay visible in the guest
    # even if they are in /tmp (guest-9p-init.sh).
    local keep=$(cd "$vm_here/../.." && pwd) a
    for a in "$@"; do
        case $a in vmtest_*=/*) [[ -e ${a#*=} ]] && keep+=:$(dirname "${a#*=}") ;; esac
    done
    timeout "$tmo" "$QEMU" -accel tcg -cpu qemu64,vendor=GenuineIntel -m 512 -smp 1 \
        -nodefaults -no-user-config -nographic -display none -monitor none \
        -net none -no-reboot \
        -serial file:"$work/$name.console" \
        -kernel "$kernel" -initrd "$initrd" \
        -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
        -append "console=ttyS0 panic=-1 loglevel=4 vmtest_script=$script vmtest_keep=$keep ${VM_DEBUG:+vmtest_debug=1 }$*" \
        < /dev/null > "$work/$name.qemu" 2>&1
    vm_rc=$?
    if ((vm_rc == 124)); then bad "$name: QEMU killed after $tmo s"
    elif ((vm_rc != 0)); then bad "$name: QEMU exited with $vm_rc"; fi
    return 0
}

# vm_val LOG KEY: the words after "VMTEST KEY" on its first line (CR stripped).
vm_val() {
    grep -a "^VMTEST $2\( \|\r\?\$\)" "$1" | head -n1 | tr -d '\r' | cut -d' ' -f$(($(wc -w <<<"$2") + 2))-
}

# vm_dump NAME: console and QEMU output, for failure reports.
vm_dump() {
    echo "--- console ($1) ---"; tr -d '\r' < "$work/$1.console" | tail -n "${2:-80}"
    echo "--- qemu ($1) ---"; cat "$work/$1.qemu"
}

vm_finish() {
    ((failed == 0)) && echo PASS || echo FAIL
    exit "$failed"
}
