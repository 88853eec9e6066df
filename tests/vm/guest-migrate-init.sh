#!/bin/sh
# /init of the migration test's initramfs (busybox sh, no 9p: QEMU refuses to
# migrate with a 9p export mounted). Every 0.2 s it extends PCR 16 through
# /dev/tpm0 with a raw TPM2_PCR_Extend of the digest in vmtest_digest= and
# prints "VMTEST pcr16 N VALUE" (N extends so far; VALUE read by the kernel
# from the TPM through sysfs), while the host migrates the VM. The host
# (migration.sh) quits QEMU; after 400 lines the guest powers off by itself.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Lines go out through the kernel's console (printk, written to the UART by
# polling) rather than a tty write, which waits for the UART's transmit
# interrupt: the output then does not depend on an interrupt being carried
# over by the migration. "<3>": printed at loglevel=4; printk.devkmsg=on: no
# rate limit.
say() { echo "<3>VMTEST $*" > /dev/kmsg; }
T=/sys/class/tpm/tpm0
i=0
while [ ! -e $T/pcr-sha256/16 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -e $T/pcr-sha256/16 ]; then
    say "error no-tpm"
    say END
    poweroff -f
fi
say "pcr16-before $(cat $T/pcr-sha256/16)"
dig=$(sed -n 's/.*vmtest_digest=\([0-9a-fA-F]\{64\}\).*/\1/p' /proc/cmdline)
{
    printf '\200\002\000\000\000\101\000\000\001\202'   # tag, size 65, TPM_CC_PCR_Extend
    printf '\000\000\000\020'                           # PCR 16
    printf '\000\000\000\011\100\000\000\011\000\000\000\000\000'  # auth: TPM_RS_PW
    printf '\000\000\000\001\000\013'                   # 1 digest, TPM_ALG_SHA256
    echo "$dig" | xxd -r -p
} > /tmp/cmd
ok=80020000001300000000000000000000010000
# Each round extends PCR 16 once more and prints "pcr16 N VALUE" with N the
# number of extends so far: before, during and after the migration the value
# must be the N-th link of the hash chain.
i=1
while [ $i -le 400 ]; do
    exec 3<>/dev/tpm0
    dd if=/tmp/cmd bs=65 count=1 2>/dev/null >&3
    dd bs=4096 count=1 2>/dev/null <&3 > /tmp/rsp
    exec 3>&-
    rsp=$(od -An -tx1 -v /tmp/rsp | tr -d ' \n')
    [ $i = 1 ] && say "extend-rsp $rsp"
    [ "$rsp" = $ok ] || say "error extend $i response $rsp"
    say "pcr16 $i $(cat $T/pcr-sha256/16)"
    i=$((i + 1))
    sleep 0.2
done
say END
poweroff -f
