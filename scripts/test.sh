#!/usr/bin/env bash
# The project's test command: every test with the race detector, against a
# private, unlocked gnome-keyring when one is installed (see with-keyring.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/with-keyring.sh go test -race -count=1 ./... "$@"
