package agent

import (
	"sync"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/internal/testrig"
)

// TestPrewarm: after the session closed its idle connection, Prewarm dials
// it again without a request and without asking anything; many calls make
// one dial; a login the user disconnected, or never connected, and a login
// whose dial would need a prompt are left alone. Both implementations.
func TestPrewarm(t *testing.T) {
	const idle = time.Second // long enough that a burst of calls sees one connection
	waitState := func(t *testing.T, l Login, want forwarder.State) {
		t.Helper()
		if !waitUntil(20*time.Second, func() bool { return l.State().State == want }) {
			t.Fatalf("state %v, want %v", l.State(), want)
		}
	}
	for _, impl := range implementations(t) {
		t.Run(impl.name, func(t *testing.T) {
			t.Run("after an idle close", func(t *testing.T) {
				r := newRig(t, testrig.SSHServerOptions{})
				spec := r.spec("warm")
				spec.Session.IdleTimeout = idle
				p := &fakePrompter{}
				l := impl.start(t, spec, Secrets{Password: testPassword}, p)
				if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
					t.Fatalf("Connect: %v", err)
				}
				waitState(t, l, forwarder.StateIdle) // the idle close
				if n := r.srv.Stats().AuthOK; n != 1 {
					t.Fatalf("logins before Prewarm: %d, want 1", n)
				}
				var wg sync.WaitGroup
				for range 20 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if err := l.(Prewarmer).Prewarm(ctxT(t, 10*time.Second)); err != nil {
							t.Errorf("Prewarm: %v", err)
						}
					}()
				}
				wg.Wait()
				waitState(t, l, forwarder.StateReady)
				if n := r.srv.Stats().AuthOK; n != 2 {
					t.Fatalf("logins after 20 Prewarm calls: %d, want 2 (one speculative dial)", n)
				}
				if err := l.(Prewarmer).Prewarm(ctxT(t, 10*time.Second)); err != nil {
					t.Fatalf("Prewarm while connected: %v", err)
				}
				if n := r.srv.Stats().AuthOK; n != 2 {
					t.Fatalf("logins after Prewarm on a ready session: %d, want 2", n)
				}
				if pw, hk, ki, _ := p.counts(); pw+hk+ki != 0 {
					t.Fatalf("the user was asked %d times", pw+hk+ki)
				}
				// The adopted connection serves the login and idles out again.
				if _, err := l.Exec(ctxT(t, 10*time.Second), "true"); err != nil {
					t.Fatalf("Exec on the prewarmed connection: %v", err)
				}
				if n := r.srv.Stats().AuthOK; n != 2 {
					t.Fatalf("logins after Exec: %d, want 2 (the prewarmed connection used)", n)
				}
				waitState(t, l, forwarder.StateIdle)
			})
			t.Run("disconnected or never connected", func(t *testing.T) {
				r := newRig(t, testrig.SSHServerOptions{})
				spec := r.spec("cold")
				l := impl.start(t, spec, Secrets{Password: testPassword}, &fakePrompter{})
				if err := l.(Prewarmer).Prewarm(ctxT(t, 10*time.Second)); err != nil {
					t.Fatalf("Prewarm: %v", err)
				}
				if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
					t.Fatalf("Connect: %v", err)
				}
				if err := l.Disconnect(ctxT(t, 10*time.Second)); err != nil {
					t.Fatalf("Disconnect: %v", err)
				}
				for range 5 {
					if err := l.(Prewarmer).Prewarm(ctxT(t, 10*time.Second)); err != nil {
						t.Fatalf("Prewarm: %v", err)
					}
				}
				time.Sleep(300 * time.Millisecond) // a dial, were one started, would have logged in by now
				// Logins, not TCP accepts: another test's scan of this
				// machine's listeners may reach the server.
				if st := r.srv.Stats(); st.AuthOK != 1 || st.AuthFail != 0 {
					t.Fatalf("server saw %d logins and %d failed ones, want 1 and 0 (the user's Connect only)", st.AuthOK, st.AuthFail)
				}
				if st := l.State().State; st != forwarder.StateIdle {
					t.Fatalf("state %v, want idle", st)
				}
			})
			t.Run("a prompt would be needed", func(t *testing.T) {
				r := newRig(t, testrig.SSHServerOptions{})
				spec := r.spec("ask")
				spec.Session.IdleTimeout = idle
				p := &fakePrompter{password: testPassword}
				l := impl.start(t, spec, Secrets{}, p)
				if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
					t.Fatalf("Connect: %v", err)
				}
				waitState(t, l, forwarder.StateIdle)
				rec := record(l)
				if err := l.(Prewarmer).Prewarm(ctxT(t, 10*time.Second)); err != nil {
					t.Fatalf("Prewarm: %v", err)
				}
				// The speculative dial reaches the server and gives up at
				// its password question.
				if !waitUntil(20*time.Second, func() bool { return r.srv.Stats().Conns >= 2 }) {
					t.Fatalf("TCP connections: %d, want 2", r.srv.Stats().Conns)
				}
				time.Sleep(300 * time.Millisecond)
				if pw, hk, ki, _ := p.counts(); pw+hk+ki != 1 {
					t.Fatalf("prompts: %d, want 1 (the user's Connect only)", pw+hk+ki)
				}
				if n := r.srv.Stats().AuthOK; n != 1 {
					t.Fatalf("logins: %d, want 1", n)
				}
				if st := l.State().State; st != forwarder.StateIdle {
					t.Fatalf("state %v, want idle (a dropped prewarm is not a failure)", st)
				}
				if _, bad := rec.find(func(e Event) bool { return e.Kind == EventState && e.State.State != forwarder.StateIdle }); bad {
					t.Fatal("the dropped prewarm published a state change")
				}
			})
		})
	}
}
