#!/usr/bin/env bash
# Installs Porthole for the desktop, removes it again, or builds a Debian package.
#   scripts/package.sh install   PREFIX   build/bin/* and the menu entry into PREFIX (e.g. ~/.local)
#   scripts/package.sh uninstall PREFIX   removes exactly what install wrote (its manifest)
#   scripts/package.sh deb       VERSION  build/porthole_<version>_<arch>.deb (dpkg-deb; DEB_COMPRESS=xz|gzip|zstd)
# The Makefile calls it (make install / uninstall / package) after `make build`.
set -euo pipefail
cd "$(dirname "$0")/.."

bins=(porthole porthole-desktop)
icon_sizes=(16 32 48 64 128 256 512)

die() { echo "package: $*" >&2; exit 1; }

need_built() {
  for b in "${bins[@]}"; do [ -x "build/bin/$b" ] || die "build/bin/$b is not built (make build)"; done
}

# stage ROOT PREFIX: copies the files under ROOT/PREFIX (ROOT is empty for a
# real install) and prints each file's installed path (without ROOT).
# The menu entry runs PREFIX/bin/porthole by its absolute path.
stage() {
  local root=$1 prefix=$2 f
  put() { # put MODE SRC DEST: write through a temporary name, so a running binary is replaced, not overwritten
    local dest=$root$3
    mkdir -p "$(dirname "$dest")"
    install -m "$1" "$2" "$dest.new.$$"
    mv -f "$dest.new.$$" "$dest"
    echo "$3"
  }
  for b in "${bins[@]}"; do put 755 "build/bin/$b" "$prefix/bin/$b"; done
  f=$(mktemp)
  sed -e "s|^Exec=porthole|Exec=$prefix/bin/porthole|" -e "s|^TryExec=porthole|TryExec=$prefix/bin/porthole|" \
    build/linux/porthole.desktop >"$f"
  grep -q "^Exec=$prefix/bin/porthole" "$f" || die "build/linux/porthole.desktop has no Exec=porthole line"
  put 644 "$f" "$prefix/share/applications/porthole.desktop"
  rm -f "$f"
  for s in "${icon_sizes[@]}"; do put 644 "build/icons/$s.png" "$prefix/share/icons/hicolor/${s}x${s}/apps/porthole.png"; done
}

# refresh PREFIX [existing]: the desktop's caches of menu entries and icons
# (with "existing", only caches that exist); failures do not matter.
caches_of() { echo "$1/share/applications/mimeinfo.cache" "$1/share/icons/hicolor/icon-theme.cache"; }
refresh() {
  local prefix=$1 only=${2:-}
  if command -v update-desktop-database >/dev/null && [ -d "$prefix/share/applications" ] &&
    { [ -z "$only" ] || [ -e "$prefix/share/applications/mimeinfo.cache" ]; }; then
    update-desktop-database -q "$prefix/share/applications" 2>/dev/null || true
  fi
  if command -v gtk-update-icon-cache >/dev/null && [ -f "$prefix/share/icons/hicolor/index.theme" ] &&
    { [ -z "$only" ] || [ -e "$prefix/share/icons/hicolor/icon-theme.cache" ]; }; then
    gtk-update-icon-cache -q -t "$prefix/share/icons/hicolor" 2>/dev/null || true
  fi
}

# The manifest lists, one per line, each installed file ("f PATH"), each
# directory install created ("d PATH") and each cache file the refresh created
# ("c PATH"); uninstall removes those and nothing else.
manifest_of() { echo "$1/share/porthole/install-manifest"; }

