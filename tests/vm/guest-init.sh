#!/bin/sh
# /init of the test initramfs (busybox sh). Prints the TPM's PCRs on the serial
# console, extends PCR 16 through /dev/tpm0 with a raw TPM2_PCR_Extend and
# prints the result, then powers off. The host (qemu_tpm.sh) parses lines
# starting with "VMTEST ".
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.list 2>/dev/null); do insmod "$m" || echo "VMTEST insmod-failed $m"; done

say() { echo "VMTEST $*"; }
T=/sys/class/tpm/tpm0
i=0
while [ ! -e "$T" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -e "$T" ]; then
    say "error no-tpm"
    say END
    poweroff -f
fi
say "tpm-version $(cat $T/tpm_version_major 2>/dev/null || echo unknown)"

if [ -d $T/pcr-sha256 ]; then
    for n in 0 1 2 3 4 5 6 7 16; do say "pcr-sha256 $n $(cat $T/pcr-sha256/$n)"; done
    # TPM2_PCR_Extend(PCR 16, sha256 digest from the kernel command line) with
    # an empty password session. Sent in one write(); the response is read on
    # the same open file.
    dig=$(sed -n 's/.*vmtest_digest=\([0-9a-fA-F]\{64\}\).*/\1/p' /proc/cmdline)
    {
        printf '\200\002\000\000\000\101\000\000\001\202'   # tag, size 65, TPM_CC_PCR_Extend
        printf '\000\000\000\020'                           # PCR 16
        printf '\000\000\000\011\100\000\000\011\000\000\000\000\000'  # auth: TPM_RS_PW
        printf '\000\000\000\001\000\013'                   # 1 digest, TPM_ALG_SHA256
        echo "$dig" | xxd -r -p
    } > /tmp/cmd
    say "cmd-bytes $(wc -c < /tmp/cmd)"
    exec 3<>/dev/tpm0
    dd if=/tmp/cmd bs=65 count=1 2>/dev/null >&3
    dd bs=4096 count=1 2>/dev/null <&3 > /tmp/rsp
    exec 3>&-
    say "extend-rsp $(od -An -tx1 -v /tmp/rsp | tr -d ' \n')"
    say "pcr16-after $(cat $T/pcr-sha256/16)"
elif [ -e $T/device/pcrs ]; then
    sed 's/^/VMTEST pcrs12 /' $T/device/pcrs
fi
say END
poweroff -f
