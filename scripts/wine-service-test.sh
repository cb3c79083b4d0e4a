#!/usr/bin/env bash
# End-to-end test of the Windows service under wine, in a fresh prefix:
# the manifest and the help texts; relaytcp install, with the service's
# recovery actions; a start without routes that fails (net start, relaytcp
# start with the reason); routes set with "reg add ... REG_MULTI_SZ" and
# with "relaytcp route add"; net start; a payload relayed both ways and
# checked; status with the service's log directory; events 100/101
# observed; the connection and data logs written; net stop; start and stop
# of a running and a stopped service; a route disabled and enabled again
# (route disable racing with route add); the Windows Firewall rule of
# install and uninstall, -firewall public and 0, and a netsh that fails
# (a recording stand-in for wine's stub netsh); relaytcp uninstall with an
# admin menu open, which then refuses edits; the logs kept. Prints "N
# passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/wine-env.sh
source scripts/wine-env.sh
# shellcheck source=scripts/testlib.sh
source scripts/testlib.sh

trap wine_teardown EXIT
wine_setup
wine_netsh_recorder


T=$WINE_TMP
GOOS=windows GOARCH=amd64 go build -o "$T/relaytcp.exe" .
go build -o "$T/loadgen" ./scripts/loadgen
mkdir -p "$WINEPREFIX/drive_c/relaytcp"
cp "$T/relaytcp.exe" "$WINEPREFIX/drive_c/relaytcp/"
exe='C:\relaytcp\relaytcp.exe'

# services.exe, started by this wineboot, writes the ReportEventW calls of
# the eventlog channel to services.log: that is where events are seen.
wineserver -k 2>/dev/null || true
wineserver -w
WINEDEBUG=-all,+eventlog,fixme+advapi wineserver -p
WINEDEBUG=-all,+eventlog,fixme+advapi wine wineboot 2>"$T/services.log"

ECHO=19301 R0=19311 R1=19312 R2=19313 R3=19314 R4=19315 DEAD=19399 METRICS=19398
"$T/loadgen" echo -listen 127.0.0.1:$ECHO >/dev/null &
echo_pid=$!
trap 'kill $echo_pid 2>/dev/null; [ -n "${KEEP_WINE:-}" ] || wine_teardown' EXIT
wait_port $ECHO

check "manifest: RT_MANIFEST (type 24) in the exe" sh -c "x86_64-w64-mingw32-objdump -p '$T/relaytcp.exe' | grep -q 'Entry: ID: 0x000018'"
check "manifest: asInvoker, Windows 10/11 supported" sh -c "strings '$T/relaytcp.exe' | grep -q 'level=\"asInvoker\"' && strings '$T/relaytcp.exe' | grep -q '8e0f7a12-bfb3-4fe8-b9a5-48fd50a15a9a'"
params='HKLM\SYSTEM\CurrentControlSet\Services\RelayTCPsvc\Parameters'
for c in route admin status; do
	wine "$exe" $c -h >"$T/help-$c.out" 2>&1 || true
	check "$c -h names the registry key" has "$T/help-$c.out" "The configuration is in the registry: $params."
	check "$c -h shows no -config PATH (Linux only)" sh -c "! tr -d '\r' <'$T/help-$c.out' | grep -q -- -config"
