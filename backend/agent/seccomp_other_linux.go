//go:build linux && !amd64 && !arm64

package agent

import (
	"errors"
	"fmt"
	"runtime"
)

var errSeccompUnavailable = errors.New("seccomp filters are not available")

// installSeccomp: Porthole has no filter for this architecture yet.
func installSeccomp() error {
	return fmt.Errorf("%w: Porthole has no filter for %s", errSeccompUnavailable, runtime.GOARCH)
}
