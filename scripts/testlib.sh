# shellcheck shell=bash
# Sourced by the script tests (wine-service-test.sh, wine-msi-test.sh,
# build-test.sh): a tiny test runner and loopback helpers.

passed=0 failed=0

# check NAME COMMAND...: runs one test and counts it.
check() {
	if "${@:2}"; then
		passed=$((passed + 1))
		echo "ok   $1"
	else
		failed=$((failed + 1))
		echo "FAIL $1"
	fi
}

# summary WORD: the closing line "WORD: N passed, N failed"; fails if any did.
summary() {
	echo "$1: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

# wait_port PORT: waits up to 20 s for a listener on 127.0.0.1:PORT.
wait_port() {
	local i
	for i in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# relay_check PORT: sends 2 MB of random bytes through 127.0.0.1:PORT to an
# echo server, half-closes, and checks the echo by SHA-256.
relay_check() {
	python3 - "$1" <<'PY'
import hashlib, os, socket, sys, threading
data = os.urandom(2_000_000)
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=20)
def send():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send)
t.start()
got = bytearray()
while True:
    b = s.recv(1 << 16)
    if not b:
        break
    got += b
t.join()
sys.exit(0 if hashlib.sha256(got).digest() == hashlib.sha256(data).digest() else 1)
PY
}

# has FILE TEXT: FILE (a command's output) holds TEXT, as a fixed string,
# carriage returns aside; else it is shown.
has() { tr -d '\r' <"$1" | grep -qF -- "$2" || { echo "$1 said:"; cat "$1"; echo; return 1; } >&2; }

# wait_text FILE TEXT: waits up to 30 s until FILE holds TEXT.
wait_text() {
	local i
	for i in $(seq 300); do
		tr -d '\r' <"$1" 2>/dev/null | grep -qF -- "$2" && return 0
		sleep 0.1
	done
	echo "no \"$2\" in $1:" >&2
	cat "$1" >&2
	echo >&2 # the file may end without one, in a prompt
	return 1
}

# wait_exit PID: waits up to 30 s for the background job PID to end and
# returns its exit status; one that does not end is killed, and fails.
wait_exit() {
	local i
	for i in $(seq 300); do
		kill -0 "$1" 2>/dev/null || {
			wait "$1"
			return
		}
		sleep 0.1
	done
	echo "process $1 did not end within 30s" >&2
	kill "$1" 2>/dev/null
	return 1
}
