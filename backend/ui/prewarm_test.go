package ui

import (
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/backend/prompts"
	"github.com/porthole-app/porthole/backend/servers"
	"github.com/porthole-app/porthole/internal/testrig"
)

// TestPrewarmThroughTheBridge: Prewarm (as serve's HTTP bridge calls it)
// leaves a server the user has not connected alone; after the session closed
// its idle connection it dials again with the password the user typed (not
// remembered), asking nothing; after Disconnect it dials nothing.
func TestPrewarmThroughTheBridge(t *testing.T) {
	forEachLogin(t, func(t *testing.T, agents bool) {
		srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{Password: testPassword})
		ta := newTestApp(t, testAppOptions{agents: agents})
		b := newBridge(t, ta)
		p := addServerFor(t, ta, "warm", srv.Addr(), srv.User())
		p.Options.IdleTimeout = profiles.Duration(time.Second)
		if _, err := ta.app.UpdateServer(p); err != nil {
			t.Fatal(err)
		}
		prewarm := func() {
			t.Helper()
			if code, body := b.call("Prewarm", p.ID); code != 200 {
				t.Fatalf("Prewarm: %d %s", code, body)
			}
		}
		waitState := func(want servers.ServerState) {
			t.Helper()
			deadline := time.Now().Add(20 * time.Second)
			for ta.app.servers.Summary(p.ID).State != want {
				if time.Now().After(deadline) {
					t.Fatalf("state %v, want %v", ta.app.servers.Summary(p.ID).State, want)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		prompted := func() int {
			return ta.rec.count(prompts.TopicPrompts.Name(), func(d any) bool { return len(d.([]prompts.Prompt)) > 0 })
		}

		prewarm() // never connected
		time.Sleep(300 * time.Millisecond)
		if st := srv.Stats(); st.AuthOK != 0 || st.AuthFail != 0 || ta.app.servers.Summary(p.ID).State != servers.ServerDisconnected {
			t.Fatalf("Prewarm of a server never connected: %d logins, %d failed, state %v", st.AuthOK, st.AuthFail, ta.app.servers.Summary(p.ID).State)
		}

		ch := connectAsync(ta.app, p.ID)
		acceptHostKey(t, ta, p.ID, srv.HostKey(), prompts.HostKeyAcceptAlways)
		answerPassword(t, ta, p.ID, testPassword, false)
		if res := waitConnect(t, ch); res.err != nil {
			t.Fatalf("Connect: %v", res.err)
		}
		asked := prompted()
		waitState(servers.ServerIdle) // closed after 1 s unused
		if n := srv.Stats().AuthOK; n != 1 {
			t.Fatalf("logins before Prewarm: %d, want 1", n)
		}
		for range 10 {
			prewarm()
		}
		waitState(servers.ServerConnected)
		if n := srv.Stats().AuthOK; n != 2 {
			t.Fatalf("logins after Prewarm: %d, want 2", n)
		}
		if n := prompted(); n != asked {
			t.Fatalf("Prewarm asked %d question(s)", n-asked)
		}

		if _, err := ta.app.Disconnect(p.ID); err != nil {
			t.Fatal(err)
		}
		prewarm()
		time.Sleep(300 * time.Millisecond)
		if st := srv.Stats(); st.AuthOK != 2 || ta.app.servers.Summary(p.ID).State != servers.ServerDisconnected {
			t.Fatalf("Prewarm after Disconnect: %d logins (want 2), state %v", st.AuthOK, ta.app.servers.Summary(p.ID).State)
		}
		if code, _ := b.call("Prewarm", "no-such-server"); code != 200 {
			t.Fatalf("Prewarm of an unknown server: %d, want 200 (nothing to do)", code)
		}
	})
}
