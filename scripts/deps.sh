#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Porthole needs, when they are missing.
#   scripts/deps.sh build   what `make build` / `make run` need
#   scripts/deps.sh test    plus what `make test` needs (sshd, Xvfb, chromium, gnome-keyring…)
# As root it runs apt-get; with passwordless sudo it uses sudo; otherwise it
# prints the exact command to run and fails.
set -euo pipefail
what=${1:-build}

build_pkgs=(gcc pkg-config libgtk-3-dev libwebkit2gtk-4.0-dev)
test_pkgs=(openssh-server openssh-client autossh libpam-wrapper xvfb xauth xdotool imagemagick chromium dbus dbus-x11 gnome-keyring libsecret-tools desktop-file-utils haskell-gtk-sni-tray-utils dunst)
# Real web apps the e2e suite opens through Porthole (frontend/e2e/realapps.spec.mjs). Installing
# them starts no service on a machine without systemd as init; the tests run each on loopback.
test_pkgs+=(jupyter-notebook syncthing transmission-daemon deluged deluge-web cockpit-ws cockpit-bridge cockpit-system)
pkgs=("${build_pkgs[@]}")
[ "$what" = test ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

need_tools=()
command -v go >/dev/null || need_tools+=("Go 1.26 (https://go.dev/doc/install)")
command -v npm >/dev/null || need_tools+=("Node.js 20 and npm")
if [ ${#need_tools[@]} -gt 0 ]; then
  echo "deps: missing toolchain: ${need_tools[*]}. Install it and run make again." >&2
  exit 1
fi

[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "deps: missing packages (${missing[*]}) and this is not a Debian/Ubuntu system: install the equivalents with your package manager." >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo)
else
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: run this, then make again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: installed ${#missing[@]} packages"
# The test apps are only run by the tests. Where systemd is init, apt enables and starts their
# system services (transmission-daemon on 9091, cockpit's socket on 9090 on every address): stop
# and disable the ones this run installed.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  for unit in transmission-daemon.service cockpit.socket cockpit.service; do
    pkg=${unit%%.*}; [ "$pkg" = cockpit ] && pkg=cockpit-ws
    case " ${missing[*]} " in *" $pkg "*) "${sudo[@]}" systemctl disable --now "$unit" >/dev/null 2>&1 && echo "deps: stopped and disabled $unit (only the tests run it)" || true ;; esac
  done
fi
