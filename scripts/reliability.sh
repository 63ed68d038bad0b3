#!/usr/bin/env bash
# Reproduces the reliability figures: faults, crash kills (file store and,
# through a private Secret Service, keyring), a full disk, concurrency,
# races, bad inputs, secrets, and a fuzzing run of every parser.
#
#   scripts/reliability.sh                 # 300 kills, 60 s per fuzz target
#   KILLS=1000 FUZZTIME=10m scripts/reliability.sh
#
# The corpora the fuzzers grow stay in the Go build cache; only a minimized
# crasher is worth committing (testdata/fuzz/NAME/, added by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${KILLS:-300}
fuzztime=${FUZZTIME:-60s}

echo "== reliability tests (kills: $kills)"
RELIABILITY_KILLS=$kills scripts/with-keyring.sh go test -count=1 -v \
	-run 'TestFaultTable|TestCrashKills|TestCrashKillsKeyring|TestDiskFullKeepsRefreshToken|TestConcurrent64|TestRaces|TestProfilesRefreshIndependently|TestModesUnderUmask000|TestNoSecretsAnywhere|TestBadInputCatalogue' . |
	grep -E 'figure:|^(--- FAIL|FAIL|ok)' | sed 's/^ *[a-z_]*_test.go:[0-9]*: figure: /  /'

# New inputs that widen coverage are minimized for at most 5 s each (Go's
# default, 60 s, can spend a whole short run minimizing).
echo "== fuzzing, $fuzztime per target"
cache=$(go env GOCACHE)/fuzz/github.com/prusa-credential-helper/prusa-credential-helper
for target in auth:FuzzParseJWT auth:FuzzTokenSet auth:FuzzParseForms protocol:FuzzReadRequest protocol:FuzzWriteToken; do
	pkg=${target%%:*} name=${target##*:}
	out=$(go test "./$pkg" -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s 2>&1) || { echo "$out" | tail -20; echo "  $name: FOUND A FAILURE (input saved in $pkg/testdata/fuzz/$name)"; exit 1; }
	execs=$(echo "$out" | grep -oE 'execs: [0-9]+' | tail -1 | grep -oE '[0-9]+')
	corpus=$(ls "$cache/$pkg/$name" 2>/dev/null | wc -l)
	echo "  $name: $execs execs in $fuzztime, 0 failures, corpus $corpus inputs (in the build cache)"
done