done
check "route -h: add, delete, disable and enable need an elevated process" has "$T/help-route.out" "route add, delete, disable and enable need an elevated process"
check "service from a console: clear error" sh -c "! wine '$exe' service 2>'$T/console.err'; grep -q 'only when the Service Control Manager starts it' '$T/console.err'"
check "service from a console: the real command lines" has "$T/console.err" 'start the service with "net start RelayTCPsvc" (or relaytcp start); for the command-line relay run "relaytcp LISTENPORT REMOTEHOST REMOTEPORT"'
check "status before install says Not installed" sh -c "wine '$exe' status | tr -d '\r' | grep -qx 'Status  : Not installed'"
check "route add before install: refused, exit 1" sh -c "wine '$exe' route add 19398 127.0.0.1 1 >'$T/early.out' 2>&1; [ \$? = 1 ]"
check "route add before install: says the service is not installed" has "$T/early.out" "relaytcp route: the RelayTCPsvc service is not installed (run the MSI or relaytcp install first): nothing was changed"
check "route add before install: no orphan Parameters key" sh -c "! wine reg query '$params' >/dev/null 2>&1"
check "install" sh -c "wine '$exe' install >'$T/install.out' 2>&1"
check "install: the firewall rule, in its words" has "$T/install.out" 'Windows Firewall rule RelayTCP added: inbound TCP and UDP to C:\relaytcp\relaytcp.exe, profiles Domain, Private'
check "install: one rule RelayTCP for the exe, Domain and Private (netsh stand-in)" netsh_rule_is 'C:\relaytcp\relaytcp.exe' domain,private
# A rule narrowed by an administrator stays narrowed when it is added again.
check "narrow the rule to 192.168.1.0/24" wine netsh advfirewall firewall set rule name=RelayTCP new remoteip=192.168.1.0/24
check "firewall add again (as an MSI repair does)" sh -c "wine '$exe' firewall add | tr -d '\r' | grep -qx 'Windows Firewall rule RelayTCP added: inbound TCP and UDP to C:.relaytcp.relaytcp.exe, profiles Domain, Private'"
check "firewall add again: one rule, its remote addresses kept" sh -c "[ \$(tr -d '\r' <'$NETSH_DIR/rules.txt' | grep -c 'name=RelayTCP ') = 1 ] && tr -d '\r' <'$NETSH_DIR/rules.txt' | grep -q 'remoteip=192.168.1.0/24'"
key='HKLM\SYSTEM\CurrentControlSet\Services\RelayTCPsvc'
check "install marks the Parameters key (InstalledBy)" sh -c "wine reg query '$params' /v InstalledBy | tr -d '\r' | grep -q 'relaytcp install'"
check "route list without routes: (no routes)" sh -c "wine '$exe' route list | tr -d '\r' | grep -qx '(no routes)'"

# A start that cannot work fails: the service checks its configuration
# before it reports a state. wine's net prints its own words (Service
# request timeout.); Windows' says "could not be started" and the
# service-specific error.
check "net start without routes: exit non-zero" sh -c "! wine net start RelayTCPsvc >'$T/netstart.out' 2>&1"
check "sc query: STOPPED, service-specific exit code 1" sh -c "wine sc query RelayTCPsvc | tr -d '\r' >'$T/sc.out'; grep -q 'STATE *: 1 *STOPPED' '$T/sc.out' && grep -q 'WIN32_EXIT_CODE *: 1066' '$T/sc.out' && grep -q 'SERVICE_EXIT_CODE *: 1 ' '$T/sc.out'"
check "relaytcp start without routes: exit 1" sh -c "wine '$exe' start >'$T/start.out' 2>&1; [ \$? = 1 ]"
check "relaytcp start without routes: says why" has "$T/start.out" "relaytcp start: the service could not start: no routes configured: add one with relaytcp route add LOCALPORT REMOTEHOST REMOTEPORT"
# The recovery actions as the SCM keeps them (wine's SCM does not: install
# writes the value beside the API call). The bytes, as failureActionsValue
# builds them (recovery_windows_test.go checks it): 80510100 reset after
# 86400 s, 00000000 00000000 no reboot message or command, 02000000 two
# actions, 14000000 at offset 20, 01000000 88130000 restart after 5000 ms,
# 01000000 30750000 restart after 30000 ms.
failure_actions=805101000000000000000000020000001400000001000000881300000100000030750000
check "recovery actions: FailureActions REG_BINARY, restart 5s then 30s, reset 1 day" sh -c "wine reg query '$key' /v FailureActions | tr -d '\r' | grep -Eqi '^ +FailureActions +REG_BINARY +$failure_actions\$'"
check "service registered with the service argument" sh -c "wine reg query '$key' /v ImagePath | tr -d '\r' | grep -q 'relaytcp.exe\"\\? service'"
check "event source points at the exe" sh -c "wine reg query 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\RelayTCPsvc' /v EventMessageFile | grep -qi relaytcp.exe"
check "reg add Routes (REG_MULTI_SZ)" wine reg add "$key\\Parameters" /v Routes /t REG_MULTI_SZ /d "$R0 127.0.0.1 $ECHO" /f
check "reg add Debug" wine reg add "$key\\Parameters" /v Debug /t REG_SZ /d 1 /f
check "route add" wine "$exe" route add $R1 localhost $ECHO
check "route list shows both" sh -c "wine '$exe' route list | tr -d '\r' | grep -qx 'Route 1 : From local port $R1 to IP localhost port $ECHO'"
check "net start" wine net start RelayTCPsvc
check "route 0 listens" wait_port $R0
check "route 1 listens" wait_port $R1
check "status says Running" sh -c "wine '$exe' status | tr -d '\r' | grep -q 'Status  : Running'"
check "start when running: exit 0, already running" sh -c "wine '$exe' start | tr -d '\r' | grep -qx 'relaytcp start: the service is already running'"
wine "$exe" status >"$T/status.out" 2>&1
check "status names the registry key" has "$T/status.out" "Config  : $params"
check "status: the service's log directory and today's connection log" has "$T/status.out" "(today's connection log: CO$(date +%y%m%d).LOG)"
check "status: no firewall line while the rule is there and enabled" sh -c "! tr -d '\r' <'$T/status.out' | grep -q '^Firewall'"
# The rule switched off, then gone, as wf.msc would leave it.
cp "$NETSH_DIR/rules.txt" "$T/rules.kept"
sed -i 's/enable=yes/enable=no/' "$NETSH_DIR/rules.txt"
wine "$exe" status >"$T/status-fw.out" 2>&1
check "status: the rule disabled" has "$T/status-fw.out" "Firewall: the inbound rule RelayTCP is disabled in Windows Firewall: other machines may not reach the routes"
check "status: one firewall line, not one per route" test "$(tr -d '\r' <"$T/status-fw.out" | grep -c '^Firewall')" = 1
: >"$NETSH_DIR/rules.txt"
wine "$exe" status >"$T/status-fw.out" 2>&1
check "status: the rule missing, one line" has "$T/status-fw.out" "Firewall: no inbound rule RelayTCP in Windows Firewall: other machines may not reach the routes (relaytcp firewall add, elevated, adds it; see docs/firewall.md)"
cp "$T/rules.kept" "$NETSH_DIR/rules.txt"

