#!/usr/bin/env bash
# Builds the Windows resources of relaytcp.exe into rsrc_windows_amd64.syso
# and rsrc_windows_386.syso at the repository root: the Event Log message
# table (messages.mc, by windmc), the version information
# (versioninfo.json, by goversioninfo) and the application manifest
# (relaytcp.exe.manifest, RT_MANIFEST 1), in ONE .rsrc each, since Go's
# linker takes only one. The committed .syso files carry version 0.0.0;
# scripts/build.sh runs this with VERSION=x.y.z for a release.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${VERSION:-0.0.0}
VERSION=${VERSION#v}
IFS=. read -r major minor patch <<<"${VERSION%%[-+]*}.0.0"
patch=${patch%%.*}
for n in "$major" "$minor" "$patch"; do
	case $n in '' | *[!0-9]*)
		echo "resources: VERSION $VERSION is not x.y.z" >&2
		exit 2
		;;
	esac
done

export PATH="$PATH:$(go env GOPATH)/bin"
if ! command -v x86_64-w64-mingw32-windmc >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binutils-mingw-w64-x86-64 >/dev/null
fi
command -v goversioninfo >/dev/null || go install github.com/josephspurrier/goversioninfo/cmd/goversioninfo@v1.7.0

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp messages.mc versioninfo.json relaytcp.exe.manifest "$tmp/"
cd "$tmp"
x86_64-w64-mingw32-windmc -h . -r . messages.mc

for arch in amd64 386; do
	case $arch in
	amd64) gvi_flag=-64 target=pe-x86-64 ;;
	386) gvi_flag= target=pe-i386 ;;
	esac
	# shellcheck disable=SC2086
	goversioninfo $gvi_flag -o "version_$arch.syso" \
		-ver-major "$major" -ver-minor "$minor" -ver-patch "$patch" -ver-build 0 \
		-product-ver-major "$major" -product-ver-minor "$minor" -product-ver-patch "$patch" -product-ver-build 0 \
		-file-version "$VERSION" -product-version "$VERSION" versioninfo.json
	# Back to .rc text, joined with the message table and the manifest
	# (resource type 24, RT_MANIFEST, id 1: the one Windows reads at a
	# process's start), compiled as one.
	x86_64-w64-mingw32-windres -J coff -O rc -i "version_$arch.syso" -o "version_$arch.rc"
	{
		cat messages.rc "version_$arch.rc"
		echo '1 24 "relaytcp.exe.manifest"'
	} >"all_$arch.rc"
	x86_64-w64-mingw32-windres --preprocessor=cpp -F "$target" -i "all_$arch.rc" -O coff -o "rsrc_windows_$arch.syso"
	cp "rsrc_windows_$arch.syso" "$OLDPWD/"
done
echo "resources: rsrc_windows_amd64.syso and rsrc_windows_386.syso for version $VERSION"
