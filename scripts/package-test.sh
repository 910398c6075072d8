#!/usr/bin/env bash
# Packaging checks (make test runs them after `make build`; they reuse build/bin):
#   1. make cross: the plain porthole for darwin/amd64, darwin/arm64, windows/amd64, without cgo
#   2. make package: the .deb's control fields and files (dpkg-deb --info/--contents)
#   3. the .deb unpacked into a throwaway root (dpkg -x): its menu entry's Exec line,
#      pointed at the unpacked binary, opens the window under Xvfb (window titled
#      Porthole, WM_CLASS = the entry's StartupWMClass, the UI logs "ui ready")
#   4. make install PREFIX=<tmp>, then make uninstall: nothing of ours is left,
#      and a file that was there before stays
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "package-test: FAIL: $*"; exit 1; }
ok() { echo "package-test: ok: $*"; }

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

# 1. cross-built CLI
make -s cross >/dev/null
for t in darwin/amd64 darwin/arm64 windows/amd64; do
  os=${t%/*}; arch=${t#*/}; f=build/cross/porthole-$os-$arch
  [ "$os" = windows ] && f=$f.exe
  [ -s "$f" ] || fail "$f was not built"
  info=$(go version -m "$f")
  for want in "GOOS=$os" "GOARCH=$arch" "CGO_ENABLED=0"; do
    grep -qE "build[[:space:]]+$want\$" <<<"$info" || fail "$f: go version -m shows no $want"
  done
done
ok "make cross: $(cd build/cross && echo porthole-*)"

