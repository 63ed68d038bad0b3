#!/usr/bin/env sh
# Installs prusa-credential-helper from this checkout, and beside it its
# companion prusa-credential-helper-etcd (run only for etcd:// stores).
#
#   ./install.sh                  build and install to ${PREFIX:-$HOME/.local}/bin
#   ./install.sh --prefix DIR     install to DIR/bin
#   ./install.sh --no-etcd        leave out the companion, for a CI job that
#                                 never uses an etcd:// store (a faster build)
#   ./install.sh --uninstall      remove it again (with the same prefix)
#
# Needs Go (the version go.mod names, or newer). Tokens are not touched:
# `prusa-credential-helper logout` removes those.
set -eu

prefix=${PREFIX:-$HOME/.local}
uninstall=0
etcd=1
while [ $# -gt 0 ]; do
	case $1 in
	--prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory" >&2; exit 2; }; prefix=$2; shift 2 ;;
	--prefix=*) prefix=${1#--prefix=}; shift ;;
	--uninstall) uninstall=1; shift ;;
	--no-etcd) etcd=0; shift ;;
	-h|--help) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
case $prefix in
/*) ;;
*) prefix=$PWD/$prefix ;; # as given, from where it was run: the build below runs in the checkout
esac
self=$(readlink -f "$0" 2>/dev/null) || self=$0 # through a symlink: the checkout it points into
cd "$(dirname "$self")"
bin=$prefix/bin
target=$bin/prusa-credential-helper
companion=$bin/prusa-credential-helper-etcd

if [ "$uninstall" = 1 ]; then
	for f in "$target" "$companion"; do
		if [ -e "$f" ]; then
			rm -f "$f"
			echo "removed $f"
		else
			echo "nothing to remove at $f"
		fi
	done
	exit 0
fi

need=$(sed -n 's/^go \([0-9][0-9.]*\).*/\1/p' go.mod)
if ! command -v go >/dev/null 2>&1; then
	echo "install.sh: Go is not installed (or not on PATH); install Go $need or newer from your package manager or https://go.dev/dl/, then run ./install.sh again" >&2
	exit 1
fi
have=$(go env GOVERSION | sed 's/^go//; s/[^0-9.].*//')
# version_ge A B: is A >= B, comparing dotted numbers field by field.
version_ge() {
	printf '%s\n%s\n' "$2" "$1" | sort -t. -k1,1n -k2,2n -k3,3n -C
}
if ! version_ge "$have" "$need"; then
	echo "install.sh: Go $have is too old; this needs Go $need or newer (https://go.dev/dl/)" >&2
	exit 1
fi

version=$(cat VERSION) # built in (main.version); go version -m gives the commit
mkdir -p "$bin"
tmp=$bin/.prusa-credential-helper.tmp.$$
trap 'rm -f "$tmp" "$tmp.built"' EXIT
# build PACKAGE TARGET: build into a temp file, then move it in place, so a
# running helper never sees half a binary. nethttpomithttp2 leaves out
# net/http's bundled HTTP/2 (the helper speaks HTTP/1.1, as the Python SDK
# does): 360 KiB less binary to load on every run. The companion's gRPC has
# an HTTP/2 of its own. What is installed is a copy of what the linker
# wrote: on Linux the linker's own file starts about 10% slower, for as long
# as the kernel keeps its pages cached (README.md, "Speed").
build() {
	CGO_ENABLED=0 go build -tags nethttpomithttp2 -trimpath -ldflags "-s -w" -o "$tmp.built" "$1"
	cp "$tmp.built" "$tmp" && rm -f "$tmp.built"
	mv -f "$tmp" "$2"
	echo "installed $2 ($version)"
}
build . "$target"
if [ "$etcd" = 1 ]; then
	build ./cmd/prusa-credential-helper-etcd "$companion"
elif [ -e "$companion" ]; then
	rm -f "$companion" # an older one would not match this helper
	echo "removed $companion (--no-etcd)"
fi

case ":$PATH:" in
*":$bin:"*) ;;
*) echo "note: $bin is not on your PATH; add it, e.g.: export PATH=\"$bin:\$PATH\"" >&2 ;;
esac
