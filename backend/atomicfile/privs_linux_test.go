package atomicfile

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// asUnprivileged runs fn so that file permissions apply to it. As root it
// runs fn on an OS thread of its own that has dropped the capabilities that
// override permissions (capabilities are per thread on Linux); the thread
// is never unlocked, so it ends with fn.
func asUnprivileged(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		fn()
		return
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		for _, c := range []uint{unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH, unix.CAP_FOWNER} {
			data[c/32].Effective &^= 1 << (c % 32)
		}
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		fn()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Skipf("cannot drop root's file capabilities: %v", err)
	}
}
