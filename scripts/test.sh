#!/usr/bin/env bash
# Installs dependencies, builds, runs every test (unit + integration, both loop
# backends) and ends with one line "N passed, N failed[, N skipped]".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh || { echo "0 passed, 1 failed"; exit 1; }
meson test -C build --print-errorlogs --num-processes 2 "$@"
rc=$?
python3 - build/meson-logs/testlog.json <<'PY'
import json, sys
res = {"OK": 0, "FAIL": 0, "SKIP": 0}
for line in open(sys.argv[1]):
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
