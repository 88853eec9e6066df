#!/usr/bin/env bash
# Installs dependencies, builds, and runs a TPM 2.0 `swtpm socket` with its state
# in ./demo-state: data on 127.0.0.1:2321, ctrl on 127.0.0.1:2322. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null
mkdir -p demo-state
cat <<'TXT'
vtpmd swtpm: TPM 2.0 on 127.0.0.1:2321 (data) and 127.0.0.1:2322 (ctrl), state in ./demo-state
Talk to it from another shell, e.g.:
  export TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=2321
  tpm2_getrandom --hex 16
  tpm2_pcrextend 16:sha256=$(printf 'hello' | sha256sum | cut -d' ' -f1)
  tpm2_pcrread sha256:16
  swtpm_ioctl --tcp 127.0.0.1:2322 -c      # ctrl channel: capabilities
  swtpm_ioctl --tcp 127.0.0.1:2322 -s      # shut it down (state is on disk)
TXT
exec ./build/swtpm socket --tpm2 --tpmstate dir=demo-state \
  --server type=tcp,port=2321 --ctrl type=tcp,port=2322 \
  --flags not-need-init,startup-clear
