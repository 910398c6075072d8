package discovery

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestLocalSourceFindsOwnServer(t *testing.T) {
	checkGoroutines(t)
	port := serve(t, streamlitMimic(&requestLog{}))
	// Probe only this test's listener: other packages' tests run in
	// parallel on this machine and count the connections theirs get.
	self := os.Getpid()
	notOurs := func(s Service) bool { return s.Process == nil || s.Process.PID != self }
	src := NewLocalSource(Options{ProbeTimeout: time.Second, Skip: notOurs})
	svcs, err := src.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sv := findService(svcs, port)
	if sv == nil {
		t.Fatalf("port %d not found among %v", port, servicePorts(svcs))
	}
	if sv.Process == nil || sv.Process.PID != os.Getpid() {
		t.Fatalf("process = %+v, want pid %d", sv.Process, os.Getpid())
	}
	wd, _ := os.Getwd()
	exe, _ := os.Executable()
	if sv.Process.Cwd != wd || sv.Process.Exe != exe || sv.Process.Started.IsZero() {
		t.Errorf("process = %+v; want cwd %q exe %q and a start time", sv.Process, wd, exe)
	}
	if !sv.Local || sv.Kind != KindStreamlit || !sv.IsWeb || sv.DialHost != "127.0.0.1" || sv.Scope != ScopeLoopback || !sv.Mine {
		t.Errorf("service = %+v", sv)
	}

	// A second scan reuses the probe; Skip hides our own process.
	again, err := src.Scan(context.Background())
	if err != nil || findService(again, port) == nil || findService(again, port).Title != sv.Title {
		t.Errorf("second scan: %v", err)
	}
	skipping := NewLocalSource(Options{ProbeTimeout: time.Second, Skip: func(s Service) bool { return notOurs(s) || s.Process.PID == self }})
	svcs, err = skipping.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if findService(svcs, port) != nil {
		t.Error("Skip did not hide this process's listener")
	}
}
