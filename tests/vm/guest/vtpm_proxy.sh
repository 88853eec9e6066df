# shellcheck shell=bash
# Guest side of vtpm_proxy.sh (run by guest-9p-init.sh inside chroot of the
# host root, tpm_vtpm_proxy loaded). Kernel command line: vmtest_swtpm= (our
# swtpm), vmtest_ioctl= (our swtpm_ioctl), vmtest_digest= (64 hex digits to
# extend into PCR 16).
#
# For TPM 2 (and TPM 1.2 with vmtest_tpm12=1): `swtpm chardev --vtpm-proxy` creates /dev/tpmN
# (and /dev/tpmrmN) through /dev/vtpmx, the guest kernel starts it and uses it;
# tpm2-tools go through the kernel's resource manager; CMD_SHUTDOWN over the
# ctrl socket ends the emulator, the device goes away and the state files stay.
# A second start on the same state reads the NV index written by the first.
set -u
. "$(dirname "$0")/lib.sh"

SWTPM=$(arg vmtest_swtpm)
IOCTL=$(arg vmtest_ioctl)
DIGEST=$(arg vmtest_digest)
W=/tmp/vp
mkdir -p $W

say "vtpmx $([[ -c /dev/vtpmx ]] && echo yes || echo no)"
say "tpm-before $(ls /dev | grep -c '^tpm')"

pid=
# [START_ENV=VAR=VALUE] [EMU=BINARY] start TAG STATEDIR EXTRA_ARGS...: starts the emulator
# (files $W/TAG.*),
# waits for its "New TPM device" line and the device nodes; sets $pid and $dev.
start() {
    local tag=$1 st=$2
    shift 2
    mkdir -p "$st"
    env ${START_ENV:-} ${EMU:-$SWTPM} chardev --vtpm-proxy --tpmstate dir="$st" \
        --ctrl type=unixio,path=$W/$tag.ctrl --pid file=$W/$tag.pid \
        --log file=$W/$tag.log,level=20 "$@" > $W/$tag.out 2> $W/$tag.err &
    pid=$!
    mark $tag-start
    dev=
    wait_for 20 grep -q '^New TPM device' $W/$tag.out
    mark $tag-line
    say "$tag-newdev $(head -n1 $W/$tag.out)"
    dev=$(sed -n 's|^New TPM device: /dev/\(tpm[0-9]*\) .*|\1|p' $W/$tag.out)
    if [[ -z $dev ]]; then
        say "error $tag: no device line"
        dump $W/$tag.out $W/$tag.err $W/$tag.log
        kill -9 $pid 2>/dev/null
        return 1
    fi
    wait_for 20 test -c /dev/$dev
    if [[ ! -c /dev/$dev ]]; then
        say "error $tag: /dev/$dev did not appear"
        dump $W/$tag.out $W/$tag.err
        grep -a -A2 'SWTPM_IO_' $W/$tag.log | tail -n 20
        dmesg | grep -i tpm | tail -n 5
        kill -9 $pid
        return 1
    fi
    say "$tag-sysdev $(cat /sys/class/tpm/$dev/dev 2>/dev/null)"
    say "$tag-nodes $(ls -1 /dev | grep -E "^(tpm|tpmrm)${dev#tpm}\$" | sort | paste -sd' ')"
    mark $tag-dev
    say "$tag-version $(cat /sys/class/tpm/$dev/tpm_version_major 2>/dev/null)"
    wait_for 20 test -S $W/$tag.ctrl
    # the fd the kernel gave for the device must not leak into programs
    local f fl=
    for f in /proc/$pid/fd/*; do
        [[ $(readlink $f) == 'anon_inode:[vtpms]' ]] && fl=$(awk '/^flags:/ {print $2}' /proc/$pid/fdinfo/${f##*/})
    done
    say "$tag-proxy-fd-flags $fl"
    say "$tag-pidfile $([[ $(cat $W/$tag.pid 2>/dev/null) == "$pid" ]] && echo ok || echo bad)"
}

