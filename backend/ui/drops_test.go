package ui

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/backend/servers"
	"github.com/porthole-app/porthole/internal/testrig"
)

// TestRealSshdDropsEveryLogin: a real sshd that accepts the login and
// closes the connection at once (a missing ChrootDirectory). Connect logs
// in at most forwarder.EarlyDeathLimit (3) times, fails with the plain
// reason and leaves the server failed, not "connected (reconnected after
// N ms)"; OpenSSH logs in once and exits, and three logins are what tells
// such a server from a network that dropped one or two connections.
func TestRealSshdDropsEveryLogin(t *testing.T) {
	forEachLogin(t, func(t *testing.T, agents bool) {
		sshd, _ := testrig.NewSshdDroppingLogins(t)
		ta := newTestApp(t, testAppOptions{agents: agents})
		p := addTrustedSshdServer(t, ta, sshd)
		res := waitConnect(t, connectAsync(ta.app, p.ID))
		if res.err == nil {
			t.Fatalf("Connect to a server that drops every login succeeded: %+v", res.sum)
		}
		se := serverErrorOf(t, res.err)
		if se.Kind != servers.ErrorDropsAfterLogin || !strings.Contains(se.Message, "ChrootDirectory") {
			t.Errorf("Connect error = %+v, want kind drops-after-login naming ChrootDirectory", se)
		}
		t.Logf("sshd accepted %d logins; Connect: %v", sshd.Logins(), res.err)
		if n := sshd.Logins(); n < 1 || n > 3 {
			t.Errorf("sshd accepted %d logins for one Connect, want 1 to 3", n)
		}
		var sum servers.ServerSummary
		for _, s := range ta.app.ListServers() {
			if s.ID == p.ID {
				sum = s
			}
		}
		if sum.State != servers.ServerFailed || sum.LastError == nil || sum.LastError.Kind != servers.ErrorDropsAfterLogin {
			t.Errorf("server after Connect = %s %+v, want failed with the reason", sum.State, sum.LastError)
		}
		// Nothing keeps logging in behind the user's back.
		before := sshd.Logins()
		time.Sleep(time.Second)
		if n := sshd.Logins(); n != before {
			t.Errorf("%d more logins after Connect failed", n-before)
		}
	})
}

// TestRealSshdStartsDroppingLogins: a connected server whose
// ChrootDirectory goes missing (then sshd restarts, so the connection is
// lost). The next use redials, sees each login dropped, and the server ends
// failed with the reason (its kind crosses the agent's pipe), after at most
// 3 more logins; the use gets that error, not a hang.
func TestRealSshdStartsDroppingLogins(t *testing.T) {
	forEachLogin(t, func(t *testing.T, agents bool) {
		sshd, chroot := testrig.NewSshdDroppingLogins(t)
		if err := os.Mkdir(chroot, 0o755); err != nil {
			t.Fatal(err)
		}
		web := testrig.NewWebApp(t)
		ta := newTestApp(t, testAppOptions{agents: agents})
		p := addTrustedSshdServer(t, ta, sshd)
		if res := waitConnect(t, connectAsync(ta.app, p.ID)); res.err != nil {
			t.Fatalf("Connect while the chroot exists: %v", res.err)
		}
		_, l, err := ta.app.servers.Login(p.ID)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req := []byte("GET /small HTTP/1.0\r\nHost: localhost\r\n\r\n")
		if b, err := l.Probe(ctx, "127.0.0.1", web.Port(), req, 4096); err != nil || !strings.Contains(string(b), "small") {
			t.Fatalf("a probe while the chroot exists: %q, %v", b, err)
		}
		before := sshd.Logins()
		if err := os.Remove(chroot); err != nil {
			t.Fatal(err)
		}
		if err := sshd.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = l.Probe(ctx, "127.0.0.1", web.Port(), req, 4096)
		if !errors.Is(err, forwarder.ErrDropsAfterLogin) {
			t.Errorf("a probe after the server began dropping logins = %v, want ErrDropsAfterLogin", err)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("the probe took %v", d)
		}
		var sum servers.ServerSummary
		waitUntil(t, "the server to show the failure", func() bool {
			for _, s := range ta.app.ListServers() {
				if s.ID == p.ID {
					sum = s
				}
			}
			return sum.State == servers.ServerFailed && sum.LastError != nil && sum.LastError.Kind == servers.ErrorDropsAfterLogin
		})
		if n := sshd.Logins() - before; n > 3 {
			t.Errorf("%d logins after the server began dropping them, want at most 3", n)
		}
		t.Logf("%s: %s (%d logins after the change)", sum.State, sum.LastError.Message, sshd.Logins()-before)
	})
}

// addTrustedSshdServer saves a profile for sshd (its user and key) and
// trusts its host key.
func addTrustedSshdServer(t *testing.T, ta *testApp, sshd *testrig.Sshd) profiles.Profile {
	t.Helper()
	known, err := os.ReadFile(sshd.KnownHostsPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ta.home, ".ssh", "known_hosts"), known, 0o600); err != nil {
		t.Fatal(err)
	}
	return addSshdServer(t, ta.app, sshd)
}
