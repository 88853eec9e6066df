#!/usr/bin/env bash
# mkinitramfs.sh KVER OUT [MODULE...]
# Builds a gzip'ed newc initramfs with busybox-static as /bin/*, guest-init.sh
# (or the script in $VM_INIT) as /init and the given kernel modules (plus their dependencies, resolved with
# `modprobe --show-depends` against /lib/modules/KVER). Modules that are built
# into the kernel (modules.builtin) are skipped.
set -euo pipefail
kver=$1 out=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
busybox=${BUSYBOX:-/bin/busybox}
[[ -x $busybox ]] || { echo "mkinitramfs: no $busybox (package busybox-static)" >&2; exit 1; }
if ldd "$busybox" >/dev/null 2>&1; then    # ldd fails on static binaries
    echo "mkinitramfs: $busybox is not static (install busybox-static)" >&2; exit 1
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
cp "$busybox" "$root/bin/busybox"
for a in $("$busybox" --list); do
    [[ $a == busybox ]] || ln -s busybox "$root/bin/$a"
done
install -m 0755 "${VM_INIT:-$here/guest-init.sh}" "$root/init"

: > "$root/modules.list"
moddir=/lib/modules/$kver
for m in "$@"; do
    if [[ -f $moddir/modules.builtin ]] &&
       grep -Eq "/${m//_/[_-]}\.ko\$" "$moddir/modules.builtin"; then
        continue                       # built in: nothing to load
    fi
    # "insmod /lib/modules/.../x.ko[.xz] [params]" lines, dependencies first.
    while read -r kind path _; do
        [[ $kind == insmod ]] || continue
        base=$(basename "$path")
        case $base in
            *.xz) xz -dc "$path" > "$root/lib/modules/${base%.xz}"; base=${base%.xz} ;;
            *.zst) zstd -qdc "$path" > "$root/lib/modules/${base%.zst}"; base=${base%.zst} ;;
            *) cp "$path" "$root/lib/modules/$base" ;;
        esac
        grep -qx "/lib/modules/$base" "$root/modules.list" ||
            echo "/lib/modules/$base" >> "$root/modules.list"
    done < <(modprobe -S "$kver" --show-depends "$m")
done

if command -v cpio >/dev/null; then cpio_cmd=(cpio --quiet -o -H newc -R 0:0)
else cpio_cmd=("$busybox" cpio -o -H newc); fi
(cd "$root" && find . | LC_ALL=C sort | "${cpio_cmd[@]}") | gzip -1 > "$out"