check "payload through route 0" relay_check $R0
check "payload through route 1 (by name)" relay_check $R1

# Live status through the service's named pipe: wait_port's connection and
# relay_check's, 2 MB each way.
status_has() {
	local out
	out=$(wine "$exe" status | tr -d '\r')
	grep -qF "$1" <<<"$out" || { echo "status said:"; echo "$out"; return 1; } >&2
}
check "status (pipe): route 0's numbers" status_has "Route 0 : From local port $R0 to IP 127.0.0.1 port $ECHO : listening, 0 open, 2 total, 0 refused, 0 failed, sent 2.0 MB, received 2.0 MB"
check "status (pipe): uptime" status_has "Uptime  : "
check "status -json (pipe)" sh -c "wine '$exe' status -json | tr -d '\r' | grep -q '\"bytes_sent\": 2000000'"

# Live reconfiguration: the running service watches its Parameters key.
check "route add while running" wine "$exe" route add $R2 127.0.0.1 $ECHO
check "the new route starts without a restart" wait_port $R2
check "payload through the new route" relay_check $R2
check "route delete while running" wine "$exe" route delete 0
port_closed() { local i; for i in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null || return 0; sleep 0.1; done; return 1; }
check "the deleted route stops listening" port_closed $R0
check "the other routes still relay" relay_check $R1

# Two backends, the first dead (nothing listens on $DEAD): every connection
# fails over to the second, and the dead one is reported down (event 102).
check "route add with two backends" wine "$exe" route add $R3 127.0.0.1 $DEAD also=127.0.0.1:$ECHO balance=first check=200ms fall=2
check "the route with backends listens" wait_port $R3
failover_ok=0
for i in 1 2 3 4 5; do relay_check $R3 && failover_ok=$((failover_ok + 1)); done
check "5 of 5 connections relayed past the dead backend" test "$failover_ok" = 5
check "backend disable (pipe)" sh -c "wine '$exe' backend disable 2 127.0.0.1:$DEAD | tr -d '\r' | grep -q 'Backend 127.0.0.1:$DEAD of route 2 is disabled'"
check "status shows the disabled backend" status_has "  Backend 127.0.0.1:$DEAD : disabled (draining), down since"
check "backend enable (pipe)" sh -c "wine '$exe' backend enable 2 127.0.0.1:$DEAD | tr -d '\r' | grep -q 'is enabled'"

# Metrics: MetricsAddr in the registry starts the listener without a restart.
check "reg add MetricsAddr" wine reg add "$key\\Parameters" /v MetricsAddr /t REG_SZ /d "127.0.0.1:$METRICS" /f
check "metrics listener starts" wait_port $METRICS
metrics() { python3 -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "http://127.0.0.1:$METRICS/metrics"; }
# The output is taken whole before grep reads it: under pipefail, grep -q
# quitting at its first match would fail the check by breaking the pipe of
# a writer that has more to write.
metrics_has() { local m; m=$(metrics) && grep -qxF "$1" <<<"$m"; }
metrics_pass_promtool() { local m; m=$(metrics) && [ -n "$m" ] && promtool check metrics <<<"$m"; }
# wait_port's connection and relay_check's five.
check "metrics: route 2's connections" metrics_has "relaytcp_route_connections_total{route=\"2\",listen=\":$R3\"} 6"
if command -v promtool >/dev/null; then
	check "metrics pass promtool" metrics_pass_promtool
