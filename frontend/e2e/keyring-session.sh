#!/bin/sh
# Runs a command where `porthole serve` finds an unlocked Secret Service keyring, so the
# e2e tests can check "remember in keychain" for real:
#
#   sh e2e/keyring-session.sh node --test e2e/servers.spec.mjs
#
# - DBUS_SESSION_BUS_ADDRESS already set (a desktop session, or a caller that made one):
#   the command runs as is.
# - Otherwise, with dbus-run-session and gnome-keyring-daemon installed: the command runs in a
#   private, throw-away D-Bus session with a gnome-keyring unlocked by a dummy password. The
#   daemon gets its own temporary HOME and XDG_RUNTIME_DIR, so it never touches (or unlocks)
#   the keyring of the user running the tests.
# - Otherwise the command runs as is, and the tests that need a keyring say so.
set -eu

if [ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ] || [ "${PORTHOLE_E2E_NO_KEYRING_SESSION:-}" = 1 ]; then
	exec "$@"
fi
if ! command -v dbus-run-session >/dev/null 2>&1 || ! command -v gnome-keyring-daemon >/dev/null 2>&1; then
	echo "keyring-session.sh: dbus-run-session or gnome-keyring-daemon not found (apt-get install -y dbus-x11 gnome-keyring); running without a keyring" >&2
	exec "$@"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -m 700 "$tmp/home" "$tmp/run"
export PORTHOLE_KEYRING_TMP="$tmp"
# Not exec: the trap must remove $tmp once the session has ended. The bus daemon's chatter
# (services that chromium asks it to start) goes to /dev/null; the command keeps our stderr (fd 3).
dbus-run-session -- sh -c '
	set -e
	printf %s porthole-e2e | HOME="$PORTHOLE_KEYRING_TMP/home" XDG_RUNTIME_DIR="$PORTHOLE_KEYRING_TMP/run" \
		gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&3
	unset PORTHOLE_KEYRING_TMP
	exec "$@" 2>&3 3>&-
' keyring-session "$@" 3>&2 2>/dev/null