# stop TAG STATEDIR [term]: CMD_SHUTDOWN over the ctrl socket (or SIGTERM);
# the emulator must exit, and the kernel then removes the device.
stop() {
    local tag=$1
    if [[ ${3:-} == term ]]; then
        kill -TERM $pid
    else
        run "$tag-shutdown" timeout 20 "$IOCTL" --unix $W/$tag.ctrl -s
    fi
    wait_exit 20 $pid
    say "$tag-exit $wrc"
    wait_for 5 test ! -e /dev/$dev
    say "$tag-gone $([[ -e /dev/$dev ]] && echo no || echo yes)"
    say "$tag-files $(ls "$2" | sort | paste -sd' ')"
    say "$tag-permall-size $(stat -c %s "$2"/tpm*-00.permall 2>/dev/null)"
    say "$tag-stderr $(wc -c < $W/$tag.err)"
    # TPM2_Startup(SU_CLEAR) commands that came in through the device
    say "$tag-startups-received $(grep -a -c '^ 80 01 00 00 00 0C 00 00 01 44 00 00' $W/$tag.log)"
    if [[ -s $W/$tag.err || $wrc != 0 || -n $(arg vmtest_debug) ]]; then
        dump $W/$tag.out $W/$tag.err
        grep -a -B2 -A3 -i 'error\|fail' $W/$tag.log | tail -n 40
    fi
}

