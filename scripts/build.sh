#!/usr/bin/env bash
# Builds a release into dist/: binaries for windows/amd64, windows/386,
# linux/amd64, linux/arm64 and darwin/arm64 (static, trimpath), their
# archives (with the README and docs/), relaytcp-VERSION-x64.msi, the
# third-party notices and SHA256SUMS.
#
#   scripts/build.sh                       VERSION from git describe
#   VERSION=1.2.0 scripts/build.sh         an explicit version
#   SIGN_CERT=cert.pem SIGN_KEY=key.pem scripts/build.sh
#                                          Authenticode-signs the .exe files and the MSI
#
# One VERSION flows into -ldflags, the Windows version resource and the MSI.
# The build runs in a copy of the tracked files, so the committed
# rsrc_windows_*.syso (version 0.0.0) stay as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo 0.0.0)}
VERSION=${VERSION#v}
COMMIT=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# The numeric x.y.z for the resource and the MSI ("1.2.0-3-gabc" gives 1.2.0).
numeric=$(echo "$VERSION" | grep -oE '^[0-9]+\.[0-9]+\.[0-9]+' || true)
numeric=${numeric:-0.0.0}

export PATH="$PATH:$(go env GOPATH)/bin"
need_apt=()
command -v wixl >/dev/null || need_apt+=(wixl msitools)
command -v x86_64-w64-mingw32-windres >/dev/null || need_apt+=(binutils-mingw-w64-x86-64)
command -v osslsigncode >/dev/null || need_apt+=(osslsigncode)
if [ ${#need_apt[@]} -gt 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v gox >/dev/null || go install github.com/mitchellh/gox@v1.0.1
command -v go-licenses >/dev/null || go install github.com/google/go-licenses@v1.6.0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$work"
dist="$root/dist"
rm -rf "$dist"
mkdir -p "$dist"

cd "$work"
VERSION=$numeric scripts/resources.sh >/dev/null

echo "build: relaytcp $VERSION ($COMMIT)"
CGO_ENABLED=0 GOFLAGS=-trimpath gox \
	-osarch "windows/amd64 windows/386 linux/amd64 linux/arm64 darwin/arm64" \
	-ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT" \
	-output "$work/bin/relaytcp_{{.OS}}_{{.Arch}}" . >/dev/null

# Third-party notices: the license of every module linked into any build
# (GOOS=windows sees the Windows-only packages too).
{
	echo "relaytcp $VERSION includes the following third-party software."
	for goos in windows linux; do
		GOOS=$goos go-licenses save . --save_path "$work/licenses-$goos" --force 2>/dev/null
	done
	find "$work"/licenses-* -type f \( -iname 'LICENSE*' -o -iname 'COPYING*' -o -iname 'NOTICE*' \) | sort |
		while read -r f; do
			mod=${f#"$work"/licenses-*/}
			[ "${mod%/*}" = github.com/relaytcp/relaytcp ] && continue # our own LICENSE ships beside
			echo
			echo "==== ${mod%/*} ===="
			cat "$f"
		done | awk '!seen[$0]++ || /^$/ || /^====/'
} >"$work/THIRD_PARTY_NOTICES.txt"
grep -q 'golang.org/x/sys' "$work/THIRD_PARTY_NOTICES.txt" || {
	echo "build: go-licenses found no notice for golang.org/x/sys" >&2
	exit 1
}

sign() { # sign FILE: Authenticode, in place, when a certificate is given
	[ -n "${SIGN_CERT:-}" ] || return 0
	osslsigncode sign -certs "$SIGN_CERT" -key "$SIGN_KEY" -n relaytcp \
		-i https://github.com/relaytcp/relaytcp -in "$1" -out "$1.signed" >/dev/null
	mv "$1.signed" "$1"
}

for exe in "$work"/bin/relaytcp_windows_*.exe; do sign "$exe"; done

# The MSI (x64; wixl builds no x86 package that installs a 64-bit service).
mkdir -p "$work/msi"
cp "$work/bin/relaytcp_windows_amd64.exe" "$work/msi/relaytcp.exe"
cp LICENSE "$work/msi/LICENSE.txt"
cp "$work/THIRD_PARTY_NOTICES.txt" "$work/msi/"
msi="relaytcp-$numeric-x64.msi"
(cd "$work/msi" && wixl -a x64 -D Version="$numeric" -D ExePath=relaytcp.exe \
	-D Notices=THIRD_PARTY_NOTICES.txt -D License=LICENSE.txt -o "$dist/$msi" "$work/wix/relaytcp.wxs" 2>/dev/null)
sign "$dist/$msi"

# Archives: the binary with the README, the docs/ pages it links to, the
# license and the notices.
for bin in "$work"/bin/relaytcp_*; do
	name=$(basename "$bin" .exe)           # relaytcp_linux_amd64
	platform=${name#relaytcp_}              # linux_amd64
	pkg="relaytcp-$VERSION-${platform/_/-}" # relaytcp-1.2.0-linux-amd64
	mkdir -p "$work/pkg/$pkg"
	cp -R README.md docs LICENSE "$work/THIRD_PARTY_NOTICES.txt" "$work/pkg/$pkg/"
	case $bin in
	*.exe)
		cp "$bin" "$work/pkg/$pkg/relaytcp.exe"
		(cd "$work/pkg" && python3 -m zipfile -c "$dist/$pkg.zip" "$pkg")
		;;
	*)
		cp "$bin" "$work/pkg/$pkg/relaytcp"
		# Where the README's systemd step finds it, in a clone or here.
		[ "${platform%_*}" = linux ] && mkdir -p "$work/pkg/$pkg/scripts" && cp scripts/relaytcp.service "$work/pkg/$pkg/scripts/"
		tar -C "$work/pkg" --owner=0 --group=0 -czf "$dist/$pkg.tar.gz" "$pkg"
		;;
	esac
done
cp "$work/THIRD_PARTY_NOTICES.txt" "$dist/"

(cd "$dist" && sha256sum -- * >SHA256SUMS)
echo "build: dist/ has"
ls -1 "$dist" | sed 's/^/  /'
