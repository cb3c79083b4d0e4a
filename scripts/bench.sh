#!/usr/bin/env bash
# Compares relaytcp with direct loopback, HAProxy and socat, in one run, on
# this machine (client, relay and server share its cores):
#   - bulk throughput, 1 and 4 streams (upload to a sink server)
#   - CPU seconds per GB moved by the relay (1 stream)
#   - connections per second and p99 latency (64-byte echo, 50 concurrent),
#     for a time, and for a fixed 20,000 connections with every echo checked;
#     the relay's context switches and CPU migrations per connection, its
#     CPU time per connection and the whole machine's (client, server and
#     kernel included: with "direct", what the relay adds to)
#   - bulk, 1 stream, to a receiver that reads into user space
#   - memory per idle relayed connection (PSS from /proc/PID/smaps_rollup,
#     summed over the relay's processes, before and with N idle connections)
#   - data logging: relaytcp -d against socat -x, both writing to a file
#   - conn/s through a route with 3 backends (roundrobin over 127.0.0.1,
#     .2 and .3 of the same echo server, so that only the relay differs)
#     against relaytcp's single-backend route
#   - UDP: datagrams/s and loss of an echo, iperf3's UDP test, memory per
#     idle session; bursts of BURST clients sending at the same moment, on
#     an idle machine and with every core kept busy
#   - TLS (scripts/tlsbench): TLS 1.3 handshakes/s (ECDSA P-256, RSA 2048)
#     and 1 stream MB/s through a terminating route, stunnel4 and HAProxy
#     (ssl); an sni= route's conn/s against a plain route's
# Every figure is the median of ROUNDS rounds; ratios are to HAProxy, or to
# socat -x for the logging row. Absolute numbers move by 20% between runs on
# these machines: compare ratios.
#
#   scripts/bench.sh                 ROUNDS=5 DURATION=5 IDLE=2000 FIXED=20000 BURST=1000
#   QUICK=1 scripts/bench.sh         one short round, for a smoke test
#   OUT=file.md scripts/bench.sh     where the table goes (default bench-results.md)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
FIXED=${FIXED:-20000}
DURATION=${DURATION:-5}
IDLE=${IDLE:-2000}
BURST=${BURST:-1000}
OUT=${OUT:-bench-results.md}
if [ "${QUICK:-}" = 1 ]; then
	ROUNDS=1 DURATION=2 IDLE=500 FIXED=2000
fi

for tool in haproxy socat iperf3 stunnel4; do
	if ! command -v "$tool" >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy socat iperf3 stunnel4 >/dev/null
		break
	fi
done
ulimit -n "$(ulimit -Hn)"

