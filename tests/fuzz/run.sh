#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) in ./build-fuzz (clang,
# -Dfuzz=true, ASan + UBSan) and runs each for a bounded time on a scratch copy
# of its seed corpus (tests/fuzz/corpus/<name>/). Prints one line per target
# and exits non-zero if any target crashed, leaked, hung or failed an
# invariant; the input that did it is kept in build-fuzz/fuzz-artifacts/.
#
#   FUZZ_SECONDS   seconds per target (default 20)
#   FUZZ_TARGETS   space-separated subset of target names (default: all)
#
# Results are also written to build-fuzz/fuzz-results.json, one JSON object
# per target in the shape of meson's testlog.json, for scripts/test.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-20}
bdir=build-fuzz
results=$bdir/fuzz-results.json
artifacts=$bdir/fuzz-artifacts

record() { # name OK|FAIL
  printf '{"name": "fuzz_%s", "result": "%s"}\n' "$1" "$2" >>"$results"
}

# (meson creates the directory, with its .gitignore)
if [ ! -f $bdir/build.ninja ]; then
  if ! CC=clang meson setup $bdir -Dfuzz=true -Dtests=false >/tmp/vtpm-fuzz-setup.$$ 2>&1; then
    tail -20 /tmp/vtpm-fuzz-setup.$$
    rm -f /tmp/vtpm-fuzz-setup.$$
    echo "fuzz: meson setup of $bdir failed (needs clang and libclang-rt-14-dev)"
    mkdir -p $bdir
    : >"$results"
    record build FAIL
    exit 1
  fi
  rm -f /tmp/vtpm-fuzz-setup.$$
fi
: >"$results"
if ! ninja -C $bdir fuzz >$bdir/fuzz-build.log 2>&1; then
  grep -E 'error|FAILED' $bdir/fuzz-build.log | head -20
  echo "fuzz: build failed (see $bdir/fuzz-build.log)"
  record build FAIL
  exit 1
fi

if [ -n "${FUZZ_TARGETS:-}" ]; then
  names=($FUZZ_TARGETS)
else
  names=()
  for src in tests/fuzz/fuzz_*.c; do
    n=${src#tests/fuzz/fuzz_}
    names+=("${n%.c}")
  done
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$artifacts"
fails=0
for name in "${names[@]}"; do
  exe=$bdir/tests/fuzz/fuzz_$name
  corpus=$work/corpus-$name
  log=$work/$name.log
  mkdir -p "$corpus"
  if [ ! -x "$exe" ]; then
    echo "fuzz $name: FAIL (no binary $exe: missing from tests/fuzz/meson.build?)"
    record "$name" FAIL
    fails=$((fails + 1))
    continue
  fi
  [ -d tests/fuzz/corpus/$name ] && cp tests/fuzz/corpus/$name/* "$corpus"/ 2>/dev/null
  seeds=$(ls "$corpus" | wc -l)
  start=$(date +%s)
  # -timeout: one input running this long is a hang; the outer timeout only
  # guards against the fuzzer itself not stopping.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    timeout -k 10 $((secs + 120)) "$exe" -max_total_time="$secs" -rss_limit_mb=2048 \
      -timeout=10 -max_len=8192 -print_final_stats=1 \
      -artifact_prefix="$work/$name-" "$corpus" >"$log" 2>&1
  rc=$?
  took=$(($(date +%s) - start))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crash=$(ls "$work/$name-"* 2>/dev/null | head -1)
  if [ $rc -eq 0 ] && [ -z "$crash" ]; then
    echo "fuzz $name: ok (${runs:-?} runs in ${took}s, corpus $seeds -> $(ls "$corpus" | wc -l))"
    record "$name" OK
    continue
  fi
  fails=$((fails + 1))
  record "$name" FAIL
  echo "fuzz $name: FAIL (exit $rc after ${took}s)"
  # the report: sanitizer/invariant lines and the top of the stack
  { grep -E 'ERROR: |SUMMARY: |invariant failed|runtime error|^[^ ].*: [a-z].*' "$log" |
      grep -vE '^(INFO|MS|NOTE|#[0-9]|artifact_prefix|Base64|stat::|Done|Running)' | head -8
    grep -E '^ +#[0-9]+ ' "$log" |
      grep -vE 'fuzzer::|__sanitizer|libc\.so|/nptl/|raise\.c|abort\.c|libc_start|_start | in main ' |
      head -8; } | sed 's/^/    /'
  if [ -n "$crash" ]; then
    cp "$crash" "$artifacts/"
    echo "    input ($(stat -c %s "$crash") bytes, kept as $artifacts/$(basename "$crash")):"
    od -An -tx1 -v "$crash" | head -8 | sed 's/^/    /'
  fi
done
exit $((fails > 0))
