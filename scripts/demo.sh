#!/usr/bin/env bash
# Installs dependencies, builds, and runs vtpmd with its state root in ./demo-state
# and one TPM 2.0 instance "vm1" (data 127.0.0.1:2321, ctrl 127.0.0.1:2322).
# Ctrl-C stops vtpmd; the instances keep running until stopped with vtpmctl.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null
root=$PWD/demo-state
sock=$root/vtpmd.sock
mkdir -p "$root"
./build/src/manager/vtpmd --socket "$sock" --state-root "$root" &
vtpmd_pid=$!
trap 'kill "$vtpmd_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.05; done
ctl() { ./build/src/manager/vtpmctl --socket "$sock" "$@"; }
if ! ctl status vm1 >/dev/null 2>&1; then
  ctl create vm1 --start -- --tpm2 --server type=tcp,port=2321 \
    --ctrl type=tcp,port=2322 --flags not-need-init,startup-clear
else
  ctl start vm1 >/dev/null 2>&1 || true
fi
ctl list
cat <<TXT

vtpmd is running (state root $root, management socket $sock).
Talk to instance vm1 with tpm2-tools from another shell:
  export TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=2321
  tpm2_getrandom --hex 16
  tpm2_pcrextend 16:sha256=\$(printf 'hello' | sha256sum | cut -d' ' -f1)
  tpm2_pcrread sha256:16
Add more instances:
  ./build/src/manager/vtpmctl --socket $sock create vm2 --start -- --tpm2 \\
      --server type=unixio,path=$root/vm2.sock --ctrl type=unixio,path=$root/vm2.ctrl
  ./build/src/manager/vtpmctl --socket $sock list
  ./build/src/manager/vtpmctl --socket $sock status vm2
A single drop-in swtpm works as well: ./build/swtpm socket --help
Ctrl-C stops vtpmd (instances keep serving; a new vtpmd adopts them).
TXT
wait "$vtpmd_pid"
