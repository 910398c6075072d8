package ui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
		known, err := os.ReadFile(sshd.KnownHostsPath)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ta.home, ".ssh", "known_hosts"), known, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := ta.app.AddServer(profiles.Profile{Name: "chroot", Host: sshd.Host, Port: sshd.Port, User: sshd.User,
			KeyPath: sshd.ClientKeyPath, Auth: []profiles.AuthMethod{profiles.AuthKey}})
		if err != nil {
			t.Fatal(err)
		}
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
