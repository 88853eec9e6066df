#!/usr/bin/env bash
# Self-check of the integration tests: run every script against Debian's
# reference emulator (/usr/bin/swtpm), which must pass all of them.
# Usage: tests/integration/run_all_ref.sh [script-name...]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export SWTPM_EXE=${REF_SWTPM:-/usr/bin/swtpm}
export VTPM_LOOP=${VTPM_LOOP:-uring}
scripts=("$@")
[ ${#scripts[@]} -gt 0 ] || scripts=(tpm2_tools ibm_tss swtpm_tools cross_state)

failed=()
skipped=()
for s in "${scripts[@]}"; do
	s=${s%.sh}
	echo "=== $s (SWTPM_EXE=$SWTPM_EXE)"
	start=$SECONDS
	bash "$here/$s.sh"
	rc=$?
	echo "=== $s: exit $rc after $((SECONDS - start)) s"
	case $rc in
	0) ;;
	77) skipped+=("$s") ;;
	*) failed+=("$s") ;;
	esac
done
echo "=== summary: ${#scripts[@]} run, ${#failed[@]} failed${failed:+ (${failed[*]})}, ${#skipped[@]} skipped${skipped:+ (${skipped[*]})}"
[ ${#failed[@]} -eq 0 ]
