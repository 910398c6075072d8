package agent

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/sshconn"
	"github.com/porthole-app/porthole/internal/testrig"
)

// A web forward is an app open in a tab: when it starts (also when the app
// sets its forwards again after an agent restart) and after a Disconnect,
// the login's next connection pre-opens channels to the app before the
// browser asks, so the page's first load is pooled.
func TestWebForwardSeedsThePool(t *testing.T) {
	r := newRig(t, testrig.SSHServerOptions{})
	// The pool works from 1 ms RTT up: a relay adds it.
	relay := testrig.NewRelay(t, r.srv.Addr())
	relay.SetDelay(time.Millisecond)
	if err := sshconn.AppendKnownHost(r.knownHosts, relay.Addr(), r.srv.HostKey(), false); err != nil {
		t.Fatal(err)
	}
	spec := r.spec("seed", r.appForward("app", 0))
	host, ps, _ := net.SplitHostPort(relay.Addr())
	spec.Host, spec.Port = host, mustAtoi(t, ps)
	l, err := NewLocalLogin(spec, Secrets{Password: testPassword}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	target := net.JoinHostPort("localhost", strconv.Itoa(r.web.Port()))
	seeded := func() bool {
		s, err := l.session()
		if err != nil {
			return false
		}
		for _, p := range s.PoolStats() {
			if p.Target == target && p.Idle >= 1 {
				return true
			}
		}
		return false
	}
	if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(10*time.Second, seeded) {
		s, _ := l.session()
		t.Fatalf("no channel pre-opened for the tab's app after connecting: %+v", s.PoolStats())
	}
	if err := l.Disconnect(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(10*time.Second, seeded) {
		s, _ := l.session()
		t.Fatalf("no channel pre-opened for the tab's app after Disconnect and Connect: %+v", s.PoolStats())
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
