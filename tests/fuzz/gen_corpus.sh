#!/usr/bin/env bash
# Regenerates the seed corpora in tests/fuzz/corpus/ with gen_corpus.c, linked
# against the normal build (run scripts/build.sh first).
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -std=c11 -D_GNU_SOURCE -Wall -Wno-missing-braces -Iinclude -Isrc -Ibuild \
  -o "$tmp/gen_corpus" tests/fuzz/gen_corpus.c \
  build/src/manager/libvtpmmgr.a build/libvtpmcore.a \
  $(pkg-config --libs libtpms openssl liburing libseccomp fuse3 json-c) -lpthread
rm -rf tests/fuzz/corpus
"$tmp/gen_corpus" tests/fuzz/corpus
find tests/fuzz/corpus -type f | sort | sed 's/^/  /'