# 2. the .deb (gzip here: xz takes ~20 s of CPU and proves nothing more)
make -s package DEB_COMPRESS=gzip >/dev/null
arch=$(dpkg --print-architecture)
debs=(build/porthole_*_"$arch".deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || fail "expected one build/porthole_*_$arch.deb, found: ${debs[*]}"
deb=${debs[0]}
ctl=$(dpkg-deb --field "$deb")
[ "$(dpkg-deb --field "$deb" Package)" = porthole ] || fail "Package is not porthole"
[ "$(dpkg-deb --field "$deb" Architecture)" = "$arch" ] || fail "Architecture is not $arch"
ver=$(dpkg-deb --field "$deb" Version)
dpkg --validate-version "$ver" || fail "Version $ver is not a valid Debian version"
[ "$deb" = "build/porthole_${ver}_${arch}.deb" ] || fail "$deb is not named after its version $ver"
dep=$(dpkg-deb --field "$deb" Depends)
for p in libgtk-3-0 libwebkit2gtk-4.0-37 libc6; do
  grep -qE "(^|, )$p( |,|$)" <<<"$dep" || fail "Depends lacks $p: $dep"
  dpkg-query -W "$p" >/dev/null 2>&1 || fail "Depends names $p, which is not an installed package here"
done
contents=$(dpkg-deb --contents "$deb" | awk '{print $6}')
want=(./usr/bin/porthole ./usr/bin/porthole-desktop ./usr/share/applications/porthole.desktop)
for s in 16 32 48 64 128 256 512; do want+=("./usr/share/icons/hicolor/${s}x${s}/apps/porthole.png"); done
for f in "${want[@]}"; do grep -qxF "$f" <<<"$contents" || fail "$deb lacks $f"; done
extra=$(grep -v '/$' <<<"$contents" | grep -vxF -f <(printf '%s\n' "${want[@]}") || true)
[ -z "$extra" ] || fail "$deb has unexpected files: $extra"
ok "$deb: Version $ver, Architecture $arch, Depends: $dep; ${#want[@]} files"
grep -q '^Description: ' <<<"$ctl" || fail "no Description"

# 3. unpacked into a throwaway root, the menu entry opens the window
root=$tmp/root
dpkg -x "$deb" "$root"
entry=$root/usr/share/applications/porthole.desktop
if command -v desktop-file-validate >/dev/null; then
  desktop-file-validate "$entry" || fail "desktop-file-validate rejects $entry"
fi
field() { sed -n "s/^$1=//p" "$entry" | head -n1; }
exec_line=$(field Exec)
[[ $exec_line == /usr/bin/porthole* ]] || fail "Exec=$exec_line does not run /usr/bin/porthole"
[ "$(field Icon)" = porthole ] || fail "Icon is not porthole"
wmclass=$(field StartupWMClass)
[ -n "$wmclass" ] || fail "no StartupWMClass"
# The unpacked binary instead of /usr/bin's; field codes (%U, %f…) expand to nothing from a menu.
cmd=${exec_line/#\/usr\/bin\//$root/usr/bin/}
read -r -a argv <<<"$(sed -E 's/(^| )%[a-zA-Z]//g' <<<"$cmd")"
[ -x "${argv[0]}" ] || fail "${argv[0]} (from Exec) is not executable"

disp=
for n in $(seq 141 190); do
  if [ ! -e "/tmp/.X$n-lock" ] && [ ! -e "/tmp/.X11-unix/X$n" ]; then disp=$n; break; fi
done
[ -n "$disp" ] || fail "no free X display number"
Xvfb ":$disp" -screen 0 1366x860x24 -nolisten tcp >"$tmp/xvfb.log" 2>&1 &
xvfb_pid=$!
for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X$disp" ] && break; sleep 0.1; done
mkdir -p "$tmp/home"
log=$tmp/porthole.log
start=$(date +%s)
env -i PATH=/usr/bin:/bin DISPLAY=":$disp" HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home/.config" \
  XDG_DATA_HOME="$tmp/home/.local/share" XDG_CACHE_HOME="$tmp/home/.cache" \
  setsid dbus-run-session -- "${argv[@]}" >"$log" 2>&1 &
app_pid=$!
win=
for _ in $(seq 300); do # generous: 30 s on a loaded machine
  win=$(DISPLAY=":$disp" xdotool search --onlyvisible --name '^Porthole$' 2>/dev/null | head -n1 || true)
  [ -n "$win" ] && break
  kill -0 "$app_pid" 2>/dev/null || { cat "$log"; fail "Exec=$exec_line exited without a window"; }
  sleep 0.1
done
[ -n "$win" ] || { cat "$log"; fail "no window titled Porthole within 30 s"; }
DISPLAY=":$disp" xdotool search --classname "^$wmclass\$" 2>/dev/null | grep -qx "$win" ||
  fail "window $win's WM_CLASS instance is not StartupWMClass=$wmclass: the desktop would not match window and menu entry"
for _ in $(seq 300); do grep -q 'ui ready' "$log" && break; sleep 0.1; done
grep -q 'ui ready' "$log" || { cat "$log"; fail "the UI never reported ready"; }
pgrep -f "^$root/usr/bin/porthole-desktop" >/dev/null || fail "the window is not the unpacked porthole-desktop"
ok "Exec=$exec_line (unpacked under $root) opened window $win (WM_CLASS $wmclass) and the UI in $(($(date +%s) - start)) s"
kill -TERM -- -"$app_pid" 2>/dev/null || true
for _ in $(seq 50); do kill -0 "$app_pid" 2>/dev/null || break; sleep 0.1; done
app_pid=

# 4. make install / make uninstall into a throwaway PREFIX
prefix=$tmp/prefix
mkdir -p "$prefix/share/applications"
echo '[Desktop Entry]' >"$prefix/share/applications/someone-else.desktop"
make -s install PREFIX="$prefix" >/dev/null
for f in bin/porthole bin/porthole-desktop share/applications/porthole.desktop \
    share/icons/hicolor/48x48/apps/porthole.png share/porthole/install-manifest; do
  [ -f "$prefix/$f" ] || fail "make install did not install $f"
done
grep -qx "Exec=$prefix/bin/porthole %U" "$prefix/share/applications/porthole.desktop" ||
  fail "the installed menu entry does not run $prefix/bin/porthole"
"$prefix/bin/porthole" version | grep -q '^porthole ' || fail "the installed porthole does not run"
make -s uninstall PREFIX="$prefix" >/dev/null
left=$(cd "$prefix" && find . -mindepth 1 | sort | tr '\n' ' ')
[ "$left" = "./share ./share/applications ./share/applications/someone-else.desktop " ] ||
  fail "after make uninstall, $prefix holds: $left (expected only the file that was there before)"
ok "make install PREFIX=<tmp> then make uninstall left only what was there before"
echo "package-test: PASS"
