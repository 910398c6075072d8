//go:build !desktop

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// desktopBinary is the sibling executable that holds the window.
const desktopBinary = desktopBinaryName

// runDesktop, in the plain build, hands over to porthole-desktop next to this
// executable. The plain build links no GTK/WebKit: `serve`, `forward` and the
// per-login agents start in a few MB instead of ~60 MB of mapped GUI libraries.
func runDesktop() error {
	if err := checkDisplay(); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this executable: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved
	}
	target := filepath.Join(filepath.Dir(self), desktopBinary)
	if _, err := os.Stat(target); err != nil {
		return fmt.Errorf("%w: %s is missing (build it with `make build`), or use `porthole serve`", errNoWindowBuild, target)
	}
	return syscall.Exec(target, append([]string{target}, os.Args[1:]...), os.Environ())
}

var errNoWindowBuild = errors.New("this porthole has no desktop window")
