#!/bin/sh
# Renders the app icons from their SVG sources (needs rsvg-convert: apt-get install librsvg2-bin).
#   appicon.svg        -> appicon.png (1024) and icons/{64..512}.png
#   appicon-small.svg  -> icons/{16,32,48}.png (simplified so it stays crisp when tiny)
#   icons/{16..256}.png -> windows/icon.ico
set -eu
cd "$(dirname "$0")"
mkdir -p icons
rsvg-convert -w 1024 -h 1024 appicon.svg -o appicon.png
for s in 64 128 256 512; do rsvg-convert -w "$s" -h "$s" appicon.svg -o "icons/$s.png"; done
for s in 16 32 48; do rsvg-convert -w "$s" -h "$s" appicon-small.svg -o "icons/$s.png"; done
# The Windows icon (wails build on Windows), from the PNGs above (needs ImageMagick).
mkdir -p windows
convert icons/16.png icons/32.png icons/48.png icons/64.png icons/128.png icons/256.png windows/icon.ico
