#!/usr/bin/env bash
# What a change costs a route that does not use it. The relay benchmarks of
# bench_relay_test.go (a plain route's connections per second and one
# stream's throughput, on the Linux engine and on the goroutine relay) run
# against BASE and against this tree, rounds interleaved so that both see
# the same machine; it prints each round's ratio (this tree's ns/op over
# BASE's: above 1 is slower) and their median.
#
#   scripts/bench-base.sh [BASE]     BASE defaults to 44fed4c (wave 1's end)
#   ROUNDS=5 BENCHTIME=2s            the defaults
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${1:-44fed4c354c6fb3914017f6b7a0d9219cc9e8b14}
ROUNDS=${ROUNDS:-5}
BENCHTIME=${BENCHTIME:-2s}
ulimit -n "$(ulimit -Hn)"

tmp=$(mktemp -d /tmp/relaytcp-bench-base.XXXXXX)
cleanup() {
	git worktree remove --force "$tmp/base" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

git worktree add -q --detach "$tmp/base" "$BASE"
# The base gets this tree's relay benchmarks and none of its own.
rm -f "$tmp/base/bench_test.go" "$tmp/base/bench_relay_test.go"
cp bench_relay_test.go "$tmp/base/"
(cd "$tmp/base" && go test -c -o "$tmp/base.test" .)
go test -c -o "$tmp/head.test" .

for round in $(seq "$ROUNDS"); do
	for t in base head; do
		"$tmp/$t.test" -test.run '^$' -test.bench '^Benchmark(ConnRate|Bulk)$' \
			-test.benchtime "$BENCHTIME" >"$tmp/$t.$round"
	done
	echo "round $round done" >&2
done

# name -> ns/op, one line per benchmark and round.
awk -v rounds="$ROUNDS" -v base="$(git rev-parse --short "$BASE")" '
	function median(v, n,   i, j, x) {
		for (i = 2; i <= n; i++) {
			x = v[i]
			for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]
			v[j + 1] = x
		}
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	FNR == 1 { split(FILENAME, p, "/"); split(p[length(p)], q, "."); who = q[1]; round = q[2] }
	/^Benchmark/ { name = $1; sub(/-[0-9]+$/, "", name); names[name] = 1; ns[who, name, round] = $3 }
	END {
		printf "| benchmark | this tree / %s, ns/op, per round | median |\n|---|---|---|\n", base
		for (name in names) {
			n = 0; line = ""
			for (r = 1; r <= rounds; r++) {
				if (ns["base", name, r] == 0) continue
				v[++n] = ns["head", name, r] / ns["base", name, r]
				line = line sprintf("%.2f ", v[n])
			}
			printf "| %s | %s| %.2f |\n", name, line, median(v, n)
			delete v
		}
	}' "$tmp"/base.* "$tmp"/head.*