tmp=$(mktemp -d /tmp/relaytcp-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	pkill -P $$ 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/relaytcp" .
go build -o "$tmp/loadgen" ./scripts/loadgen
go build -o "$tmp/tlsbench" ./scripts/tlsbench

# Ports below the ephemeral range, so no client socket can hold them.
P_ECHO=19101 P_SINK=19102 P_SINKREAD=19103
start_bg() { "$@" & pids+=($!); }
wait_port() {
	local i
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "bench: nothing listens on port $1" >&2
	return 1
}

start_bg "$tmp/loadgen" echo -listen 127.0.0.1:$P_ECHO,127.0.0.2:$P_ECHO,127.0.0.3:$P_ECHO >/dev/null
start_bg "$tmp/loadgen" sink -listen 127.0.0.1:$P_SINK >/dev/null
start_bg "$tmp/loadgen" sinkread -listen 127.0.0.1:$P_SINKREAD >/dev/null
wait_port $P_ECHO
wait_port $P_SINK
wait_port $P_SINKREAD

# Each target has a front port for the echo server and one for the sink; the
# process ids whose CPU counts are kept per target.
declare -A ECHO_PORT SINK_PORT SINK_PIDS ECHO_PIDS SINKREAD_PORT
ECHO_PORT[direct]=$P_ECHO SINK_PORT[direct]=$P_SINK SINKREAD_PORT[direct]=$P_SINKREAD

start_bg "$tmp/relaytcp" -q 19111 127.0.0.1 $P_ECHO >/dev/null
ECHO_PIDS[relaytcp]=$!
start_bg "$tmp/relaytcp" -q 19114 127.0.0.1 $P_SINKREAD >/dev/null
SINKREAD_PORT[relaytcp]=19114
start_bg "$tmp/relaytcp" -q 19112 127.0.0.1 $P_SINK >/dev/null
SINK_PIDS[relaytcp]=$!
ECHO_PORT[relaytcp]=19111 SINK_PORT[relaytcp]=19112
start_bg "$tmp/relaytcp" -q 19113 127.0.0.1 $P_ECHO -also 127.0.0.2:$P_ECHO,127.0.0.3:$P_ECHO >/dev/null
ECHO_PORT[relaytcp 3 backends]=19113

# HAProxy 2.6 in TCP mode, one process, its default threads (one per core).
cat >"$tmp/haproxy.cfg" <<EOF
global
  maxconn 9000
defaults
  mode tcp
  timeout connect 10s
  timeout client 1h
  timeout server 1h
frontend echo
  bind 127.0.0.1:19121
  default_backend echo
backend echo
  server s 127.0.0.1:$P_ECHO
frontend sink
  bind 127.0.0.1:19122
  default_backend sink
backend sink
  server s 127.0.0.1:$P_SINK
frontend sinkread
  bind 127.0.0.1:19124
  default_backend sinkread
backend sinkread
  server s 127.0.0.1:$P_SINKREAD
EOF
start_bg haproxy -db -f "$tmp/haproxy.cfg"
SINK_PIDS[haproxy]=$! ECHO_PIDS[haproxy]=$!
ECHO_PORT[haproxy]=19121 SINK_PORT[haproxy]=19122 SINKREAD_PORT[haproxy]=19124

# socat forks a process per connection: its figures sum the parent and children.
start_bg socat TCP-LISTEN:19131,bind=127.0.0.1,fork,reuseaddr,backlog=4096 TCP:127.0.0.1:$P_ECHO
start_bg socat TCP-LISTEN:19132,bind=127.0.0.1,fork,reuseaddr,backlog=4096 TCP:127.0.0.1:$P_SINK
SINK_PIDS[socat]=$!
ECHO_PORT[socat]=19131 SINK_PORT[socat]=19132

# Data logging, both writing their hex dumps to files in $tmp/logs.
mkdir -p "$tmp/logs"
(cd "$tmp/logs" && exec "$tmp/relaytcp" -q -d 19142 127.0.0.1 $P_SINK >/dev/null) &
pids+=($!) SINK_PIDS[relaytcp -d]=$!
SINK_PORT[relaytcp -d]=19142
start_bg sh -c "exec socat -x TCP-LISTEN:19152,bind=127.0.0.1,fork,reuseaddr TCP:127.0.0.1:$P_SINK 2>'$tmp/logs/socat-x.log'"
SINK_PIDS[socat -x]=$!
SINK_PORT[socat -x]=19152

for p in 19111 19112 19113 19114 19121 19122 19124 19131 19132 19142 19152; do wait_port $p; done

# proc_tree lists a process and its descendants.
proc_tree() {
	local p=$1 c
	echo "$p"
	for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do proc_tree "$c"; done
}
# pss_kib sums the PSS of processes, in KiB.
pss_kib() {
	local total=0 p v
	for p in "$@"; do
		v=$(awk '/^Pss:/{print $2}' /proc/"$p"/smaps_rollup 2>/dev/null || echo 0)
		total=$((total + ${v:-0}))
	done
	echo $total
}
# cpu_ticks sums user+system time of a process and its reaped children.
cpu_ticks() { awk '{print $14+$15+$16+$17}' /proc/"$1"/stat; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

declare -A R # R[target,metric] = space-separated values, one per round
add() { R[$1,$2]="${R[$1,$2]:-} $3"; }
# median of a metric's rounds; ratio of two figures (the rounds' own ratios
# are printed as they come, so both are defined before the first round).
median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{a[NR]=$1} END{if (NR==0) print "-"; else print a[int((NR+1)/2)]}'; }
m() { echo "${R[$1,$2]:-}" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="-"||b=="-"||b==0) print "-"; else printf "%.2f×", a/b }'; }

run_bulk() { # target streams -> MB/s (and CPU s/GB for 1 stream)
	local t=$1 s=$2 pid=${SINK_PIDS[$1]:-} before after out mb
	[ -n "$pid" ] && before=$(cpu_ticks "$pid")
	out=$("$tmp/loadgen" bulk -addr 127.0.0.1:"${SINK_PORT[$t]}" -streams "$s" -duration "${DURATION}s")
	mb=$(echo "$out" | field MBps)
	add "$t" "bulk$s" "$mb"
	if [ -n "$pid" ] && [ "$s" = 1 ] && [[ $t != *-[dx] ]]; then
		sleep 0.3 # let socat reap its child
		after=$(cpu_ticks "$pid")
		local bytes clk
		bytes=$(echo "$out" | field bytes) clk=$(getconf CLK_TCK)
		add "$t" cpu_per_gb "$(awk -v d=$((after - before)) -v b="$bytes" -v c="$clk" 'BEGIN{printf "%.3f", d/c/(b/1e9)}')"
	fi
}

run_connrate() {
	local t=$1 out
	out=$("$tmp/loadgen" connrate -addr 127.0.0.1:"${ECHO_PORT[$t]}" -concurrency 50 -duration "${DURATION}s")
	add "$t" connps "$(echo "$out" | field connps)"
	add "$t" p99 "$(echo "$out" | field p99ms)"
}

# sched_counts prints a process's voluntary context switches and CPU
# migrations, summed over its threads, and its thread count.
sched_counts() {
	local pid=$1 vol=0 mig=0 n=0 task v m
	for task in /proc/"$pid"/task/*; do
		v=$(awk '/^voluntary_ctxt_switches:/{print $2}' "$task/status" 2>/dev/null || echo 0)
		m=$(awk '/^se.nr_migrations/{print $3}' "$task/sched" 2>/dev/null || echo 0)
		vol=$((vol + ${v:-0})) mig=$((mig + ${m:-0})) n=$((n + 1))
	done
	echo "$vol $mig $n"
}

# machine_ticks is the CPU time every process and the kernel spent, in
# ticks: user, nice, system, irq and softirq of /proc/stat (idle, iowait and
# steal left out).
machine_ticks() { awk '/^cpu /{printf "%.0f\n", $2+$3+$4+$7+$8}' /proc/stat; }
# per_conn_us turns ticks spent on the fixed count into µs per connection.
per_conn_us() { awk -v d="$1" -v c="$(getconf CLK_TCK)" -v n="$FIXED" 'BEGIN{printf "%.1f", d/c*1e6/n}'; }

# run_connfixed: the second load shape, a fixed count with every echo
# checked; for the relays, their context switches and migrations per
# connection and their threads while busy.
run_connfixed() {
	local t=$1 pid=${ECHO_PIDS[$1]:-} out before after busy cpu0 cpu1 mach0 mach1
	[ -n "$pid" ] && before=$(sched_counts "$pid") && cpu0=$(cpu_ticks "$pid")
	mach0=$(machine_ticks)
	"$tmp/loadgen" connfixed -addr 127.0.0.1:"${ECHO_PORT[$t]}" -n "$FIXED" -concurrency 50 >"$tmp/fixed.out" &
	local lg=$!
	sleep 0.5
	[ -n "$pid" ] && busy=$(sched_counts "$pid")
	wait $lg
	mach1=$(machine_ticks)
	out=$(cat "$tmp/fixed.out")
	if [ "$(echo "$out" | field mismatches)" != 0 ] || [ "$(echo "$out" | field failures)" != 0 ]; then
		echo "bench: $t: $out" >&2
	fi
	add "$t" machine_us_per_conn "$(per_conn_us $((mach1 - mach0)))"
	add "$t" fixed_connps "$(echo "$out" | field connps)"
	add "$t" fixed_p99 "$(echo "$out" | field p99ms)"
	if [ -n "$pid" ]; then
		after=$(sched_counts "$pid")
		add "$t" cs_per_conn "$(awk -v a="${after% * *}" -v b="${before% * *}" -v n="$FIXED" 'BEGIN{printf "%.3f", (a-b)/n}')"
		local am bm
		am=$(echo "$after" | cut -d' ' -f2) bm=$(echo "$before" | cut -d' ' -f2)
		add "$t" mig_per_conn "$(awk -v a="$am" -v b="$bm" -v n="$FIXED" 'BEGIN{printf "%.4f", (a-b)/n}')"
		add "$t" threads "$(echo "$busy" | cut -d' ' -f3)"
		cpu1=$(cpu_ticks "$pid")
		add "$t" cpu_us_per_conn "$(per_conn_us $((cpu1 - cpu0)))"
	fi
}

run_bulkread() {
	local t=$1 out
	out=$("$tmp/loadgen" bulk -addr 127.0.0.1:"${SINKREAD_PORT[$t]}" -streams 1 -duration "${DURATION}s")
	add "$t" bulkread "$(echo "$out" | field MBps)"
}

# start_idle_target starts a fresh instance of a target in front of the echo
# server on port 19160, for the memory measurement alone (a process that has
# just run the other loads holds memory it has not yet returned).
start_idle_target() {
	case $1 in
	relaytcp) "$tmp/relaytcp" -q 19160 127.0.0.1 $P_ECHO >/dev/null & ;;
	haproxy)
		sed -e '/^frontend sink/,$d' -e 's/19121/19160/' "$tmp/haproxy.cfg" >"$tmp/haproxy-idle.cfg"
		haproxy -db -f "$tmp/haproxy-idle.cfg" &
		;;
	socat) socat TCP-LISTEN:19160,bind=127.0.0.1,fork,reuseaddr,backlog=4096 TCP:127.0.0.1:$P_ECHO & ;;
	esac
	IDLE_PID=$!
	wait_port 19160
}

run_idle() {
	local t=$1 before after lg i
	start_idle_target "$t"
	sleep 1
	# shellcheck disable=SC2046
	before=$(pss_kib $(proc_tree "$IDLE_PID"))
	"$tmp/loadgen" idle -addr 127.0.0.1:19160 -n "$IDLE" -hold 60s >"$tmp/idle.out" &
	lg=$!
	for i in $(seq 600); do grep -q READY "$tmp/idle.out" 2>/dev/null && break; sleep 0.1; done
	sleep 1
	# shellcheck disable=SC2046
	after=$(pss_kib $(proc_tree "$IDLE_PID"))
	kill $lg 2>/dev/null || true
	wait $lg 2>/dev/null || true
	kill "$IDLE_PID" 2>/dev/null || true
	wait "$IDLE_PID" 2>/dev/null || true
	add "$t" idle_kib "$(awk -v a="$after" -v b="$before" -v n="$IDLE" 'BEGIN{printf "%.1f", (a-b)/n}')"
	sleep 1
}

for round in $(seq "$ROUNDS"); do
	echo "round $round of $ROUNDS" >&2
	for t in direct relaytcp haproxy socat; do
		run_bulk "$t" 1
		run_bulk "$t" 4
		run_connrate "$t"
		[ "$t" = relaytcp ] && run_connrate "relaytcp 3 backends"
		[ "$t" != socat ] && run_connfixed "$t" && run_bulkread "$t"
		[ "$t" != direct ] && run_idle "$t"
	done
	# The rounds' own ratios, relaytcp to HAProxy, as they come.
	last() { echo "${R[$1,$2]:-}" | awk '{print $NF}'; }
	echo "round $round: conn/s $(ratio "$(last relaytcp connps)" "$(last haproxy connps)"), fixed $(ratio "$(last relaytcp fixed_connps)" "$(last haproxy fixed_connps)"), 1 stream $(ratio "$(last relaytcp bulk1)" "$(last haproxy bulk1)"), 1 stream read $(ratio "$(last relaytcp bulkread)" "$(last haproxy bulkread)"), relay CPU/conn $(ratio "$(last relaytcp cpu_us_per_conn)" "$(last haproxy cpu_us_per_conn)")" >&2
	for t in "relaytcp -d" "socat -x"; do
		run_bulk "$t" 1
		rm -f "$tmp"/logs/RL*.LOG
		: >"$tmp/logs/socat-x.log"
	done
done

# Memory of a 10,000-port range (ports 20000-29999) against a one-port
# route, both fresh and idle.
range_rss() {
	local one many
	"$tmp/relaytcp" -q 19170 127.0.0.1 $P_ECHO >/dev/null &
	one=$!
	"$tmp/relaytcp" -q 20000-29999 127.0.0.1 $P_ECHO >"$tmp/range.out" 2>&1 &
	many=$!
	wait_port 19170
	for i in $(seq 200); do grep -q "Ready to relay" "$tmp/range.out" && break; sleep 0.1; done
	sleep 1
	RANGE_ONE=$(awk '/^VmRSS:/{print $2}' /proc/$one/status)
	RANGE_MANY=$(awk '/^VmRSS:/{print $2}' /proc/$many/status)
	kill $one $many 2>/dev/null || true
	wait $one $many 2>/dev/null || true
}
range_rss

# UDP: datagrams/s and loss of 50 sessions each sending a 64-byte datagram
# and waiting for its echo, direct, through relaytcp and through socat
# (UDP-RECVFROM fork); iperf3's UDP test (1400-byte datagrams at
# 500 Mbit/s) direct and through relaytcp (a TCP and a UDP route on one port:
# iperf3's control connection and its data); memory per idle session.
P_UECHO=19181 P_IPERF=19182
start_bg "$tmp/loadgen" udpecho -listen 127.0.0.1:$P_UECHO >/dev/null
start_bg "$tmp/relaytcp" -q 19183 127.0.0.1 $P_UECHO -udp >/dev/null
start_bg socat UDP-RECVFROM:19184,bind=127.0.0.1,fork UDP:127.0.0.1:$P_UECHO
start_bg "$tmp/relaytcp" -q 19185 127.0.0.1 $P_IPERF >/dev/null
start_bg "$tmp/relaytcp" -q 19185 127.0.0.1 $P_IPERF -udp >/dev/null
sleep 1
declare -A UDP_PORT=([direct]=$P_UECHO [relaytcp]=19183 [socat]=19184)
run_udprate() {
	local out
	out=$("$tmp/loadgen" udprate -addr 127.0.0.1:"${UDP_PORT[$1]}" -concurrency 50 -duration "${DURATION}s")
	add "$1" dgps "$(echo "$out" | field dgps)"
	add "$1" loss "$(echo "$out" | field lossratio)"
}
run_iperf() { # target port
	local json
	pkill -f "iperf3 -s -p $P_IPERF" 2>/dev/null || true
	iperf3 -s -p $P_IPERF -1 >/dev/null 2>&1 &
	sleep 0.5
	json=$(iperf3 -c 127.0.0.1 -p "$2" -u -b 500M -l 1400 -t "$DURATION" -J 2>/dev/null) || return 0
	add "$1" iperf_mbps "$(echo "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin)["end"]["sum"]; print("%.1f" % (d["bits_per_second"]/1e6))')"
	add "$1" iperf_loss "$(echo "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin)["end"]["sum"]; print("%.2f" % d["lost_percent"])')"
}
udp_idle_kib() {
	local pid before after lg i n=${IDLE}
	"$tmp/relaytcp" -q 19186 127.0.0.1 $P_UECHO -udp -idle 10m >/dev/null &
	pid=$!
	sleep 1
	before=$(pss_kib "$pid")
	add relaytcp udp_route_kib "$(awk '/^VmRSS:/{print $2}' /proc/"$pid"/status)"
	"$tmp/loadgen" udpidle -addr 127.0.0.1:19186 -n "$n" -hold 60s >"$tmp/udpidle.out" &
	lg=$!
	for i in $(seq 600); do grep -q READY "$tmp/udpidle.out" 2>/dev/null && break; sleep 0.1; done
	sleep 1
	after=$(pss_kib "$pid")
	kill $lg $pid 2>/dev/null || true
	wait $lg $pid 2>/dev/null || true
	add relaytcp udp_idle_kib "$(awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN{printf "%.1f", (a-b)/n}')"
}

# UDP bursts: BURST clients (each a socket: a session) send one 64-byte
# datagram each at the same moment and wait for its echo, then again with
# their sessions open; on an idle machine, and while a busy loop per core
# keeps every core busy. Direct to an echo server whose socket has 4 MiB
# (so that it is not the one that drops), through relaytcp (its default
# 4 MiB receive buffer), through relaytcp -rcvbuf 104K (the system's
# default, net.core.rmem_default, as before rcvbuf=: Linux doubles the
# value set), and through socat. relaytcp's drop counters (its metrics)
# are compared with the datagrams lost.
P_UECHOB=19187
start_bg "$tmp/loadgen" udpecho -listen 127.0.0.1:$P_UECHOB -rcvbuf 4194304 >/dev/null
start_bg "$tmp/relaytcp" -q 19188 127.0.0.1 $P_UECHOB -udp -metrics 127.0.0.1:19198 >/dev/null
start_bg "$tmp/relaytcp" -q 19189 127.0.0.1 $P_UECHOB -udp -rcvbuf 104K -metrics 127.0.0.1:19199 >/dev/null
start_bg socat UDP-RECVFROM:19190,bind=127.0.0.1,fork UDP:127.0.0.1:$P_UECHOB 2>/dev/null
sleep 1
BURST_TARGETS=(direct relaytcp "relaytcp -rcvbuf 104K" socat)
declare -A BURST_PORT=([direct]=$P_UECHOB [relaytcp]=19188 ["relaytcp -rcvbuf 104K"]=19189 [socat]=19190)
declare -A BURST_METRICS=([relaytcp]=19198 ["relaytcp -rcvbuf 104K"]=19199)
udp_dropped() { # metrics port -> the route's dropped datagrams, all reasons
	python3 -c 'import sys,urllib.request; print(sum(int(float(l.split()[-1])) for l in urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1]).read().decode().splitlines() if l.startswith("relaytcp_route_datagrams_dropped_total")))' "$1"
}
run_burst() { # target idle|busy
	local t=$1 mode=$2 out before=0 after=0
	[ -n "${BURST_METRICS[$t]:-}" ] && before=$(udp_dropped "${BURST_METRICS[$t]}")
	out=$("$tmp/loadgen" udpburst -addr 127.0.0.1:"${BURST_PORT[$t]}" -n "$BURST" -wait 3s)
	add "$t" "burst_${mode}_lost" "$(echo "$out" | field first_lost)"
	add "$t" "burst_${mode}_dgps" "$(echo "$out" | field first_dgps)"
	add "$t" "burst_${mode}_lost2" "$(echo "$out" | field again_lost)"
	add "$t" "burst_${mode}_dgps2" "$(echo "$out" | field again_dgps)"
	if [ -n "${BURST_METRICS[$t]:-}" ]; then
		after=$(udp_dropped "${BURST_METRICS[$t]}")
		add "$t" "burst_${mode}_counted" $((after - before))
	fi
}
BUSY=()
busy_start() { local i; for i in $(seq "$(nproc)"); do sh -c 'while :; do :; done' & BUSY+=($!); done; }
busy_stop() { kill "${BUSY[@]}" 2>/dev/null || true; wait "${BUSY[@]}" 2>/dev/null || true; BUSY=(); }
for round in $(seq "$ROUNDS"); do
	echo "UDP round $round of $ROUNDS" >&2
	for t in direct relaytcp socat; do run_udprate "$t"; done
	run_iperf direct $P_IPERF
	run_iperf relaytcp 19185
	udp_idle_kib
	for t in "${BURST_TARGETS[@]}"; do run_burst "$t" idle; done
	busy_start
	for t in "${BURST_TARGETS[@]}"; do run_burst "$t" busy; done
	busy_stop
done


{
	echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $ROUNDS round(s) of ${DURATION}s, $IDLE idle connections; medians."
	echo "Ratios in brackets are to HAProxy in the same run (for -d: to socat -x)."
	echo
	echo "| target | 1 stream MB/s | 4 streams MB/s | CPU s/GB | conn/s | p99 ms | KiB per idle conn |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for t in direct relaytcp haproxy socat; do
		row="| $t"
		for metric in bulk1 bulk4 cpu_per_gb connps p99 idle_kib; do
			v=$(m "$t" $metric)
			row="$row | $v"
			if [ "$t" != haproxy ] && [ "$v" != - ]; then row="$row ($(ratio "$v" "$(m haproxy $metric)"))"; fi
		done
		echo "$row |"
	done
	for t in "relaytcp -d" "socat -x"; do
		v=$(m "$t" bulk1)
		echo "| $t | $v ($(ratio "$v" "$(m "socat -x" bulk1)")) | | | | | |"
	done
	t="relaytcp 3 backends"
	echo "| $t | | | | $(m "$t" connps) ($(ratio "$(m "$t" connps)" "$(m relaytcp connps)") relaytcp) | $(m "$t" p99) | |"
	echo
	echo "Second load shape ($FIXED connections, 50 at a time, every echo checked), the relays' scheduling per connection, and 1 stream to a receiver that reads into user space:"
	echo
	echo "| target | conn/s | p99 ms | relay CPU µs / conn | machine CPU µs / conn | voluntary context switches / conn | CPU migrations / conn | threads while busy | 1 stream, read MB/s |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for t in direct relaytcp haproxy; do
		row="| $t"
		for metric in fixed_connps fixed_p99 cpu_us_per_conn machine_us_per_conn cs_per_conn mig_per_conn threads bulkread; do
			v=$(m "$t" $metric)
			row="$row | $v"
			if [ "$t" != haproxy ] && [ "$v" != - ] && [ "$metric" != threads ]; then row="$row ($(ratio "$v" "$(m haproxy $metric)"))"; fi
		done
		echo "$row |"
	done
	echo
	echo "UDP, ratios to direct in the same run:"
	echo
	echo "| target | datagrams/s (50 sessions, echo) | lost | iperf3 UDP Mbit/s | iperf3 loss % | KiB per idle session |"
	echo "|---|---:|---:|---:|---:|---:|"
	for t in direct relaytcp socat; do
		d=$(m "$t" dgps)
		row="| $t | $d"
		[ "$t" != direct ] && row="$row ($(ratio "$d" "$(m direct dgps)"))"
		row="$row | $(m "$t" loss)"
		if [ "$t" != socat ]; then
			i=$(m "$t" iperf_mbps)
			row="$row | $i"
			[ "$t" != direct ] && row="$row ($(ratio "$i" "$(m direct iperf_mbps)"))"
			row="$row | $(m "$t" iperf_loss)"
		else
			row="$row | | "
		fi
		[ "$t" = relaytcp ] && row="$row | $(m relaytcp udp_idle_kib)" || row="$row | "
		echo "$row |"
	done
	echo
	echo "UDP bursts: $BURST clients each send one datagram at the same moment and wait up to 3 s for its echo; the datagrams lost of $BURST, and the answers per second from the release to the last answer; first with new sessions, then again with them open; on an idle machine, then with a busy loop per core. 'counted' is relaytcp's drop counter over both bursts (its metrics); the echo server's socket has 4 MiB:"
	echo
	echo "| target | idle: lost, new sessions | answers/s | lost, open sessions | answers/s | counted | busy cores: lost, new sessions | answers/s | lost, open sessions | answers/s | counted |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for t in "${BURST_TARGETS[@]}"; do
		row="| $t"
		for mode in idle busy; do
			for metric in lost dgps lost2 dgps2 counted; do
				row="$row | $(m "$t" "burst_${mode}_$metric")"
			done
		done
		echo "$row |"
	done
	echo
	echo "A UDP route's process: RSS $(m relaytcp udp_route_kib) KiB before any session (its 4 MiB receive buffers are empty: they hold no memory)."
	echo
	echo "A 10,000-port range (20000-29999): RSS $((RANGE_MANY / 1024)) MiB against $((RANGE_ONE / 1024)) MiB for one port, $(awk -v a="$RANGE_MANY" -v b="$RANGE_ONE" 'BEGIN{printf "%.2f", (a-b)/9999}') KiB per port."
} | tee "$OUT"

# TLS routes (issue 23), their own table: tlsbench starts its contenders.
{ echo; "$tmp/tlsbench" -relaytcp "$tmp/relaytcp" -duration "${DURATION}s" -rounds "$ROUNDS"; } | tee -a "$OUT"
