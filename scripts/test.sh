#!/usr/bin/env bash
# Runs every test of relaytcp: formatting, vet for Linux, Windows and macOS,
# the Go tests with the race detector, and the Windows build's tests under
# wine. Installs what it needs when missing (run as root on Debian, as CI does).
#
#   scripts/test.sh            everything
#   SKIP_WINE=1 scripts/test.sh  everything but the wine run
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"
command -v go >/dev/null || { echo "test.sh: Go is not installed (https://go.dev/dl/)" >&2; exit 1; }

step() { printf '\n== %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l . | grep -v '^vendor/' || true)
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" "$unformatted" >&2
	exit 1
fi

step "go vet (linux, windows, darwin)"
go vet ./...
GOOS=windows GOARCH=amd64 go vet ./...
GOOS=windows GOARCH=386 go vet ./...
GOOS=darwin GOARCH=arm64 go vet ./...

step "packages the tests use"
# Real peers from Debian's packages: promtool (prometheus) checks /metrics;
# nginx and haproxy speak the PROXY protocol with relaytcp; dnsmasq answers
# dig through UDP routes; headless chromium loads the status page; openssl,
# curl and stunnel4 are TLS routes' clients and servers (issue 23).
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx)
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null || missing+=(haproxy)
[ -x /usr/sbin/dnsmasq ] || command -v dnsmasq >/dev/null || missing+=(dnsmasq)
command -v dig >/dev/null || missing+=(dnsutils)
command -v chromium >/dev/null || missing+=(chromium)
command -v stunnel4 >/dev/null || missing+=(stunnel4)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
	echo "test.sh: installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"

step "go test -race"
# Enough descriptors for the 500-connection test and its subprocess.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
go test -race -count=1 -timeout 10m ./...

step "short fuzz runs, a fixed number each (the seed corpus in testdata/fuzz runs with go test too)"
fuzz_log=$(mktemp)
# A count of runs rather than a time: at a time limit the engine sometimes
# fails with "context deadline exceeded" while a worker is mid-run.
for spec in FuzzParseRouteSpec:200000x FuzzParseConfig:30000x FuzzParseArgs:200000x FuzzParseProxyHeader:100000x FuzzClientHello:100000x; do
	target=${spec%%:*} runs=${spec#*:}
	for attempt in 1 2; do
		if go test -run XXX -fuzz "^$target\$" -fuzztime "$runs" . >"$fuzz_log" 2>&1; then
			tail -1 "$fuzz_log"
			break
		fi
		sed 's/^/  | /' "$fuzz_log"
		# A real finding is written to testdata/fuzz: never retried. A failure
		# without one is the fuzz engine's own (a worker slow to stop at the
		# deadline): tried once more.
		if [ "$attempt" = 2 ] || [ -n "$(git status --porcelain -- "testdata/fuzz/$target")" ]; then
			exit 1
		fi
		echo "$target: the fuzz engine failed without a finding; once more"
	done
done
rm -f "$fuzz_log"

step "release build (scripts/build.sh) with a throwaway signing certificate"
scripts/build-test.sh

if [ "${SKIP_WINE:-}" = 1 ]; then
	echo "SKIP_WINE=1: the Windows tests under wine were not run"
else
	step "Windows build's tests under wine"
	scripts/wine-test.sh
	step "Windows service end to end under wine"
	scripts/wine-service-test.sh
	step "MSI install, upgrade and uninstall under wine"
	scripts/wine-msi-test.sh
fi
