package main

import (
	"errors"
	"os"
	"runtime"
)

// errNoDisplay: the desktop window needs a graphical session.
var errNoDisplay = errors.New("no display: the Porthole window needs a graphical session (DISPLAY or WAYLAND_DISPLAY is not set); run `porthole serve` to use Porthole from your browser instead")

func checkDisplay() error {
	if runtime.GOOS == "linux" && os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return errNoDisplay
	}
	return nil
}

// desktopBinaryName is the build that holds the window (tags desktop,production).
const desktopBinaryName = "porthole-desktop"