install_to() {
  local prefix=$1 manifest new p d
  need_built
  case $prefix in /*) ;; *) die "PREFIX must be an absolute path (got $prefix)";; esac
  manifest=$(manifest_of "$prefix")
  new=$(mktemp)
  # Directories made by an earlier install stay ours.
  [ -f "$manifest" ] && grep '^d ' "$manifest" >>"$new" || true
  # Note which directories are about to be created, deepest last.
  for p in "$prefix/bin/x" "$prefix/share/applications/x" "$manifest" \
      $(for s in "${icon_sizes[@]}"; do echo "$prefix/share/icons/hicolor/${s}x${s}/apps/x"; done); do
    d=$(dirname "$p")
    local missing=()
    while [ ! -e "$d" ] && [ "$d" != / ]; do missing=("$d" "${missing[@]}"); d=$(dirname "$d"); done
    for d in "${missing[@]}"; do grep -qxF "d $d" "$new" || echo "d $d" >>"$new"; done
  done
  stage "" "$prefix" | sed 's/^/f /' >>"$new"
  mkdir -p "$(dirname "$manifest")"
  echo "f $manifest" >>"$new"
  local had=() c
  for c in $(caches_of "$prefix"); do [ -e "$c" ] && had+=("$c"); done
  refresh "$prefix"
  for c in $(caches_of "$prefix"); do
    [ -e "$c" ] && ! printf '%s\n' "${had[@]}" | grep -qxF "$c" && echo "c $c" >>"$new"
  done
  [ -f "$manifest" ] && grep '^c ' "$manifest" | while read -r _ c; do grep -qxF "c $c" "$new" || echo "c $c" >>"$new"; done
  mv -f "$new" "$manifest"
  chmod 644 "$manifest"
  echo "installed Porthole into $prefix (menu entry: $prefix/share/applications/porthole.desktop)"
  echo "uninstall: make uninstall PREFIX=$prefix   (list of files: $manifest)"
  case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "note: $prefix/bin is not on your PATH; the menu entry works anyway";; esac
}

uninstall_from() {
  local prefix=$1 manifest kind path n=0 listed
  manifest=$(manifest_of "$prefix")
  [ -f "$manifest" ] || die "nothing to uninstall: $manifest does not exist"
  listed=$(cat "$manifest")
  while read -r kind path; do
    [ "$kind" = f ] || continue
    rm -f -- "$path" && n=$((n + 1))
  done <<<"$listed"
  rmdirs() { # only directories install created, deepest first, and only when empty
    while read -r kind path; do
      [ "$kind" = d ] && rmdir -- "$path" 2>/dev/null || true
    done < <(sort -r <<<"$listed")
  }
  # Caches that install created go too; those that were there before are refreshed.
  while read -r kind path; do
    [ "$kind" = c ] && rm -f -- "$path" || true
  done <<<"$listed"
  rmdirs
  refresh "$prefix" existing
  echo "uninstalled Porthole from $prefix ($n files)"
}

# deb_version GIT_DESCRIBE: a Debian version (must start with a digit; no '-'
# without a revision): v1.2.3-4-gabc -> 1.2.3+4.gabc; an untagged abc1234 ->
# 0.0.0+git<commits>.abc1234; -dirty -> .dirty
deb_version() {
  local v=${1#v}
  if [[ $v =~ ^[0-9]+(\.[0-9]+)+ ]]; then
    v=${v/-/+}
  else # no tag: a commit id, which may begin with a digit
    v="0.0.0+git$(git rev-list --count HEAD 2>/dev/null || echo 0).$v"
  fi
  v=${v//-/.}
  v=$(printf '%s' "$v" | tr -c 'A-Za-z0-9.+~' '.')
  echo "$v"
}

# depends: the packages that hold the libraries the binaries link, with the
# minimum versions their symbols need (dpkg-shlibdeps); a fixed list without it.
depends() {
  local tmp out
  if command -v dpkg-shlibdeps >/dev/null; then
    tmp=$(mktemp -d)
    mkdir "$tmp/debian"
    printf 'Source: porthole\n\nPackage: porthole\nArchitecture: any\n' >"$tmp/debian/control"
    out=$(cd "$tmp" && dpkg-shlibdeps -O "$OLDPWD/build/bin/porthole-desktop" "$OLDPWD/build/bin/porthole" 2>/dev/null) || out=
    rm -rf "$tmp"
    out=${out#shlibs:Depends=}
    [ -n "$out" ] && { echo "$out"; return; }
  fi
  echo "libc6, libglib2.0-0, libgdk-pixbuf-2.0-0, libgtk-3-0, libjavascriptcoregtk-4.0-18, libwebkit2gtk-4.0-37"
}

build_deb() {
  local version arch root out
  need_built
  command -v dpkg-deb >/dev/null || die "dpkg-deb is missing (apt-get install dpkg)"
  version=$(deb_version "$1")
  arch=$(dpkg --print-architecture)
  out=build/porthole_${version}_${arch}.deb
  root=$(mktemp -d)
  trap 'rm -rf "$root"' RETURN
  chmod 755 "$root"
  stage "$root" /usr >/dev/null
  mkdir -p "$root/DEBIAN"
  cat >"$root/DEBIAN/control" <<EOF
Package: porthole
Version: $version
Architecture: $arch
Maintainer: Porthole developers <porthole@users.noreply.github.com>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $(depends)
Suggests: gnome-keyring
Section: net
Priority: optional
Homepage: https://github.com/porthole-app/porthole
Description: the web apps on your servers, as if they ran on your laptop
 Porthole lists what listens on a server's localhost (Jupyter, TensorBoard,
 MLflow, databases...) and opens its web apps in a tab of its own window or
 in your browser, through SSH port forwards it runs itself. Also
 "porthole serve" (the same UI in a browser) and "porthole forward" (tunnels
 from the terminal, like ssh -N -L).
EOF
  rm -f build/porthole_*_"$arch".deb
  dpkg-deb --root-owner-group "-Z${DEB_COMPRESS:-xz}" --build "$root" "$out" >/dev/null
  echo "built $out"
}

case ${1:-} in
  install) install_to "${2:?PREFIX}" ;;
  uninstall) uninstall_from "${2:?PREFIX}" ;;
  deb) build_deb "${2:?VERSION}" ;;
  *) die "usage: scripts/package.sh install PREFIX | uninstall PREFIX | deb VERSION" ;;
esac
