package ui

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/prompts"
	"github.com/porthole-app/porthole/backend/servers"
	"github.com/porthole-app/porthole/internal/testrig"
)

// TestReconnectRecordedWithDowntime (issue 13): a connection the server
// drops comes back on its own, and the server's dashboard lists that
// reconnect with its downtime; the uptime starts again.
func TestReconnectRecordedWithDowntime(t *testing.T) {
	forEachLogin(t, func(t *testing.T, agents bool) {
		srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{Password: testPassword})
		ta := newTestApp(t, testAppOptions{agents: agents})
		p := addServerFor(t, ta, "dash", srv.Addr(), srv.User())
		ch := connectAsync(ta.app, p.ID)
		acceptHostKey(t, ta, p.ID, srv.HostKey(), prompts.HostKeyAcceptAlways)
		answerPassword(t, ta, p.ID, testPassword, true)
		if res := waitConnect(t, ch); res.err != nil {
			t.Fatalf("Connect: %v", res.err)
		}
		st, err := ta.app.ServerStats(p.ID)
		if err != nil || st.State != servers.ServerConnected || st.ConnectedSince.IsZero() || len(st.Reconnects) != 0 {
			t.Fatalf("after Connect: %+v, %v", st, err)
		}
		up := st.ConnectedSince

		// A connection in use (a channel opened just now) is reconnected
		// in the background when it drops: an outage, then a reconnect.
		_, l, err := ta.app.servers.Login(p.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(srv.Addr())
		n, _ := strconv.Atoi(port)
		if _, err := l.Probe(context.Background(), "127.0.0.1", n, nil, 0); err != nil {
			t.Fatalf("Probe: %v", err)
		}
		srv.DropAll()
		deadline := time.Now().Add(20 * time.Second)
		for {
			st, _ = ta.app.ServerStats(p.ID)
			if len(st.Reconnects) > 0 && st.State == servers.ServerConnected {
				break
			}
			if time.Now().After(deadline) {
				v, _ := ta.app.ServerLog(p.ID)
				t.Fatalf("no reconnect recorded after the drop: %+v\n%s", st, strings.Join(v.Lines, "\n"))
			}
			time.Sleep(50 * time.Millisecond)
		}
		r := st.Reconnects[0]
		if len(st.Reconnects) != 1 || r.DowntimeMs < 0 || r.DowntimeMs > 20000 || r.Time.Before(up) {
			t.Fatalf("reconnects %+v; want one, after %v, with its downtime", st.Reconnects, up)
		}
		if !st.ConnectedSince.After(up) {
			t.Fatalf("uptime since %v; want it to start again after %v", st.ConnectedSince, up)
		}
		if n := ta.rec.count(servers.TopicServerStats.Name(), func(d any) bool {
			s := d.(servers.ServerStats)
			return s.ID == p.ID && len(s.Reconnects) == 1
		}); n == 0 {
			t.Fatal("no server.stats event carried the reconnect")
		}
		if _, err := ta.app.ServerStats("nope"); HTTPStatus(err) != 404 {
			t.Fatalf("ServerStats of an unknown server: %v", err)
		}
		if _, err := ta.app.Disconnect(p.ID); err != nil {
			t.Fatal(err)
		}
		if st, _ := ta.app.ServerStats(p.ID); !st.ConnectedSince.IsZero() || len(st.Reconnects) != 1 || st.ActiveConns != 0 {
			t.Fatalf("after Disconnect: %+v; want no uptime, the reconnect kept", st)
		}
	})
}
