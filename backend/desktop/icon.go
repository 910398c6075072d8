package desktop

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
)

// DownIcon is icon (a PNG) with a red dot in its lower right corner: the
// tray's "some server is down" variant.
func DownIcon(icon []byte) ([]byte, error) {
	src, err := png.Decode(bytes.NewReader(icon))
	if err != nil {
		return nil, fmt.Errorf("read the tray icon: %w", err)
	}
	b := src.Bounds()
	img := image.NewRGBA(b)
	draw.Draw(img, b, src, b.Min, draw.Src)
	w := b.Dx()
	r := w / 4
	cx, cy := b.Max.X-r-w/32, b.Max.Y-r-w/32
	red, ring := color.RGBA{R: 0xe5, G: 0x3e, B: 0x3e, A: 0xff}, color.RGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xff}
	for y := cy - r - 2; y <= cy+r+2; y++ {
		for x := cx - r - 2; x <= cx+r+2; x++ {
			d := (x-cx)*(x-cx) + (y-cy)*(y-cy)
			switch {
			case d <= r*r:
				img.Set(x, y, red)
			case d <= (r+2)*(r+2):
				img.Set(x, y, ring)
			}
		}
	}
	var out bytes.Buffer
	if err := png.Encode(&out, img); err != nil {
		return nil, fmt.Errorf("write the tray icon: %w", err)
	}
	return out.Bytes(), nil
}
