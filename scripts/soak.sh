#!/usr/bin/env bash
# Soak benchmark: runs the relaytcp service (Linux) under a steady churn of
# connections, with some idle connections held and some bulk data, and
# samples its memory (RSS), open descriptors and threads every INTERVAL
# seconds. The figures must stay flat: after the warm-up, the lowest of the
# last three samples may not exceed the highest of the first three by more
# than 20% (memory) or 50 descriptors (the churn moves both up and down from
# one sample to the next; a leak lifts the floor).
#
#   scripts/soak.sh                 10 minutes, a sample every 30 s
#   MINUTES=1440 scripts/soak.sh    a day
#   MINUTES=2 INTERVAL=10 scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=${MINUTES:-10}
INTERVAL=${INTERVAL:-30}
ulimit -n "$(ulimit -Hn)"

tmp=$(mktemp -d /tmp/relaytcp-soak.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/relaytcp" .
go build -o "$tmp/loadgen" ./scripts/loadgen
"$tmp/loadgen" echo -listen 127.0.0.1:19501 >/dev/null &
pids+=($!)
"$tmp/loadgen" sink -listen 127.0.0.1:19502 >/dev/null &
pids+=($!)
cat >"$tmp/relaytcp.conf" <<EOF
logdir $tmp/logs
logretention 1
route 19511 127.0.0.1 19501 idle=$((MINUTES + 10))m
route 19512 127.0.0.1 19502
EOF
"$tmp/relaytcp" service -config "$tmp/relaytcp.conf" 2>"$tmp/service.log" &
svc=$!
pids+=($svc)
sleep 1

# The load, for the whole soak: 500 idle connections held, a churn of
# short echo connections, and a bulk stream now and then.
end=$(($(date +%s) + MINUTES * 60))
"$tmp/loadgen" idle -addr 127.0.0.1:19511 -n 500 -hold "$((MINUTES * 60 + 30))s" >/dev/null &
pids+=($!)
(
	while [ "$(date +%s)" -lt "$end" ]; do
		"$tmp/loadgen" connrate -addr 127.0.0.1:19511 -concurrency 20 -duration 5s >/dev/null || true
		"$tmp/loadgen" bulk -addr 127.0.0.1:19512 -duration 1s >/dev/null || true
		sleep 1
	done
) &
pids+=($!)

sample() {
	local rss fds threads
	rss=$(awk '/^VmRSS:/{print $2}' /proc/$svc/status)
	fds=$(ls /proc/$svc/fd | wc -l)
	threads=$(ls /proc/$svc/task | wc -l)
	echo "$rss $fds $threads"
}
echo "| minute | RSS KiB | fds | threads |"
echo "|---:|---:|---:|---:|"
rss_all=() fds_all=()
start=$(date +%s)
sleep 20 # warm-up: the idle connections are up, the churn has run
while [ "$(date +%s)" -lt "$end" ]; do
	read -r rss fds threads <<<"$(sample)"
	awk -v s=$(($(date +%s) - start)) -v r="$rss" -v f="$fds" -v t="$threads" 'BEGIN{printf "| %.1f | %s | %s | %s |\n", s/60, r, f, t}'
	rss_all+=("$rss") fds_all+=("$fds")
	sleep "$INTERVAL"
done
n=${#rss_all[@]}
if [ "$n" -lt 6 ]; then
	echo "soak: only $n samples: run longer (MINUTES) or sample more often (INTERVAL)"
	exit 2
fi
maxof() { printf '%s\n' "$@" | sort -n | tail -1; }
minof() { printf '%s\n' "$@" | sort -n | head -1; }
rss0=$(maxof "${rss_all[@]:0:3}") fds0=$(maxof "${fds_all[@]:0:3}")
rss1=$(minof "${rss_all[@]:n-3}") fds1=$(minof "${fds_all[@]:n-3}")
if [ "$rss1" -gt $((rss0 * 120 / 100)) ] || [ "$fds1" -gt $((fds0 + 50)) ]; then
	echo "soak: NOT flat: RSS floor $rss1 KiB against an early high of $rss0, fds floor $fds1 against $fds0"
	exit 1
fi
echo "soak: flat over $MINUTES minutes: early high RSS $rss0 KiB, late floor $rss1; early high fds $fds0, late floor $fds1"
