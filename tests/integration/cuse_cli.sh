#!/usr/bin/env bash
# `swtpm cuse` and its other name `swtpm_cuse` on this host, which has no
# /dev/cuse (the device itself is tested in a guest: tests/vm/cuse.sh): the
# command line, swtpm's exit statuses for each start-up error, the features
# it prints, and the failure when the CUSE driver is missing.
# Environment: SWTPM_EXE, SWTPM_CUSE_EXE (the swtpm_cuse link).
source "$(dirname "$0")/lib.sh"
[ -x "${SWTPM_CUSE_EXE:-}" ] || fail "SWTPM_CUSE_EXE '${SWTPM_CUSE_EXE:-}' is not executable"
[ "$(basename "$SWTPM_CUSE_EXE")" = swtpm_cuse ] || fail "SWTPM_CUSE_EXE must be named swtpm_cuse"

# Both names, same behaviour.
for form in "$SWTPM_EXE cuse" "$SWTPM_CUSE_EXE"; do
	# shellcheck disable=SC2206 # word splitting is the point
	C=($form)
	ok "${C[@]}" -v
	assert_match '^TPM emulator CUSE interface version 0\.8\.0 \(vtpmd [0-9.]+\)$' "$OUT" "$form -v"
	ok "${C[@]}" --help
	assert_contains "-n|--name <NAME>" "$OUT" "$form --help"
	assert_contains "-M|--maj <MAJ>" "$OUT" "$form --help"
	ok "${C[@]}" --tpm2 --print-capabilities
	assert_contains '"tpm-2.0", "flags-opt-disable-auto-shutdown", "cmdarg-seccomp"' "$OUT" \
		"$form --print-capabilities"
	case $OUT in *tpm-send-command-header*|*flags-opt-startup*|*ctrl-opt-terminate*)
		fail "$form --print-capabilities lists socket features: $OUT" ;;
	esac
	expect_rc 254 "${C[@]}" --tpmstate dir="$TMPD"
	assert_contains "Error: device name missing" "$ERR" "$form without -n"
	expect_rc 255 env -u TPM_PATH "${C[@]}" -n vtpmx0
	assert_contains "Error: No TPM state directory is defined; TPM_PATH is not set" "$ERR" \
		"$form without a state location"
	expect_rc 255 "${C[@]}" -n vtpmx0 -M 65536 --tpmstate dir="$TMPD"
	assert_contains "Major number outside valid range [0 - 65535]" "$ERR" "$form -M 65536"
	expect_rc 253 "${C[@]}" -n vtpmx0 --tpmstate dir="$TMPD" --flags bogus
	assert_contains "Unknown option 'bogus'" "$ERR" "$form --flags bogus"
	expect_rc 251 "${C[@]}" -n vtpmx0 --tpmstate dir="$TMPD" --runas no-such-user-vtpmd
	assert_contains "User 'no-such-user-vtpmd' does not exist" "$ERR" "$form --runas"
	expect_rc 1 "${C[@]}" -n vtpmx0 --tpmstate dir="$TMPD" stray
	assert_contains "Unknown parameter 'stray'" "$ERR" "$form stray argument"
	# an existing device is refused before anything is registered
	expect_rc 255 "${C[@]}" -n null --tpmstate dir="$TMPD"
	assert_contains "Error: A device '/dev/null' already exists." "$ERR" "$form -n null"
	if [ ! -e /dev/cuse ]; then
		expect_rc 1 "${C[@]}" -n vtpmx0 --tpm2 --tpmstate dir="$TMPD"
		assert_contains "modprobe cuse" "$ERR" "$form without /dev/cuse"
	fi
done

# Not root: swtpm cuse insists on it (exit -4).
if command -v setpriv >/dev/null && [ "$(id -u)" = 0 ]; then
	expect_rc 252 setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$SWTPM_CUSE_EXE" -n vtpmx0 --tpmstate dir="$TMPD"
	assert_contains "Error: Unable to setuid root" "$ERR" "not root"
fi
pass
