#!/usr/bin/env bash
# QEMU live migration of a guest with a vTPM backed by $SWTPM_EXE (issue 6):
# two QEMUs (TCG) on this host, each with its own `swtpm socket --tpm2` on a
# unixio ctrl socket; the destination's state directory starts empty and its
# QEMU waits with -incoming. The guest (guest-migrate-init.sh, busybox
# initramfs, no 9p) extends PCR 16 every 0.2 s and prints it (read by its
# kernel from the TPM) with the number N of extends so far. The host migrates
# over QMP and asserts:
#  - migration status "completed", the destination VM "running";
#  - every line of the source guest and of the destination guest (which
#    carries on counting where the source stopped, now extending in the
#    destination emulator) carries the N-th link of the hash chain
#    PCR = SHA256(PCR || digest) from zero; no extend failed;
#  - quitting the source QEMU ends the source emulator with status 0 and no
#    error in its log, the destination emulator likewise, and the destination
#    state directory then holds the migrated permanent state.
# Cases (VM_MIGRATIONS, DEVICE:SOURCE:DESTINATION): tpm-tis and tpm-crb
# between two of ours, tpm-tis from ours to Debian's swtpm and tpm-crb from
# Debian's swtpm to ours (VM_DEVICES="..." runs only ours->ours per device).
#
# Needs: qemu-system-x86, linux-image-amd64, busybox-static, kmod, python3,
# swtpm (for the cases with Debian's swtpm; left out without it).
# Env: SWTPM_EXE. Exit 0 / 1 / 77.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

SWTPM_EXE=${SWTPM_EXE:-}
[[ -n $SWTPM_EXE && -x $SWTPM_EXE ]] || { echo "FAIL: SWTPM_EXE not set/executable"; exit 1; }
vm_setup
vm_need 'command -v python3 >/dev/null' python3 "no python3 (QMP client)"
# DEVICE:SOURCE:DESTINATION emulators, "ours" ($SWTPM_EXE) or "swtpm"
# (Debian's /usr/bin/swtpm): migrating between the two is how a host moves
# from swtpm to vtpmd (and back).
if [[ -n ${VM_DEVICES:-} ]]; then
    cases=$(for dev in $VM_DEVICES; do echo "$dev:ours:ours"; done)
else
    cases=${VM_MIGRATIONS:-tpm-tis:ours:ours tpm-crb:ours:ours tpm-tis:ours:swtpm tpm-crb:swtpm:ours}
fi
if [[ $cases == *swtpm* ]] && ! { [[ -x /usr/bin/swtpm ]] || { vm_install swtpm && [[ -x /usr/bin/swtpm ]]; }; }; then
    echo "no /usr/bin/swtpm (package swtpm): the migrations with it are left out"
    cases=$(tr ' ' '\n' <<<"$cases" | grep -v swtpm)
fi
emu_bin() { [[ $1 == swtpm ]] && echo /usr/bin/swtpm || echo "$SWTPM_EXE"; }

