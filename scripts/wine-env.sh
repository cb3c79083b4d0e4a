# shellcheck shell=bash
# Sourced by the scripts that run relaytcp's Windows build under wine.
#
#   source scripts/wine-env.sh
#   wine_setup        # a fresh, warm wine prefix in a temporary directory
#   wine ...          # WINEPREFIX, WINEDEBUG and WINEARCH are exported
#   wine_teardown     # stops that prefix's wineserver and deletes it
#
# See ../shared/WINDOWS-ON-LINUX.md for why each step is there.

wine_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# wine_install installs wine and the mingw binutils when missing (Debian, as
# root). apt-get update runs once, and only when something is missing.
wine_install() {
	local missing=()
	command -v wine >/dev/null || missing+=(wine wine64)
	command -v x86_64-w64-mingw32-as >/dev/null || missing+=(binutils-mingw-w64-x86-64)
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "wine-env: installing ${missing[*]}" >&2
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# wine_build_prng_dll builds the bcryptprimitives.dll forwarder into $1:
# Go >= 1.24 needs ProcessPrng from it, and wine 8 has no such DLL.
wine_build_prng_dll() {
	local out=$1
	x86_64-w64-mingw32-as -o "$out/dllmain.o" "$wine_root/scripts/wine/dllmain.s"
	x86_64-w64-mingw32-ld --dll -e DllMain --subsystem windows \
		-o "$out/bcryptprimitives.dll" "$out/dllmain.o" "$wine_root/scripts/wine/bcryptprimitives.def"
}

# wine_setup makes a fresh 64-bit prefix that reports Windows 10, with the
# forwarder DLL, and keeps its wineserver running until wine_teardown.
wine_setup() {
	wine_install
	WINE_TMP=$(mktemp -d /tmp/relaytcp-wine.XXXXXX)
	export WINEPREFIX="$WINE_TMP/prefix" WINEDEBUG=${WINEDEBUG:--all} WINEARCH=win64
	unset DISPLAY
	if ! timeout 120 wineboot -i >"$WINE_TMP/wineboot.log" 2>&1; then
		echo "wine-env: wineboot failed:" >&2
		cat "$WINE_TMP/wineboot.log" >&2
		return 1
	fi
	timeout 60 wineserver -w
	timeout 60 wine winecfg -v win10 >/dev/null 2>&1
	wine_build_prng_dll "$WINE_TMP"
	cp "$WINE_TMP/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/"
	# Keep the server up between wine commands: services and a warm start.
	wineserver -p 2>/dev/null || true
}

# wine_teardown stops this prefix's wineserver (no other) and deletes it.
wine_teardown() {
	[ -n "${WINE_TMP:-}" ] || return 0
	WINEPREFIX="$WINE_TMP/prefix" wineserver -k 2>/dev/null || true
	WINEPREFIX="$WINE_TMP/prefix" timeout 30 wineserver -w 2>/dev/null || true
	rm -rf "$WINE_TMP"
	WINE_TMP=
}

# wine_netsh_recorder puts the netsh stand-in (scripts/wine/netsh-recorder)
# at C:\windows\system32\netsh.exe, the path relaytcp runs for the Windows
# Firewall rule: wine's own netsh.exe is a silent stub that does nothing and
# exits 0, so a test could see nothing of what relaytcp asked. wine's stub
# stays beside it as netsh-wine-stub.exe, and a DllOverrides entry makes
# wine run the stand-in rather than its builtin netsh. The stand-in keeps
# its calls and rules in NETSH_DIR (C:\netsh-recorder): calls.log,
# trace.log, rules.txt, and fail ("CODE MESSAGE") to make it refuse changes.
wine_netsh_recorder() {
	local sys32="$WINEPREFIX/drive_c/windows/system32"
	(cd "$wine_root" && GOOS=windows GOARCH=amd64 go build -o "$WINE_TMP/netsh-recorder.exe" ./scripts/wine/netsh-recorder)
	cp "$sys32/netsh.exe" "$sys32/netsh-wine-stub.exe"
	cp "$WINE_TMP/netsh-recorder.exe" "$sys32/netsh.exe"
	wine reg add 'HKCU\Software\Wine\DllOverrides' /v netsh.exe /d native /f >/dev/null
	NETSH_DIR="$WINEPREFIX/drive_c/netsh-recorder"
	mkdir -p "$NETSH_DIR"
}

# netsh_explain prints to stderr what the stand-in was asked last and what
# it holds: the tail of calls.log, of trace.log (each call's time, process,
# exit code and rules before->after; a call in calls.log missing there
# ended before it answered) and rules.txt. A failed firewall check calls
# it, so that the failure explains itself.
netsh_explain() {
	{
		echo "netsh stand-in: its last calls (calls.log):"
		tr -d '\r' <"$NETSH_DIR/calls.log" 2>/dev/null | tail -n 8
		echo "their answers (trace.log):"
		tr -d '\r' <"$NETSH_DIR/trace.log" 2>/dev/null | tail -n 8
		echo "its rules (rules.txt):"
		tr -d '\r' <"$NETSH_DIR/rules.txt" 2>/dev/null
	} >&2
}

# netsh_rules prints the stand-in's rules named RelayTCP, one per line.
netsh_rules() { tr -d '\r' <"$NETSH_DIR/rules.txt" 2>/dev/null | grep 'name=RelayTCP ' || true; }

# netsh_rule_is EXE PROFILES: the stand-in holds exactly one rule named
# RelayTCP, the one relaytcp adds for EXE on PROFILES (domain,private).
netsh_rule_is() {
	local want="advfirewall firewall add rule name=RelayTCP dir=in action=allow program=\"$1\" enable=yes profile=$2 description=\"Lets other machines reach the routes of relaytcp (added by its installer)\""
	[ "$(netsh_rules)" = "$want" ] && return 0
	{ echo "the RelayTCP rules are:"; netsh_rules; echo "want: $want"; } >&2
	netsh_explain
	return 1
}

# netsh_no_rule: the stand-in holds no rule named RelayTCP.
netsh_no_rule() { [ -z "$(netsh_rules)" ] || { echo "rules left: $(netsh_rules)" >&2; netsh_explain; return 1; }; }
