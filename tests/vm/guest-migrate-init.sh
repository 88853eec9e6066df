#!/bin/sh
# /init of the migration test's initramfs (busybox sh, no 9p: QEMU refuses to
# migrate with a 9p export mounted). Extends PCR 16 once through /dev/tpm0 with
# a raw TPM2_PCR_Extend of the digest in vmtest_digest=, then prints
# "VMTEST pcr16 N VALUE" (VALUE read by the kernel from the TPM through sysfs)
# every 0.2 s, N counting up, while the host migrates the VM. The host
# (migration.sh) quits QEMU; after 400 lines the guest powers off by itself.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "VMTEST $*"; }
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
exec 3<>/dev/tpm0
dd if=/tmp/cmd bs=65 count=1 2>/dev/null >&3
dd bs=4096 count=1 2>/dev/null <&3 > /tmp/rsp
exec 3>&-
say "extend-rsp $(od -An -tx1 -v /tmp/rsp | tr -d ' \n')"
i=0
while [ $i -lt 400 ]; do
    say "pcr16 $i $(cat $T/pcr-sha256/16)"
    i=$((i + 1))
    sleep 0.2
done
say END
poweroff -f
