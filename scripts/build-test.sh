#!/usr/bin/env bash
# Tests the release build: scripts/build.sh with VERSION=1.2.3 and a
# throwaway self-signed certificate, then checks what dist/ holds: every
# artifact, SHA256SUMS, the signatures (osslsigncode verify), the one version
# everywhere (binary, Windows version resource, MSI), the manifest, the
# notices and the docs in every archive.
# Prints "build: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/testlib.sh
source scripts/testlib.sh

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=relaytcp test signing" \
	-keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
VERSION=1.2.3 SIGN_CERT="$T/cert.pem" SIGN_KEY="$T/key.pem" scripts/build.sh >"$T/build.log" 2>&1 || {
	cat "$T/build.log"
	exit 1
}

for f in relaytcp-1.2.3-x64.msi relaytcp-1.2.3-windows-amd64.zip relaytcp-1.2.3-windows-386.zip \
	relaytcp-1.2.3-linux-amd64.tar.gz relaytcp-1.2.3-linux-arm64.tar.gz relaytcp-1.2.3-darwin-arm64.tar.gz \
	SHA256SUMS THIRD_PARTY_NOTICES.txt; do
	check "dist/$f" test -s "dist/$f"
done
check "SHA256SUMS verify" sh -c "cd dist && sha256sum -c --quiet SHA256SUMS"
# Every archive holds the docs/ pages git tracks and whatever else the
# README links to (docs/*.md, an image), under its top folder.
{
	git ls-files docs
	grep -oE '\]\([^):#]+' README.md | cut -c3-
} | sort -u >"$T/want"
holds_docs() { # holds_docs ARCHIVE
	local missing
	missing=$(case $1 in
		*.zip) python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$1" ;;
		*) tar -tzf "$1" ;;
		esac | sed 's|^[^/]*/||' | sort -u | comm -23 "$T/want" -)
	[ -z "$missing" ] || { echo "$1 lacks: ${missing//$'\n'/ }" >&2; return 1; }
}
check "README links to docs/install.md" grep -qx docs/install.md "$T/want"
for a in dist/*.tar.gz dist/*.zip; do
	check "${a#dist/} holds docs/ and README's links" holds_docs "$a"
done
check "notices name golang.org/x/sys" grep -q '==== golang.org/x/sys' dist/THIRD_PARTY_NOTICES.txt
tar -xzf dist/relaytcp-1.2.3-linux-amd64.tar.gz -C "$T"
check "linux binary says 1.2.3" sh -c "'$T/relaytcp-1.2.3-linux-amd64/relaytcp' version | grep -q '^relaytcp 1.2.3 '"
check "linux archive has scripts/relaytcp.service, where the README's systemd step takes it" test -s "$T/relaytcp-1.2.3-linux-amd64/scripts/relaytcp.service"
check "linux binary is static" sh -c "! ldd '$T/relaytcp-1.2.3-linux-amd64/relaytcp' >/dev/null 2>&1"
(cd "$T" && python3 -m zipfile -e "$OLDPWD/dist/relaytcp-1.2.3-windows-amd64.zip" .)
exe="$T/relaytcp-1.2.3-windows-amd64/relaytcp.exe"
check "exe signature verifies" sh -c "osslsigncode verify -CAfile '$T/cert.pem' -in '$exe' >/dev/null 2>&1"
check "msi signature verifies" sh -c "osslsigncode verify -CAfile '$T/cert.pem' -in dist/relaytcp-1.2.3-x64.msi >/dev/null 2>&1"
check "exe version resource 1.2.3" sh -c "strings -el '$exe' | grep -A1 -x FileVersion | grep -qx 1.2.3"
check "exe has the message table" sh -c "x86_64-w64-mingw32-objdump -p '$exe' | grep -q 'ID: 0x00000b'"
check "exe has the manifest (RT_MANIFEST, type 24)" sh -c "x86_64-w64-mingw32-objdump -p '$exe' | grep -q 'Entry: ID: 0x000018'"
# asInvoker, and the supportedOS GUIDs of Windows 7, 8, 8.1 and 10/11.
# grep reads all of strings' output: with -q it would stop at the first match,
# and strings, cut off (SIGPIPE), would fail the pipeline (pipefail).
manifest_has() { strings "$exe" | grep -F -- "$1" >/dev/null; }
check "manifest: asInvoker" manifest_has '<requestedExecutionLevel level="asInvoker" uiAccess="false" />'
for guid in 35138b9a-5d96-4fbd-8e2d-a2440225f93a 4a2f28e3-53b9-4441-ba9c-d69d4a4a6e38 \
	1f676c76-80e1-4239-95bb-83d0f6d0da78 8e0f7a12-bfb3-4fe8-b9a5-48fd50a15a9a; do
	check "manifest: supportedOS {$guid}" manifest_has "<supportedOS Id=\"{$guid}\" />"
done
check "msi ProductVersion 1.2.3" sh -c "msiinfo export dist/relaytcp-1.2.3-x64.msi Property | tr -d '\r' | grep -qx 'ProductVersion	1.2.3'"
check "committed .syso untouched" git diff --quiet -- rsrc_windows_amd64.syso rsrc_windows_386.syso
summary build
