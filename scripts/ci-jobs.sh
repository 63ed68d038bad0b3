#!/usr/bin/env bash
# Plays CI jobs on ephemeral runners, one after another, the way docs/ci.md
# says to set them up: each job starts on a fresh HOME (nothing survives from
# the job before) and asks for a token three times, as a job's steps would.
#
#   scripts/ci-jobs.sh auto-login   [JOBS]   # PRUSA_AUTO_LOGIN=1 from the account's secrets
#   scripts/ci-jobs.sh save-command [JOBS]   # the rotated set handed to the next job
#
# JOBS defaults to 5. It needs prusa-credential-helper on PATH and what the
# CI secrets would give a job: PRUSA_EMAIL, PRUSA_PASSWORD and, for a 2FA
# account, PRUSA_TOTP_SECRET (auto-login); or, for save-command,
# CI_SECRETS, a directory whose PRUSA_TOKENS_JSON file stands for the CI
# secret (seed it with a login's set). PRUSA_ACCOUNT_URL points at the
# account server (an emulator in tests). It exits non-zero at the first job
# that fails.
set -euo pipefail
recipe=${1:?usage: ci-jobs.sh auto-login|save-command [JOBS]}
jobs=${2:-5}

job() {
	local home status
	home=$(mktemp -d)
	(
		export HOME="$home" XDG_CONFIG_HOME="$home/.config" PRUSA_CREDENTIAL_STORE=file
		unset DBUS_SESSION_BUS_ADDRESS PRUSA_TOKEN PRUSA_TOKENS_JSON PRUSA_SAVE_COMMAND PRUSA_AUTO_LOGIN
		case "$recipe" in
		auto-login)
			export PRUSA_AUTO_LOGIN=1
			;;
		save-command)
			: "${CI_SECRETS:?CI_SECRETS is not set}"
			PRUSA_TOKENS_JSON=$(cat "$CI_SECRETS/PRUSA_TOKENS_JSON")
			export PRUSA_TOKENS_JSON
			export PRUSA_SAVE_COMMAND="sh -c 'cat > \"\$CI_SECRETS/PRUSA_TOKENS_JSON.new\" && mv \"\$CI_SECRETS/PRUSA_TOKENS_JSON.new\" \"\$CI_SECRETS/PRUSA_TOKENS_JSON\"'"
			;;
		*)
			echo "ci-jobs.sh: unknown recipe $recipe" >&2
			exit 2
			;;
		esac
		for step in 1 2 3; do
			prusa-credential-helper get --format header >/dev/null || exit 1
		done
	) && status=0 || status=$?
	rm -rf "$home"
	return "$status"
}

for i in $(seq 1 "$jobs"); do
	if ! job; then
		echo "ci-jobs.sh: job $i of $jobs failed" >&2
		exit 1
	fi
	echo "job $i of $jobs: ok"
done
