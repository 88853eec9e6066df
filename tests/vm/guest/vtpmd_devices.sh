# Guest side of vtpmd_devices.sh (run by guest-9p-init.sh inside chroot of the
# host root, cuse and tpm_vtpm_proxy loaded). Kernel command line:
# vmtest_vtpmd=, vmtest_vtpmctl= (our binaries).
#
# vtpmd supervises a `cuse -n vtpmk1` instance and a `chardev --vtpm-proxy`
# instance: vtpmctl creates and starts each, tpm2-tools use /dev/vtpmk1 and
# the kernel's /dev/tpmrmN, an NV index written before a kill -9 of the
# instance is read back from the restarted one, and a graceful stop removes
# the device. Only values are printed; the host script asserts on them.
set -u
. "$(dirname "$0")/lib.sh"

VTPMD=$(arg vmtest_vtpmd)
CTL=$(arg vmtest_vtpmctl)
W=/tmp/vc
SOCK=$W/vtpmd.sock
ROOT=$W/root
DEV=/dev/vtpmk1
mkdir -p $W
ctl() { timeout 30 "$CTL" --socket $SOCK --timeout 20 "$@"; }
# field EXPR: a field of `vtpmctl --json status k1`
field() { ctl --json status ${2:-k1} | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# restarted ID OLDPID: running again under another pid
restarted() {
    [ "$("$CTL" --socket $SOCK --json status $1 2>/dev/null |
        python3 -c "import json,sys; d=json.load(sys.stdin); print(d['state'], d['pid'] != $2)")" = 'running True' ]
}
# rmdev: the kernel's resource-manager node of the proxy TPM (the only TPM)
rmdev() { ls /dev/tpmrm* 2>/dev/null | head -n1; }

"$VTPMD" --socket $SOCK --state-root $ROOT > $W/vtpmd.log 2>&1 &
vpid=$!
wait_for 10 test -S $SOCK
say "vtpmd-up $([[ -S $SOCK ]] && echo yes || echo no)"
mark vtpmd

# parked: how many pool processes wait (vtpmd's pool, default 4)
parked() { ctl --json version | python3 -c "import json,sys; print(json.load(sys.stdin)['pool']['parked'])"; }
pool_full() { [ "$(parked)" = 4 ]; }
wait_for 30 pool_full
say "pool-parked $(parked)"
ctl create k1 --start -- cuse -n vtpmk1 --tpm2 --flags not-need-init,startup-clear > $W/create.out 2>&1
say "create-rc $?"
say "k1-from-pool $(grep -c 'manufactured ahead in the pool' $ROOT/k1/log)"
wait_for 10 test -c $DEV
say "dev $([[ -c $DEV ]] && echo yes || echo no)"
say "state $(field 'd["state"]')"
pid1=$(field 'd["pid"]')
# the instance is vtpmd's child, not a daemon: its parent is vtpmd
say "parent-is-vtpmd $([[ $(awk '{print $4}' /proc/$pid1/stat 2>/dev/null) == "$vpid" ]] && echo yes || echo no)"
mark created

export TPM2TOOLS_TCTI=device:$DEV
run t-getrandom timeout 20 tpm2_getrandom --hex 16 > $W/rand
say "t-random $(cat $W/rand)"
run t-nvdefine timeout 20 tpm2_nvdefine 0x1500016 -C o -s 8 -a "ownerread|ownerwrite" > /dev/null
printf 'vtpmd-k1' > $W/nvdata
run t-nvwrite timeout 20 tpm2_nvwrite 0x1500016 -C o -i $W/nvdata
mark tpm

# kill -9: the supervisor restarts the instance, which registers the device again
kill -9 "$pid1"
wait_for 15 restarted k1 "$pid1"
say "restarted $(field 'd["state"], d["restarts"]' | tr -d '(),')"
wait_for 10 test -c $DEV
run t-nvread timeout 20 tpm2_nvread 0x1500016 -C o -s 8 -o $W/nvout
say "t-nvread $(cat $W/nvout 2>/dev/null)"
mark restarted

ctl stop k1 > $W/stop.out 2>&1
say "stop-rc $?"
say "stopped $(field 'd["state"]')"
wait_for 5 sh -c "! test -e $DEV"
say "dev-gone $([[ -e $DEV ]] && echo no || echo yes)"
say "permall $([[ -s $ROOT/k1/state/tpm2-00.permall ]] && echo yes || echo no)"
mark cuse-done

# ---- a vTPM proxy instance: the guest kernel's own TPM driver is the client
wait_for 30 pool_full
ctl create p1 --start -- chardev --vtpm-proxy --tpm2 > $W/pcreate.out 2>&1
say "p-create-rc $?"
say "p1-from-pool $(grep -c 'manufactured ahead in the pool' $ROOT/p1/log)"
wait_for 20 sh -c 'ls /dev/tpmrm* >/dev/null 2>&1'
say "p-dev $([[ -n $(rmdev) ]] && echo yes || echo no)"
say "p-state $(field 'd["state"]' p1)"
ppid1=$(field 'd["pid"]' p1)
export TPM2TOOLS_TCTI=device:$(rmdev)
run p-getrandom timeout 20 tpm2_getrandom --hex 16 > $W/prand
say "p-random $(cat $W/prand)"
run p-nvdefine timeout 20 tpm2_nvdefine 0x1500017 -C o -s 8 -a "ownerread|ownerwrite" > /dev/null
printf 'vtpmd-p1' > $W/pnvdata
run p-nvwrite timeout 20 tpm2_nvwrite 0x1500017 -C o -i $W/pnvdata
kill -9 "$ppid1"
wait_for 15 restarted p1 "$ppid1"
say "p-restarted $(field 'd["state"], d["restarts"]' p1 | tr -d '(),')"
# the old device goes when its fd closes; the new instance makes another
wait_for 20 sh -c 'ls /dev/tpmrm* >/dev/null 2>&1'
export TPM2TOOLS_TCTI=device:$(rmdev)
run p-nvread timeout 20 tpm2_nvread 0x1500017 -C o -s 8 -o $W/pnvout
say "p-nvread $(cat $W/pnvout 2>/dev/null)"
ctl stop p1 > $W/pstop.out 2>&1
say "p-stop-rc $?"
wait_for 10 sh -c '! ls /dev/tpmrm* >/dev/null 2>&1'
say "p-dev-gone $([[ -z $(rmdev) ]] && echo yes || echo no)"
mark proxy-done

kill -TERM $vpid
wait $vpid
say "vtpmd-rc $?"
dump $W/create.out $W/stop.out $W/pcreate.out $W/pstop.out $W/vtpmd.log $ROOT/k1/log $ROOT/p1/log
