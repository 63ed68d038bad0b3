#!/usr/bin/env bash
# Measures get's fast path (and a refreshing get) against their floors:
# builds the helper as install.sh does and the reference programs beside it
# (scripts/bench/*), starts a private keyring and the emulator, runs
# everything interleaved and prints medians, ratios and peak RSS.
#
#   scripts/bench.sh            # 100 runs of each command
#   RUNS=200 scripts/bench.sh
#
# Needs: Go; for peak RSS /usr/bin/time; for the keyring rows a Secret
# Service (apt-get install time gnome-keyring dbus libsecret-tools).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# The flags install.sh builds with; the references get them too. Like
# install.sh, each program runs as a copy of what the linker wrote: the
# linker's own file runs about 10% slower while its pages stay cached, which
# made every ratio below depend on which binaries were just built.
build() {
	CGO_ENABLED=0 go build -tags "nethttpomithttp2${3:+,$3}" -trimpath -ldflags "-s -w" -o "$out/$1.built" "$2"
	cp "$out/$1.built" "$out/$1" && rm "$out/$1.built"
}
build prusa-credential-helper .
build prusa-credential-helper-gokeyring . gokeyringonly # reads with go-keyring alone
for ref in hello fileread tlsonly linked minget keyringread post; do
	build "$ref" "./scripts/bench/$ref"
done
go build -o "$out/run" ./scripts/bench/run
scripts/with-keyring.sh "$out/run" -bin "$out" -n "${RUNS:-100}"
