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
