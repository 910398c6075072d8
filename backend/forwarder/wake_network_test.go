package forwarder

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/netwatch"
	"github.com/porthole-app/porthole/internal/testrig"
)

// fakeNetwork is a NetworkSource the test drives.
type fakeNetwork struct {
	changes chan netwatch.Change
	err     error // returned by Run at once when set
}

func (f *fakeNetwork) Run(ctx context.Context, fn func(netwatch.Change)) error {
	if f.err != nil {
		return f.err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-f.changes:
			fn(c)
		}
	}
}

var wlanAddrAdded = netwatch.Change{Events: []netwatch.Event{{Kind: netwatch.KindAddrAdded, Iface: "wlan0", Prefix: netip.MustParsePrefix("10.0.0.5/24")}}}

// TestNetworkChangeMarksSessionsSuspect: a change from the network source
// marks every registered session suspect with its own reason (not a
// wake); an idle one pings before its next use, one that carries traffic
// is verified at once.
func TestNetworkChangeMarksSessionsSuspect(t *testing.T) {
	srv := newServer(t, nil)
	web := testrig.NewWebApp(t)
	h, p := hostPort(t, web.Addr())
	nw := &fakeNetwork{changes: make(chan netwatch.Change)}
	w := NewWakeDetector(WakeOptions{NoDBus: true, Interval: time.Hour, Network: nw})
	w.Start()
	t.Cleanup(func() { _ = w.Close() })
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: PoolOptions{Disabled: true}, PingIdleThreshold: -1})
	rec := &suspectRecorder{}
	defer w.Register(s)()
	defer w.Register(rec)()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := s.Dial(ctx, h, p)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	waitFor(t, 10*time.Second, "the closed connection to be counted", func() bool { return s.State().OpenConns == 0 })

	// Idle: marked suspect, pings before the next use.
	nw.changes <- wlanAddrAdded
	waitFor(t, 10*time.Second, "the recorder to be marked", func() bool { return rec.count() == 1 })
	rec.mu.Lock()
	reason := rec.reasons[0]
	rec.mu.Unlock()
	if reason != "network changed: address 10.0.0.5/24 added on wlan0" {
		t.Errorf("reason = %q", reason)
	}
	if st := s.State(); st.State != StateSuspect || !strings.Contains(st.Reason, "network changed") {
		t.Fatalf("session after a network change = %+v, want suspect, network changed", st)
	}
	if w.Wakes() != 0 || w.NetworkChanges() != 1 {
		t.Errorf("wakes %d, network changes %d; want 0 and 1", w.Wakes(), w.NetworkChanges())
	}
	before := srv.Stats().Keepalives
	c, err = s.Dial(ctx, h, p)
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Stats().Keepalives; got != before+1 {
		t.Fatalf("keepalives %d → %d; a suspect session must ping before use", before, got)
	}

	// Carrying traffic (c is open): verified right away, without a new Dial.
	before = srv.Stats().Keepalives
	nw.changes <- wlanAddrAdded
	waitFor(t, 20*time.Second, "a ping right after the change", func() bool { return srv.Stats().Keepalives > before })
	_ = c.Close()
}

// TestNetworkSourceFailure: a source that fails is logged and leaves the
// clocks and D-Bus alone; Close still returns.
func TestNetworkSourceFailure(t *testing.T) {
	baseline := runtime.NumGoroutine()
	log, logs := testLogger(t)
	w := NewWakeDetector(WakeOptions{NoDBus: true, Interval: time.Hour, Network: &fakeNetwork{err: errors.New("boom")}, Logger: log})
	w.Start()
	waitFor(t, 10*time.Second, "the failure to be logged", func() bool { return strings.Contains(logs.String(), "stopped watching the network") })
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	settleGoroutines(t, baseline)
}

var _ NetworkSource = (*netwatch.Watcher)(nil)
