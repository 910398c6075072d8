package agent

import (
	"runtime"
	"testing"
)

func TestOneSessionProcs(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })

	runtime.GOMAXPROCS(4)
	t.Setenv("GOMAXPROCS", "")
	OneSessionProcs()
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Errorf("GOMAXPROCS = %d after OneSessionProcs, want 1", n)
	}

	runtime.GOMAXPROCS(4)
	t.Setenv("GOMAXPROCS", "4")
	OneSessionProcs()
	if n := runtime.GOMAXPROCS(0); n != 4 {
		t.Errorf("GOMAXPROCS = %d with GOMAXPROCS=4 in the environment, want 4 (the user's choice wins)", n)
	}
}
