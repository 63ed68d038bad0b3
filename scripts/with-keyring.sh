#!/usr/bin/env bash
# Runs a command with a private D-Bus session bus and an unlocked
# gnome-keyring (a real Secret Service), then tears both down.
# Without gnome-keyring-daemon and dbus-daemon, it runs the command as it is
# (the keyring tests then skip, except under CI=true where they fail).
# The recipe: a fresh HOME (an old login.keyring with another password
# makes lookups prompt), a private bus, gnome-keyring-daemon --unlock fed a
# password on stdin, then a wait until org.freedesktop.secrets has an owner
# (--unlock returns before the daemon owns the name, and a client that calls
# too early starts a second, password-less daemon). Killing the bus ends the
# daemon too.
set -euo pipefail

if ! command -v gnome-keyring-daemon >/dev/null || ! command -v dbus-daemon >/dev/null; then
	echo "with-keyring: gnome-keyring-daemon or dbus-daemon missing; running without a Secret Service" >&2
	exec "$@"
fi

home=$(mktemp -d)
bus_pid=
cleanup() {
	[ -n "$bus_pid" ] && kill "$bus_pid" 2>/dev/null || true
	pkill -u "$(id -u)" -f "gnome-keyring-daemon.*--control-directory=$home" 2>/dev/null || true
	rm -rf "$home"
}
trap cleanup EXIT

# A fresh HOME for the keyring, so no old login.keyring with another password
# makes lookups prompt, and XDG folders inside it: gnome-keyring keeps its
# keyrings in $XDG_DATA_HOME/keyrings, and would write the caller's.
private=(HOME="$home" XDG_DATA_HOME="$home/.local/share" XDG_CONFIG_HOME="$home/.config" XDG_CACHE_HOME="$home/.cache")
bus=$(env "${private[@]}" dbus-daemon --session --fork --print-address=1 --print-pid=1)
bus_pid=$(sed -n 2p <<<"$bus")
export DBUS_SESSION_BUS_ADDRESS=$(sed -n 1p <<<"$bus")
mkdir -p "$home/.cache" "$home/keyring"
eval "$(printf 'ci-keyring-password' | env "${private[@]}" XDG_RUNTIME_DIR="$home" gnome-keyring-daemon --unlock --components=secrets --control-directory="$home/keyring" 2>/dev/null)"
export GNOME_KEYRING_CONTROL

# --unlock returns before the daemon owns the bus name: wait for it, or a
# client that calls too early starts a second, password-less daemon.
for _ in $(seq 1 500); do
	if dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
		org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'; then
		break
	fi
	sleep 0.01
done
export PRUSA_TEST_SECRET_SERVICE=1
"$@"
