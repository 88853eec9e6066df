#!/usr/bin/env bash
# Installs everything vtpmd needs to build and test on Debian 12 (run as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(
  build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
  libtpms-dev libssl-dev liburing-dev libseccomp-dev libjson-c-dev libfuse3-dev
  libcriterion-dev
  swtpm swtpm-tools tpm2-tools tss2 xxd openssl python3 procps iproute2 gnuplot-nox
  qemu-system-x86 linux-image-amd64 busybox-static kmod cpio
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