# ---- TPM 2 ----
if start tpm2 $W/tpm2.state --tpm2; then
    export TPM2TOOLS_TCTI=device:/dev/tpmrm${dev#tpm}
    say "tcti $TPM2TOOLS_TCTI"
    run tpm2-getrandom timeout 20 tpm2_getrandom --hex 16 > $W/rand
    say "tpm2-random $(cat $W/rand)"
    mark tpm2-getrandom
    say "tpm2-pcr16-before $(cat /sys/class/tpm/$dev/pcr-sha256/16 2>/dev/null)"
    run tpm2-pcrextend timeout 20 tpm2_pcrextend 16:sha256=$DIGEST
    run tpm2-pcrread timeout 20 tpm2_pcrread sha256:16 -o $W/pcr16 >/dev/null
    say "tpm2-pcr16 $(hexof $W/pcr16)"
    # the kernel's own PCR read (TPM2_PCR_Read by the driver)
    say "tpm2-pcr16-sysfs $(cat /sys/class/tpm/$dev/pcr-sha256/16 2>/dev/null)"
    printf 'vtpm-proxy NV ok' > $W/nvdata
    run tpm2-nvdefine timeout 20 tpm2_nvdefine 0x1500016 -C o -s 16 -a "ownerread|ownerwrite" >/dev/null
    run tpm2-nvwrite timeout 20 tpm2_nvwrite 0x1500016 -C o -i $W/nvdata
    run tpm2-nvread timeout 20 tpm2_nvread 0x1500016 -C o -s 16 -o $W/nvread
    say "tpm2-nv $(hexof $W/nvread)"
    # 2 KiB through the device: tpm2-tools write and read it in 1 KiB
    # commands (MAX_NV_BUFFER_SIZE)
    head -c 2048 /dev/urandom > $W/nvbig
    run tpm2-nvdefine-big timeout 20 tpm2_nvdefine 0x1500017 -C o -s 2048 -a "ownerread|ownerwrite" >/dev/null
    run tpm2-nvwrite-big timeout 20 tpm2_nvwrite 0x1500017 -C o -i $W/nvbig
    run tpm2-nvread-big timeout 20 tpm2_nvread 0x1500017 -C o -s 2048 -o $W/nvbig.read
    say "tpm2-nv-big $(cmp -s $W/nvbig $W/nvbig.read && echo same || echo differ)"
    mark tpm2-nv
    # a transient object through the kernel's resource manager (context
    # save/load between the two tools)
    run tpm2-createprimary timeout 20 tpm2_createprimary -C o -G ecc256 -c $W/primary.ctx >/dev/null
    run tpm2-readpublic timeout 20 tpm2_readpublic -c $W/primary.ctx -o $W/primary.pub >/dev/null
    say "tpm2-primary-pub $([[ -s $W/primary.pub ]] && echo yes || echo no)"
    mark tpm2-primary
    # A second device next to the first (/dev/tpm1), served by the reference:
    # Debian's swtpm. Its device line is compared with ours, and it shows what
    # swtpm does with --flags startup-none on a proxy (the TPM is initialised,
    # the kernel sends TPM2_Startup). stdbuf: swtpm does not flush the line
    # when stdout is a file.
    p_main=$pid d_main=$dev
    if [[ -x /usr/bin/swtpm ]] &&
        EMU="stdbuf -oL /usr/bin/swtpm" start ref $W/ref.state --tpm2 --flags startup-none; then
        run ref-getrandom timeout 20 tpm2_getrandom -T device:/dev/tpmrm${dev#tpm} --hex 8 > $W/rand2
        say "ref-random $(cat $W/rand2)"
        stop ref $W/ref.state
    fi
    pid=$p_main dev=$d_main
    say "tpm2-still-there $([[ -c /dev/$dev ]] && echo yes || echo no)"
    mark ref
    # the ctrl channel answers while the kernel owns the data channel
    run tpm2-ioctl-c timeout 20 "$IOCTL" --unix $W/tpm2.ctrl -c > $W/caps
    say "tpm2-ioctl-caps $(head -n1 $W/caps)"
    stop tpm2 $W/tpm2.state
    mark tpm2-stop

    # The same state directory again: the NV index survived the stop. This
    # one runs on the epoll loop and ends by SIGTERM.

    # With --flags startup-none the emulator leaves TPM2_Startup to the
    # kernel (it sends one when TPM2_SelfTest answers TPM_RC_INITIALIZE).
    if START_ENV=VTPM_LOOP=epoll start tpm2b $W/tpm2.state --tpm2 --flags startup-none; then
        export TPM2TOOLS_TCTI=device:/dev/tpmrm${dev#tpm}
        run tpm2b-nvread timeout 20 tpm2_nvread 0x1500016 -C o -s 16 -o $W/nvread2
        say "tpm2b-nv $(hexof $W/nvread2)"
        stop tpm2b $W/tpm2.state term
        mark tpm2b-stop
    fi
fi

# ---- errors, ours and Debian's swtpm side by side: /dev/vtpmx not
# accessible, then accessible but VTPM_PROXY_IOC_NEW_DEV not permitted (it
# needs CAP_SYS_ADMIN); run as nobody ----
mkdir -p $W/nobody
chown 65534:65534 $W/nobody
for emu in ours ref; do
    bin=$SWTPM
    [[ $emu == ref ]] && bin=/usr/bin/swtpm
    for mode in 0600 0666; do
        chmod $mode /dev/vtpmx
        timeout 20 setpriv --reuid=65534 --regid=65534 --clear-groups \
            $bin chardev --vtpm-proxy --tpm2 --tpmstate dir=$W/nobody > $W/e.out 2> $W/e.err
        say "$emu-err-$mode $? $(paste -sd'|' $W/e.out)/$(paste -sd'|' $W/e.err)"
    done
    # with --log the message goes to the log instead (stdout/stderr/log)
    rm -f $W/nobody/log
    timeout 20 setpriv --reuid=65534 --regid=65534 --clear-groups \
        $bin chardev --vtpm-proxy --tpm2 --tpmstate dir=$W/nobody \
        --log file=$W/nobody/log > $W/e.out 2> $W/e.err
    say "$emu-err-log $? $(paste -sd'|' $W/e.out)/$(paste -sd'|' $W/e.err)/$(paste -sd'|' $W/nobody/log 2>/dev/null)"
done
chmod 0600 /dev/vtpmx
mark errors

# --print-capabilities with --vtpm-proxy: swtpm creates the device first
# (cli.md §5), prints its line and the JSON, and exits (the device goes away)
for emu in ours ref; do
    bin=$SWTPM
    [[ $emu == ref ]] && bin=/usr/bin/swtpm
    timeout 20 $bin chardev --vtpm-proxy --tpm2 --print-capabilities > $W/pc.out 2> $W/pc.err
    say "$emu-printcaps $? $(head -n1 $W/pc.out | tr -s 0-9 N)/$(sed -n 2p $W/pc.out | cut -c1-16)/$(wc -l < $W/pc.out)/$(wc -c < $W/pc.err)"
    wait_for 5 eval '! ls /dev | grep -q "^tpm"'
    say "$emu-printcaps-left $(ls /dev | grep -c '^tpm')"
done
mark printcaps

# ---- TPM 1.2 (vmtest_tpm12=1) ----
# libtpms generates an RSA key at every TPM 1.2 start: 0.2-0.7 s natively,
# 5-40 s under TCG, so this part is opt-in (VM_TPM12=1 on the host).
if [[ -n $(arg vmtest_tpm12) ]] && start tpm12 $W/tpm12.state; then
    # the driver's TPM 1.2 sysfs files (TPM_GetCapability through the proxy)
    say "tpm12-caps $(grep -a '^TCG version' /sys/class/tpm/$dev/caps 2>/dev/null)"
    say "tpm12-pcr00 $(grep -a '^PCR-00' /sys/class/tpm/$dev/pcrs 2>/dev/null)"
    stop tpm12 $W/tpm12.state
    mark tpm12-stop
fi
say "tpm-after $(ls /dev | grep -c '^tpm')"
