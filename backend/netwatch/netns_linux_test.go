//go:build linux

package netwatch

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/porthole-app/porthole/internal/testrig"
)

// openIn opens a Watcher inside network namespace ns: a socket belongs to
// the namespace of the thread that created it, so a dedicated, locked OS
// thread enters ns, opens it and goes back. If it cannot go back, the
// thread stays locked and dies with its goroutine.
func openIn(t *testing.T, ns *testrig.NetNS, opts Options) *Watcher {
	t.Helper()
	type result struct {
		w   *Watcher
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		w, err := Open(opts)
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{w, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("open a watcher in namespace %s: %v", ns.Name, r.err)
	}
	return r.w
}

// changes runs w and delivers its changes to the returned channel until the
// test ends.
func changes(t *testing.T, w *Watcher) <-chan Change {
	t.Helper()
	ch := make(chan Change, 64)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := w.Run(ctx, func(c Change) { ch <- c }); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return ch
}

// waitFor reads changes until every wanted event was seen, and returns all
// events seen. It fails after a generous time (a loaded machine is slow;
// nothing here measures speed).
func waitFor(t *testing.T, ch <-chan Change, want ...Event) []Event {
	t.Helper()
	var seen []Event
	missing := func() []Event {
		var m []Event
		for _, w := range want {
			found := false
			for _, e := range seen {
				found = found || e == w
			}
			if !found {
				m = append(m, w)
			}
		}
		return m
	}
	timeout := time.After(30 * time.Second)
	for len(missing()) > 0 {
		select {
		case c := <-ch:
			if len(c.Events) == 0 {
				t.Fatal("a Change with no events")
			}
			seen = append(seen, c.Events...)
		case <-timeout:
			t.Fatalf("not reported within 30 s: %v; seen: %v", missing(), seen)
		}
	}
	return seen
}

// TestWatcherInNetNS makes real changes in a namespace of its own and
// checks what the watcher reports, and what it leaves out.
func TestWatcherInNetNS(t *testing.T) {
	ns := testrig.NewNetNS(t)
	w := openIn(t, ns, Options{Debounce: 50 * time.Millisecond})
	ch := changes(t, w)

	// Not reported: loopback coming up (127.0.0.1, ::1) and a new link
	// without an address.
	ns.IP(t, "link", "set", "lo", "up")
	ns.IP(t, "link", "add", "pw0", "type", "veth", "peer", "name", "pw1")

	addr := netip.MustParsePrefix("10.77.0.1/24")
	ns.IP(t, "addr", "add", "10.77.0.1/24", "dev", "pw0")
	seen := waitFor(t, ch, Event{Kind: KindAddrAdded, Iface: "pw0", Prefix: addr})
	if len(seen) != 1 {
		t.Errorf("the first change reported %v; want only the address on pw0 (loopback and a bare link are not changes)", seen)
	}
	if got := seen[0].String(); got != "address 10.77.0.1/24 added on pw0" {
		t.Errorf("event in words = %q", got)
	}

	// Bringing the pair up gives pw0 a carrier and its prefix route (and
	// IPv6 link-local addresses, which are not reported).
	ns.IP(t, "link", "set", "pw1", "up")
	ns.IP(t, "link", "set", "pw0", "up")
	seen = waitFor(t, ch,
		Event{Kind: KindLinkUp, Iface: "pw0"},
		Event{Kind: KindRouteAdded, Iface: "pw0", Prefix: netip.MustParsePrefix("10.77.0.0/24")})
	for _, e := range seen {
		if e.Prefix.IsValid() && e.Prefix.Addr().IsLinkLocalUnicast() || e.Iface == "lo" || e.Iface == "pw1" {
			t.Errorf("reported %v: link-local addresses, loopback and links without an address are not changes", e)
		}
	}

	// A default route, then the address goes away.
	ns.IP(t, "route", "add", "default", "via", "10.77.0.254", "dev", "pw0")
	waitFor(t, ch, Event{Kind: KindRouteAdded, Iface: "pw0", Prefix: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.77.0.254")})
	ns.IP(t, "addr", "del", "10.77.0.1/24", "dev", "pw0")
	waitFor(t, ch, Event{Kind: KindAddrRemoved, Iface: "pw0", Prefix: addr})

	// Link down on a link that still has an address is reported.
	ns.IP(t, "addr", "add", "10.78.0.1/24", "dev", "pw0")
	waitFor(t, ch, Event{Kind: KindAddrAdded, Iface: "pw0", Prefix: netip.MustParsePrefix("10.78.0.1/24")})
	ns.IP(t, "link", "set", "pw0", "down")
	waitFor(t, ch, Event{Kind: KindLinkDown, Iface: "pw0"})
}

// TestWatcherStopsWithContext: Run returns when its context ends and the
// socket is closed.
func TestWatcherStopsWithContext(t *testing.T) {
	ns := testrig.NewNetNS(t)
	w := openIn(t, ns, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, func(Change) {}) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if err := w.Run(context.Background(), func(Change) {}); err == nil {
		t.Fatal("Run on a closed watcher returned nil")
	}
}
