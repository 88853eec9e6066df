#!/bin/sh
# /init of the 9p test initramfs (busybox sh). Loads the modules listed in
# /modules.list (9p, virtio, and whatever the test needs: cuse, tpm_vtpm_proxy),
# mounts the host's root read-only over virtio-9p (mount tag "hostroot") on
# /host, gives it proc, sys, devtmpfs and tmpfs for /tmp, /run, /var/tmp and
# /root (the paths in vmtest_keep= stay visible), and runs the test script named by vmtest_script= on the kernel command
# line with bash inside chroot /host. The guest thereby runs the host's own
# binaries and libraries (build/swtpm, tpm2-tools, Debian's swtpm_ioctl).
#
# The script's stdout and stderr are the serial console; the host parses lines
# starting with "VMTEST ". This init adds "VMTEST exit N" (the script's exit
# status) and "VMTEST END", then powers off.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "VMTEST $*"; }
for m in $(cat /modules.list 2>/dev/null); do insmod "$m" || say "error insmod-failed $m"; done

arg() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" /proc/cmdline; }
script=$(arg vmtest_script)
H=/host
mkdir -p $H
# The virtio device may be probed a moment after its module was loaded.
i=0
until mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot $H 2>/dev/null; do
    i=$((i + 1))
    if [ $i -ge 50 ]; then
        say "error 9p-mount-failed"
        say END
        poweroff -f
    fi
    sleep 0.1
done
# Mount points on the read-only 9p tree are fine: mounting needs only the
# directory to exist, not write access to it.
mount -t proc proc $H/proc
mount -t sysfs sysfs $H/sys
mount -t devtmpfs devtmpfs $H/dev
# devtmpfs lacks the usual links (bash's process substitution needs /dev/fd)
ln -s /proc/self/fd $H/dev/fd
ln -s /proc/self/fd/0 $H/dev/stdin
ln -s /proc/self/fd/1 $H/dev/stdout
ln -s /proc/self/fd/2 $H/dev/stderr
mkdir -p $H/dev/pts $H/dev/shm
mount -t devpts devpts $H/dev/pts 2>/dev/null
mount -t tmpfs tmpfs $H/dev/shm
# The host directories that must stay visible (vmtest_keep=, ':'-separated:
# the checkout and the build directory) may lie under one of the directories
# that get a tmpfs: keep a view of the originals and bind them back.
keep=$(arg vmtest_keep | tr ':' ' ')
for d in /tmp /run /var/tmp /root; do
    [ -d $H$d ] || continue
    mkdir -p /orig$d
    mount --bind $H$d /orig$d
    mount -t tmpfs -o mode=1777 tmpfs $H$d
    for p in $keep; do
        case $p in
        $d/*)
            mkdir -p $H$p
            mount --bind /orig$p $H$p || say "error cannot keep $p visible"
            ;;
        esac
    done
done
chmod 0700 $H/root 2>/dev/null

if [ -z "$script" ] || [ ! -f "$H$script" ]; then
    say "error no-script '$script'"
    rc=127
else
    say "guest-start $(cut -d' ' -f1 /proc/uptime)"
    # env -i: the kernel hands unknown command-line words to init as
    # environment; the script gets a clean one.
    chroot $H /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root TERM=dumb LANG=C.UTF-8 /bin/bash "$script" < /dev/null
    rc=$?
fi
say "exit $rc"
say END
poweroff -f
