#!/usr/bin/env bash
# Desktop smoke test: the built binary, under Xvfb, opens its window (within 20 s; the time is printed),
# the UI reports it rendered, and a screenshot is neither blank nor an error page.
#   scripts/desktop-smoke.sh [BIN] [OUT.png]
set -euo pipefail
bin=$(readlink -f "${1:-build/bin/porthole}")
out=${2:-build/test-artifacts/desktop-shell.png}
mkdir -p "$(dirname "$out")"
out=$(readlink -f "$out")
[ -x "$bin" ] || { echo "desktop-smoke: $bin is not built (make build)"; exit 1; }
for t in Xvfb xdotool import identify dbus-run-session; do
  command -v "$t" >/dev/null || { echo "desktop-smoke: $t is missing (scripts/deps.sh test installs it)"; exit 1; }
done
# ImageMagick from Debian, not a stand-in earlier on PATH.
im_import=/usr/bin/import; im_identify=/usr/bin/identify; im_convert=/usr/bin/convert

tmp=$(mktemp -d)
xvfb_pid=; app_pid=
cleanup() {
  [ -n "$app_pid" ] && kill -TERM -- -"$app_pid" 2>/dev/null || true
  sleep 0.3
  [ -n "$app_pid" ] && kill -KILL -- -"$app_pid" 2>/dev/null || true
  [ -n "$xvfb_pid" ] && kill "$xvfb_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

disp=
for n in $(seq 91 140); do
  if [ ! -e "/tmp/.X$n-lock" ] && [ ! -e "/tmp/.X11-unix/X$n" ]; then disp=$n; break; fi
done
[ -n "$disp" ] || { echo "desktop-smoke: no free X display number"; exit 1; }
Xvfb ":$disp" -screen 0 1366x860x24 -nolisten tcp >"$tmp/xvfb.log" 2>&1 &
xvfb_pid=$!
for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X$disp" ] && break; sleep 0.1; done
export DISPLAY=":$disp"

mkdir -p "$tmp/home"
log="$tmp/porthole.log"
start=$(date +%s%N)
# Own process group (setsid) so that cleanup stops the app and its session bus.
HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home/.config" XDG_DATA_HOME="$tmp/home/.local/share" \
  setsid dbus-run-session -- "$bin" >"$log" 2>&1 &
app_pid=$!

win=
while [ $(( ($(date +%s%N) - start) / 1000000 )) -lt 20000 ]; do
  win=$(xdotool search --onlyvisible --name '^Porthole$' 2>/dev/null | head -n1 || true)
  [ -n "$win" ] && break
  sleep 0.1
done
win_ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ -z "$win" ]; then
  echo "desktop-smoke: FAIL: no window titled Porthole within 20 s"; cat "$log"; exit 1
fi
echo "desktop-smoke: window $win appeared after ${win_ms} ms"

# The frontend calls App.UIReady once it has rendered: proof it is our UI, not an error page.
for _ in $(seq 150); do grep -q 'ui ready' "$log" && break; sleep 0.1; done
if ! grep -q 'ui ready' "$log"; then
  echo "desktop-smoke: FAIL: the UI never reported ready"; cat "$log"; exit 1
fi
ready_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "desktop-smoke: UI reported ready after ${ready_ms} ms"
# Let it paint: "ui ready" means the page mounted, and on a loaded machine
# Xvfb's software rendering may lag behind it. Look again for up to 15 s
# before calling the window blank.
eval "$(xdotool getwindowgeometry --shell "$win")"
blank=1
for attempt in $(seq 10); do
  sleep 1.5
  # Capture the screen and crop to the window (GTK's own window id cannot always be read directly).
  "$im_import" -window root -crop "${WIDTH}x${HEIGHT}+${X}+${Y}" +repage "$out"
  colors=$("$im_identify" -format '%k' "$out")
  stddev=$("$im_convert" "$out" -colorspace Gray -format '%[fx:standard_deviation]' info:)
  size=$("$im_identify" -format '%wx%h' "$out")
  echo "desktop-smoke: screenshot $out ($size, $colors colours, grey stddev $stddev, after $(( ($(date +%s%N) - start) / 1000000 )) ms)"
  if [ "$colors" -ge 64 ] && awk "BEGIN{exit !($stddev >= 0.02)}"; then blank=0; break; fi
done
if [ "$blank" = 1 ]; then
  echo "desktop-smoke: FAIL: the screenshot looks blank"; exit 1
fi
if grep -Eqi 'panic|fatal|could not|failed to load' "$log"; then
  echo "desktop-smoke: FAIL: the app logged an error:"; cat "$log"; exit 1
fi
echo "desktop-smoke: PASS"
