#!/bin/sh
# Runs the keyring tests against a real gnome-keyring in a private, throw-away
# D-Bus session (the lead wires this into `make test`):
#
#   1. inside dbus-run-session with an unlocked gnome-keyring:
#      PORTHOLE_KEYRING_TEST=1 go test -run TestKeyring ./backend/profiles/
#   2. with no D-Bus session at all: the Keyring must answer
#      ErrKeyringUnavailable within seconds (TestKeyringNoSessionBus).
#
# Needs: apt-get install -y gnome-keyring dbus-x11 libsecret-tools
# HOME and XDG_RUNTIME_DIR point to fresh temporary directories, so the test
# keyring never touches (or unlocks!) the keyring of the user running it.
set -eu

cd "$(dirname "$0")/../../.."

for tool in dbus-run-session gnome-keyring-daemon go; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "keyring-test.sh: $tool not found; install it (apt-get install -y gnome-keyring dbus-x11 libsecret-tools)" >&2
		exit 1
	fi
done

# Keep Go's caches and settings where they are although HOME changes.
GOCACHE=$(go env GOCACHE)
GOMODCACHE=$(go env GOMODCACHE)
GOPATH=$(go env GOPATH)
GOENV=$(go env GOENV)
export GOCACHE GOMODCACHE GOPATH GOENV

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -m 700 "$tmp/home" "$tmp/run"

echo "== keyring tests inside a private D-Bus session with gnome-keyring"
env -u GNOME_KEYRING_CONTROL -u XDG_DATA_HOME -u XDG_CONFIG_HOME -u DBUS_SESSION_BUS_ADDRESS \
	HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run" \
	dbus-run-session -- sh -c '
		set -e
		printf %s pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null
		PORTHOLE_KEYRING_TEST=1 go test -race -count=1 -v -run TestKeyring ./backend/profiles/
	'

echo "== keyring tests with no D-Bus session bus"
env -u DBUS_SESSION_BUS_ADDRESS -u GNOME_KEYRING_CONTROL \
	HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run" \
	go test -race -count=1 -v -run 'TestKeyringNoSessionBus|TestKeyringWithFakeBackend' ./backend/profiles/
