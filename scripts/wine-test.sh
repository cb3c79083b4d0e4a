#!/usr/bin/env bash
# Builds the root package's tests for windows/amd64 and runs them under wine
# in a fresh prefix. Extra arguments go to the test binary
# (e.g. -test.run TestBulk). Exits with the tests' status.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/wine-env.sh
source scripts/wine-env.sh

trap wine_teardown EXIT
start=$(date +%s)
wine_setup
echo "wine prefix ready in $(( $(date +%s) - start ))s"

GOOS=windows GOARCH=amd64 go test -c -o "$WINE_TMP/relaytcp.test.exe" .
status=0
# The prefix is thrown away: tests may change the service's real Parameters key.
export RELAYTCP_TEST_REGISTRY=1
(cd "$WINE_TMP" && timeout 600 wine relaytcp.test.exe -test.v -test.timeout 300s "$@") \
	>"$WINE_TMP/test.log" 2>&1 || status=$?
tr -d '\r' <"$WINE_TMP/test.log" | grep -v '^=== ' || true
# wine gives the exit code mod 256; a test binary says PASS or FAIL last.
if [ "$status" -eq 0 ] && ! grep -qx 'PASS' <<<"$(tr -d '\r' <"$WINE_TMP/test.log")"; then
	echo "wine-test: the Windows tests did not report PASS" >&2
	status=1
fi
exit "$status"