digest=$(printf 'vtpmd migration test' | sha256sum | cut -c1-64)
# chain[N]: PCR 16 after N extends with the digest
mapfile -t chain < <(python3 -c '
import hashlib, sys
d, v = bytes.fromhex(sys.argv[1]), bytes(32)
for _ in range(401):
    print(v.hex().upper())
    v = hashlib.sha256(v + d).digest()' "$digest")
# lines_off CONSOLE: complete "pcr16 N VALUE" lines whose VALUE is not chain[N]
lines_off() {
    local n val c=0
    while read -r n val; do
        [[ $val == "${chain[n]}" ]] || c=$((c + 1))
    done < <(pcr_lines "$1")
    echo $c
}
zero=$(printf '0%.0s' {1..64})
rsp_ok=80020000001300000000000000000000010000

qmp() { timeout 20 python3 "$vm_here/qmp.py" "$@"; }

declare -A epid qpid
kill_all() {
    local p
    for p in "${qpid[@]}" "${epid[@]}"; do [[ -n $p ]] && kill "$p" 2>/dev/null; done
}
vm_cleanup_hooks+=(kill_all)

# start_emu DIR ROLE BINARY: `BINARY socket --tpm2` on DIR/ROLE.ctrl, state
# DIR/ROLE.state
start_emu() {
    local d=$1 r=$2
    mkdir -p "$d/$r.state"
    "$3" socket --tpm2 --tpmstate dir="$d/$r.state" \
        --ctrl type=unixio,path="$d/$r.ctrl" \
        --log file="$d/$r.log",level=2 > "$d/$r.out" 2>&1 &
    epid[$r]=$!
    for _ in $(seq 100); do [[ -S $d/$r.ctrl ]] && return 0; sleep 0.05; done
    bad "$r emulator did not create $d/$r.ctrl"
    return 1
}

# start_qemu DIR ROLE DEVICE [ARG...]
start_qemu() {
    local d=$1 r=$2 dev=$3
    shift 3
    timeout 90 "$QEMU" -accel tcg -cpu qemu64,vendor=GenuineIntel -m 192 -smp 1 \
        -nodefaults -no-user-config -nographic -display none -monitor none \
        -net none -no-reboot \
        -serial file:"$d/$r.console" -qmp unix:"$d/$r.qmp",server=on,wait=off \
        -kernel "$kernel" -initrd "$work/initrd.gz" \
        -append "console=ttyS0 panic=-1 loglevel=4 printk.devkmsg=on vmtest_digest=$digest" \
        -chardev socket,id=chrtpm,path="$d/$r.ctrl" \
        -tpmdev emulator,id=tpm0,chardev=chrtpm \
        -device "$dev",tpmdev=tpm0 "$@" \
        < /dev/null > "$d/$r.qemu" 2>&1 &
    qpid[$r]=$!
}

# wait_pid SECONDS ROLE ARRAY: waits for the process; sets $wrc (or "timeout",
# then it is killed).
wait_pid() {
    local -n pids=$3
    local p=${pids[$2]} i
    for ((i = 0; i < $1 * 20; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$p" 2>/dev/null; then
        kill -9 "$p"; wait "$p" 2>/dev/null; wrc=timeout
    else
        wait "$p"; wrc=$?
    fi
    pids[$2]=
}

# con CONSOLE: the console without CRs and without the kernel's "[ time] "
# in front of the guest's lines (they go through printk)
con() { tr -d '\r' 2>/dev/null < "$1" | sed 's/^\[ *[0-9.]*\] VMTEST /VMTEST /'; }
# cval CONSOLE KEY: the value of the first "VMTEST KEY VALUE" line
cval() { con "$1" | sed -n "s/^VMTEST $2 //p" | head -n1; }

# pcr_lines CONSOLE: "N VALUE" of every complete "VMTEST pcr16 N VALUE" line
pcr_lines() {
    con "$1" | sed -n 's/^VMTEST pcr16 \([0-9]\+\) \([0-9A-F]\{64\}\)$/\1 \2/p'
}

t0=$(now)
VM_INIT=$vm_here/guest-migrate-init.sh "$vm_here/mkinitramfs.sh" "$kver" "$work/initrd.gz" \
    tpm_tis tpm_crb || { echo "FAIL: mkinitramfs"; exit 1; }

for c in $cases; do
    IFS=: read -r dev src_emu dst_emu <<<"$c"
    label="$dev $src_emu->$dst_emu"
    d=$work/${c//:/-}
    mkdir -p "$d"
    ts=$(now)
    ok_before=$failed
    failed=0
    if start_emu "$d" src "$(emu_bin "$src_emu")" && start_emu "$d" dst "$(emu_bin "$dst_emu")"; then
        check "$label: destination state directory starts empty" "$(ls -A "$d/dst.state" | wc -l)" 0
        start_qemu "$d" dst "$dev" -incoming unix:"$d/mig.sock"
        start_qemu "$d" src "$dev"
        # the guest has extended PCR 16 and printed it a few times
        for _ in $(seq 300); do
            (($(pcr_lines "$d/src.console" | wc -l) >= 3)) && break
            con "$d/src.console" | grep -q '^VMTEST \(error\|END\)' && break
            kill -0 "${qpid[src]}" 2>/dev/null || break
            sleep 0.1
        done
        check "$label: extend response" "$(cval "$d/src.console" extend-rsp)" "$rsp_ok"
        check "$label: PCR 16 before the first extend" "$(cval "$d/src.console" pcr16-before)" "$zero"
        tm=$(now)
        mig=$(qmp "$d/src.qmp" run migrate "{\"uri\": \"unix:$d/mig.sock\"}")
        check "$label: QMP migrate" "$mig" "{}"
        st=$(qmp "$d/src.qmp" wait-migration 60)
        check "$label: migration status" "$st" completed
        echo "$label: migration took $(elapsed "$tm") s"
        # The source VM is paused now: its console is final.
        last_src=$(pcr_lines "$d/src.console" | tail -n1)
        n_src=${last_src%% *}
        check "$label: source guest's PCR 16 before migrating (after $n_src extends)" \
            "${last_src#* }" "${chain[n_src]}"
        check "$label: source lines off the hash chain" "$(lines_off "$d/src.console")" 0
        # The destination guest carries on from where the source stopped.
        for _ in $(seq 200); do
            (($(pcr_lines "$d/dst.console" | awk -v n="${n_src:-0}" '$1 > n + 2' | wc -l) > 0)) && break
            kill -0 "${qpid[dst]}" 2>/dev/null || break
            sleep 0.1
        done
        check "$label: destination VM status" \
            "$(qmp "$d/dst.qmp" run query-status | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" \
            running
        first_dst=$(pcr_lines "$d/dst.console" | head -n1)
        last_dst=$(pcr_lines "$d/dst.console" | tail -n1)
        echo "$label: source printed extends $(pcr_lines "$d/src.console" | head -n1 | cut -d" " -f1)..${n_src:-?}, destination ${first_dst%% *}..${last_dst%% *}"
        [[ -n $first_dst && ${first_dst%% *} -gt ${n_src:--1} ]] ||
            bad "$label: destination guest did not continue the count (source ended at '${n_src:-}', destination starts '${first_dst%% *}')"
        (($(pcr_lines "$d/dst.console" | wc -l) >= 3)) ||
            bad "$label: fewer than 3 complete lines from the destination guest"
        check "$label: destination lines off the hash chain" "$(lines_off "$d/dst.console")" 0
        check "$label: destination guest's PCR 16 after migrating (after ${last_dst%% *} extends)" \
            "${last_dst#* }" "${chain[${last_dst%% *}]}"
        check "$label: extend errors in the guest" "$(cat "$d/src.console" "$d/dst.console" | con /dev/stdin | grep -c '^VMTEST error')" 0

        # Quit both; QEMU sends CMD_SHUTDOWN and each emulator exits.
        qmp "$d/src.qmp" run quit > /dev/null
        wait_pid 20 src qpid
        check "$label: source QEMU exit status" "$wrc" 0
        wait_pid 10 src epid
        check "$label: source emulator exit status" "$wrc" 0
        check "$label: errors in the source emulator's log" "$(grep -ci error "$d/src.log" 2>/dev/null)" 0
        qmp "$d/dst.qmp" run quit > /dev/null
        wait_pid 20 dst qpid
        check "$label: destination QEMU exit status" "$wrc" 0
        wait_pid 10 dst epid
        check "$label: destination emulator exit status" "$wrc" 0
        check "$label: errors in the destination emulator's log" "$(grep -ci error "$d/dst.log" 2>/dev/null)" 0
        check_re "$label: destination state after the migration" "$(ls "$d/dst.state" | paste -sd' ')" \
            '(^| )tpm2-00\.permall( |$)'
    fi
    echo "$label: $(elapsed "$ts") s"
    if ((failed)); then
        for r in src dst; do
            echo "--- $label $r console"; tr -d '\r' < "$d/$r.console" 2>/dev/null | tail -n 15
            echo "--- $label $r qemu"; cat "$d/$r.qemu" 2>/dev/null
            echo "--- $label $r emulator"; cat "$d/$r.out" 2>/dev/null; tail -n 20 "$d/$r.log" 2>/dev/null
        done
    fi
    kill_all
    failed=$((failed | ok_before))
done
echo "total $(elapsed "$t0") s"
vm_finish
