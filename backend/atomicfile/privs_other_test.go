//go:build !linux

package atomicfile

import (
	"os"
	"testing"
)

// asUnprivileged runs fn so that file permissions apply to it; as root
// (which ignores them) outside Linux, the test is skipped.
func asUnprivileged(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() == 0 {
		t.Skip("root ignores file permissions")
	}
	fn()
}
