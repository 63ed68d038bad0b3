#!/usr/bin/env bash
# The fleet benchmark of the etcd store: 8 "hosts" of 8 helper
# processes each (own HOME and local cache per host, no common lock file)
# share one account through one etcd, embedded in scripts/fleet, against
# the account emulator. When the token expires, exactly one refresh request
# must be made, no get may fail, and every process must print the same new
# token; it reports p50/p99 get times during the refresh and on the fast
# path, and the etcd requests per fast-path get (0).
#
#   scripts/fleet.sh
#   scripts/fleet.sh -hosts 16 -per-host 4
#
# Needs: Go. Exit status 0 when every check holds.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# As install.sh builds them: the companion beside the helper.
CGO_ENABLED=0 go build -tags nethttpomithttp2 -trimpath -o "$out/prusa-credential-helper" .
CGO_ENABLED=0 go build -tags nethttpomithttp2 -trimpath -o "$out/prusa-credential-helper-etcd" ./cmd/prusa-credential-helper-etcd
go build -o "$out/fleet" ./scripts/fleet
"$out/fleet" -bin "$out/prusa-credential-helper" "$@"