fi

# A route switched off and on again (disabled=1 in the Routes value): its
# port is free when route disable returns, status says disabled, the other
# routes relay; an enable racing with a route add from another process
# loses neither.
# bindable PORT: a new listener can bind PORT (SO_REUSEADDR: only a socket
# that listens there is in the way, not connections that closed).
bindable() { python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", int(sys.argv[1]))); s.close()' "$1"; }
check "route disable :$R2" sh -c "wine '$exe' route disable :$R2 | tr -d '\r' >'$T/disable.out'; grep -qx 'disabled' '$T/disable.out' && grep -qx 'Route 1 : From local port $R2 to IP 127.0.0.1 port $ECHO (disabled)' '$T/disable.out'"
check "the disabled route's port is free at once" bindable $R2
check "status: the route's line says disabled" status_has "Route 1 : From local port $R2 to IP 127.0.0.1 port $ECHO : disabled, 0 open,"
check "status -json: state disabled" sh -c "wine '$exe' status -json | tr -d '\r' | grep -q '\"state\": \"disabled\"'"
check "the registry keeps the route, disabled=1" sh -c "wine reg query '$key\\Parameters' /v Routes | tr -d '\r' | grep -q '$R2 127.0.0.1 $ECHO disabled=1'"
check "the other routes still relay" relay_check $R1
wine "$exe" route add $R4 127.0.0.1 $ECHO >"$T/race-add.out" 2>&1 &
race_add=$!
wine "$exe" route enable :$R2 >"$T/race-enable.out" 2>&1 &
race_enable=$!
check "route add racing with route enable: add succeeds" wait_exit $race_add
check "route add racing with route enable: enable succeeds" wait_exit $race_enable
check "enable: enabled; listening" has "$T/race-enable.out" "enabled; listening"
check "both changes are in the registry" sh -c "wine reg query '$key\\Parameters' /v Routes | tr -d '\r' >'$T/routes.out'; grep -q '$R4 127.0.0.1 $ECHO' '$T/routes.out' && ! grep -q 'disabled=1' '$T/routes.out'"
check "the enabled route relays again" relay_check $R2
check "the route added meanwhile relays" relay_check $R4

# The Parameters key deleted under the running service (a careless regedit,
# a script): the running routes stay, one warning says so, and the key
# written back applies again.
params_deleted() { wine reg delete "$key\\Parameters" /f >/dev/null 2>&1 && sleep 5 && relay_check $R1; }
params_back() { wine reg import "$(winepath -w "$T/params.reg")" >/dev/null 2>&1 && sleep 4 && relay_check $R1 && relay_check $R2; }
check "Parameters key exported (to put it back)" wine reg export "$key\\Parameters" "$(winepath -w "$T/params.reg")" /y
check "Parameters key deleted: the service keeps relaying" params_deleted
check "Parameters key deleted: one warning names the key" sh -c "tr -d '\r' <'$T/services.log' | grep -c 'the running one stays: registry key' | grep -qx 1"
check "Parameters key written back: the routes still relay" params_back

check "net stop" wine net stop RelayTCPsvc
sleep 1
check "stop when stopped: exit 0, not running" sh -c "wine '$exe' stop | tr -d '\r' | grep -qx 'relaytcp stop: the service is not running'"
# events prints "ID text" per event: advapi's ReportEventW line carries the
# ID (0x00000064 is 100), the eventlog channel's next lines the strings.
events() {
	tr -d '\r' <"$T/services.log" | awk '
		/ReportEventW \(/ { split($0, f, ","); id = f[4]; next }
		/eventlog:ReportEventW L"/ { sub(/.*ReportEventW L"/, ""); sub(/"$/, ""); print id, $0 }'
}
ev() { local e; e=$(events) && grep -q "$1" <<<"$e"; }
# %ProgramData% is C:\users\Public under wine 8.
logs=$(find "$WINEPREFIX/drive_c" -type d -path '*/RelayTCP/Logs' -print -quit)
check "event 100 started" ev "0x00000064.*successfully started"
check "event 100 reloaded" ev "0x00000064 The Relay TCP Service configuration was reloaded"
check "event 101 ready (route 0)" ev "0x00000065.*local port $R0 and relay to 127.0.0.1:$ECHO"
check "event 100 stopped" ev "0x00000064.*successfully stopped"
check "event 102 backend down" ev "0x00000066 Backend 127.0.0.1:$DEAD of route 2 is down: connect"
co="$logs/CO$(date +%y%m%d).LOG"
# The directory status showed is the one the service wrote (wine's
# %ProgramData% differs between the service and this shell's programs).
shown=$(tr -d '\r' <"$T/status.out" | sed -n 's/^Log Dir : \(.*\) (today.*/\1/p')
check "status showed the directory the service writes" test "$(winepath -u "$shown" 2>/dev/null)" -ef "$logs"
check "connection log line" sh -c "tr -d '\r' <'$co' | grep -Eq '^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9:]{8} Connection from 127\.0\.0\.1:[0-9]+ to 127\.0\.0\.1:$ECHO$'"
check "data logs (Debug 1)" sh -c "ls '$logs'/RL*.LOG >/dev/null"

check "no routes: the service does not start" sh -c "wine reg add '$key\\Parameters' /v Routes /t REG_MULTI_SZ /d '' /f >/dev/null && ! wine net start RelayTCPsvc >/dev/null 2>&1; sleep 1"
check "event 100 no routes" ev "0x00000064 There is no routes to relay. The Service is stopped"
# An admin menu open during the uninstall notices it and refuses edits;
# nothing recreates the Parameters key.
mkfifo "$T/menu.in"
wine "$exe" admin <"$T/menu.in" >"$T/menu.out" 2>&1 &
menu_pid=$!
exec 7>"$T/menu.in"
check "admin menu open" wait_text "$T/menu.out" "Option: "
check "uninstall" wine "$exe" uninstall
check "service gone" sh -c "! wine reg query '$key' >/dev/null 2>&1"
check "uninstall removed the firewall rule" netsh_no_rule
echo 3 >&7
check "the open menu says the service was uninstalled" wait_text "$T/menu.out" "The RelayTCPsvc service was uninstalled: this menu cannot change its configuration any more"
# The answers that add a route where a menu still lets them (so the
# orphan key was written).
printf '1\n19397\n127.0.0.1\n19301\n\n3\n4\n' >&7
exec 7>&-
check "the open menu exits on 4" wait_exit "$menu_pid"
check "the menu asked for no route" sh -c "! grep -q 'Local port' '$T/menu.out'"
check "no orphan Parameters key after the menu" sh -c "! wine reg query '$params' >/dev/null 2>&1"
check "logs kept" test -f "$co"

# install's -firewall switch, as the MSI's FIREWALL property: public adds
# the Public profile, 0 no rule; a netsh that refuses is a warning, and the
# service is installed and removed all the same.
check "install -firewall public" wine "$exe" install -firewall public
check "install -firewall public: Domain, Private and Public" netsh_rule_is 'C:\relaytcp\relaytcp.exe' domain,private,public
check "uninstall after -firewall public" wine "$exe" uninstall
check "install -firewall 0" wine "$exe" install -firewall 0
check "install -firewall 0: no rule" netsh_no_rule
check "uninstall after -firewall 0" wine "$exe" uninstall
echo "1 The requested operation requires elevation (Run as administrator)." >"$NETSH_DIR/fail"
check "install with a netsh that fails: exit 0" sh -c "wine '$exe' install >'$T/install-fail.out' 2>&1"
check "install with a netsh that fails: says it" has "$T/install-fail.out" "relaytcp install: warning: could not add the Windows Firewall rule RelayTCP (other machines may not reach the routes; see docs/firewall.md): netsh advfirewall firewall add rule name=RelayTCP "
check "install with a netsh that fails: says why" has "$T/install-fail.out" ": exit code 1: The requested operation requires elevation (Run as administrator)."
check "install with a netsh that fails: the service is there" sh -c "wine reg query '$key' /v ImagePath >/dev/null 2>&1"
cp "$T/rules.kept" "$NETSH_DIR/rules.txt" # a rule that netsh then refuses to delete
check "uninstall with a netsh that fails: exit 0, says why" sh -c "wine '$exe' uninstall >'$T/uninstall-fail.out' 2>&1; grep -q 'relaytcp uninstall: warning: could not remove the Windows Firewall rule RelayTCP' '$T/uninstall-fail.out'"
check "uninstall with a netsh that fails: the service is gone" sh -c "! wine reg query '$key' >/dev/null 2>&1"
rm -f "$NETSH_DIR/fail"

summary wine-service
