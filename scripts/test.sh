#!/usr/bin/env bash
# Installs dependencies, builds, runs every test (unit + integration on both loop
# backends + bench smoke), then the unit tests (every parser) again under
# AddressSanitizer/UBSan, then each parser's fuzz target briefly (tests/fuzz),
# and ends with one line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh || { echo "0 passed, 1 failed"; exit 1; }
meson test -C build --print-errorlogs --num-processes 2 "$@"
rc=$?
logs=(build/meson-logs/testlog.json)
if [ $# -eq 0 ]; then
  # Parsers of outside bytes must not read out of bounds: run their unit tests
  # instrumented too.
  if [ ! -f build-asan/build.ninja ]; then
    meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
      -Dwerror=true >/dev/null || rc=1
  fi
  if ninja -C build-asan >/dev/null; then
    meson test -C build-asan --print-errorlogs --num-processes 2 --suite unit || rc=1
    logs+=(build-asan/meson-logs/testlog.json)
  else
    echo "ASan build failed"
    rc=1
  fi
  # Every parser of outside bytes has a libFuzzer target (tests/fuzz): each
  # runs on its seed corpus, all of them together for about 180 s (or
  # FUZZ_SECONDS each); one pass or fail per target.
  nfuzz=$(ls tests/fuzz/fuzz_*.c | wc -l)
  FUZZ_SECONDS=${FUZZ_SECONDS:-$((180 / nfuzz))} bash tests/fuzz/run.sh || rc=1
  [ -f build-fuzz/fuzz-results.json ] && logs+=(build-fuzz/fuzz-results.json)
fi
python3 - "${logs[@]}" <<'PY'
import json, sys
res = {"OK": 0, "FAIL": 0, "SKIP": 0}
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            res["OK"] += 1
        elif r == "SKIP":
            res["SKIP"] += 1
        else:
            res["FAIL"] += 1
print(f"{res['OK']} passed, {res['FAIL']} failed, {res['SKIP']} skipped")
PY
exit $rc
