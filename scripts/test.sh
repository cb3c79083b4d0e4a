#!/usr/bin/env bash
# Runs every test of relaytcp: formatting, vet for Linux, Windows and macOS,
# the Go tests with the race detector, short fuzz runs, the release build,
# and the Windows build's tests under wine. Installs what it needs when
# missing (run as root on Debian, as CI does).
#
#   scripts/test.sh              everything (CI runs this)
#   SKIP_WINE=1 scripts/test.sh  everything but the wine runs
#   scripts/test.sh --fast       a first look: gofmt, vet for Linux, the Linux
#                                Go tests without the race detector (-short)
#
# Every step prints its elapsed time when it ends, and a line every 30 s
# while it runs, so the script is never silent for a minute.
set -euo pipefail
cd "$(dirname "$0")/.."

fast=0
case "${1:-}" in
--fast) fast=1 ;;
"") ;;
*)
	echo "test.sh: unknown option \"$1\" (usage: scripts/test.sh [--fast])" >&2
	exit 2
	;;
esac

export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"
command -v go >/dev/null || { echo "test.sh: Go is not installed (https://go.dev/dl/)" >&2; exit 1; }

# The current step's name and start, for step's closing line and the
# heartbeat, which reads them from a file (it is another process).
state=$(mktemp)
started=$SECONDS
step_name="" step_start=$SECONDS

# elapsed SECONDS: "1m05s".
elapsed() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# end_step: the closing line of the running step, with its time.
end_step() {
	if [ -n "$step_name" ]; then
		printf '   %s: done in %s (total %s)\n' "$step_name" "$(elapsed $((SECONDS - step_start)))" "$(elapsed $((SECONDS - started)))"
	fi
}

# step NAME: ends the running step and starts the next.
step() {
	end_step
	step_name=$*
	step_start=$SECONDS
	printf '\n== [%s] %s\n' "$(elapsed $((SECONDS - started)))" "$step_name"
	printf '%s\n%s\n' "$(date +%s)" "$step_name" >"$state"
}

# The heartbeat: every 30 s, the step still running and for how long.
(
	while sleep 30; do
		[ -s "$state" ] || continue
		{ read -r since; read -r name; } <"$state"
		printf '   ... still running: %s (%s)\n' "$name" "$(elapsed $(($(date +%s) - since)))"
	done
) &
heartbeat=$!
trap 'kill "$heartbeat" 2>/dev/null; rm -f "$state"' EXIT

step "gofmt"
unformatted=$(gofmt -l . | grep -v '^vendor/' || true)
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" "$unformatted" >&2
	exit 1
fi

if [ "$fast" = 1 ]; then
	step "go vet (linux)"
	go vet ./...
else
	step "go vet (linux, windows/amd64, windows/386, darwin/arm64, in parallel)"
	# Four builds of the standard library for vet's type information: in
	# parallel they keep both cores busy while one of them links or waits.
	vetdir=$(mktemp -d)
	pids=()
	for target in linux/amd64 windows/amd64 windows/386 darwin/arm64; do
		GOOS=${target%/*} GOARCH=${target#*/} go vet ./... >"$vetdir/${target/\//-}" 2>&1 &
		pids+=("$!")
	done
	vet_failed=0
	i=0
	for target in linux/amd64 windows/amd64 windows/386 darwin/arm64; do
		if ! wait "${pids[$i]}"; then
			echo "go vet for $target failed:" >&2
			cat "$vetdir/${target/\//-}" >&2
			vet_failed=1
		fi
		i=$((i + 1))
	done
	rm -rf "$vetdir"
	[ "$vet_failed" = 0 ] || exit 1
fi

step "packages the tests use"
# Real peers from Debian's packages: promtool (prometheus) checks /metrics;
# nginx and haproxy speak the PROXY protocol with relaytcp; dnsmasq answers
# dig through UDP routes; headless chromium loads the status page; openssl,
# curl and stunnel4 are TLS routes' clients and servers; curl also follows the
# documentation's examples (TestDocExamples).
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

# Enough descriptors for the 500-connection test and its subprocess.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ "$fast" = 1 ]; then
	step "go test -short (Linux, no race detector)"
	go test -short -count=1 -timeout 10m ./...
	end_step
	echo
	echo "test.sh --fast: passed in $(elapsed $((SECONDS - started))); scripts/test.sh runs everything"
	exit 0
fi

step "go test -race"
go test -race -count=1 -timeout 15m ./...

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
	end_step
	echo "SKIP_WINE=1: the Windows tests under wine were not run"
else
	step "Windows build's tests under wine"
	scripts/wine-test.sh
	step "Windows service end to end under wine"
	scripts/wine-service-test.sh
	step "MSI install, upgrade and uninstall under wine"
	scripts/wine-msi-test.sh
	end_step
fi
echo
echo "test.sh: passed in $(elapsed $((SECONDS - started)))"
