//go:build linux

package forwarder

import (
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

// envNetNSChild makes TestNetlinkChangeMarksSessionsSuspect the child that
// runs inside the namespace.
const envNetNSChild = "PORTHOLE_FORWARDER_TEST_NETNS_CHILD"

const (
	netnsReady   = "NETNS-READY"
	netnsSuspect = "NETNS-SUSPECT "
)

// TestNetlinkChangeMarksSessionsSuspect: the WakeDetector as the logins
// build it (the system's network watcher, no injected source) marks its
// registered sessions suspect when an address is added. The detector runs
// in this test binary, run again with `ip netns exec` in a namespace the
// test creates, so the change touches only that namespace.
func TestNetlinkChangeMarksSessionsSuspect(t *testing.T) {
	if os.Getenv(envNetNSChild) == "1" {
		netnsChild(t)
		return
	}
	ns := testrig.NewNetNS(t)
	child := ns.RunTest(t, "TestNetlinkChangeMarksSessionsSuspect", envNetNSChild+"=1")
	child.Next(netnsReady)
	ns.IP(t, "link", "add", "pw0", "type", "veth", "peer", "name", "pw1")
	ns.IP(t, "addr", "add", "10.66.0.1/24", "dev", "pw0")
	reason := child.Next(netnsSuspect)
	if want := "network changed: address 10.66.0.1/24 added on pw0"; reason != want {
		t.Errorf("the session was marked suspect with %q, want %q", reason, want)
	}
	child.Wait()
}

// netnsChild runs inside the namespace: a default WakeDetector with one
// registered Suspecter; it prints the first reason it is marked with.
func netnsChild(t *testing.T) {
	w := NewWakeDetector(WakeOptions{NoDBus: true, Interval: time.Hour, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	w.Start()
	defer w.Close()
	rec := &suspectRecorder{}
	defer w.Register(rec)()
	fmt.Println(netnsReady)
	waitFor(t, 60*time.Second, "a network change", func() bool { return rec.count() > 0 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	fmt.Println(netnsSuspect + rec.reasons[0])
}
