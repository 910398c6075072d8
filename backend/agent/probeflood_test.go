package agent

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/discovery"
	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/internal/testrig"
)

// floodQuiet is how long the login stays connected after the listing while
// the sshd port's connections are counted. The issue asks for a minute; 15 s
// is enough to see a pool refill loop (it refilled within 4 s, about twice a
// second) and keeps the test short.
const floodQuiet = 15 * time.Second

// One listing of a server whose own sshd port is among its listeners (as on
// every real server), then a connected period: the sshd port gets exactly
// one connection, the probe's. Discovery's probes used to be the pool's
// demand: one listing opened 15–22 unauthenticated connections to sshd
// within a second and then about 2 a second while connected, and sshd's
// MaxStartups throttling dropped other people's logins. Real OpenSSH sshd;
// the listener the listing finds is a relay in front of sshd's port
// (discovery leaves out listeners it sees are sshd's; a user who cannot see
// root's processes gets sshd's port probed like any other). sshd's debug
// log names every direct-tcpip channel the login asks it to open: the
// count. (Other tests on this machine may connect to the relay too; they do
// not log in to this sshd, so they are not counted.)
func TestListingDoesNotFloodSshd(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a connected period")
	}
	sshd := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}, ExtraConfig: []string{"LogLevel DEBUG1"}})
	relay := testrig.NewRelay(t, sshd.Addr)
	_, ps, _ := net.SplitHostPort(relay.Addr())
	port, _ := strconv.Atoi(ps)
	// "debug1: server_request_direct_tcpip: originator 127.0.0.1 port 0, target 127.0.0.1 port 2222"
	opens := func() int {
		n := 0
		for _, line := range strings.Split(sshd.Log(), "\n") {
			if strings.Contains(line, "server_request_direct_tcpip") && strings.HasSuffix(strings.TrimSpace(line), " port "+ps) {
				n++
			}
		}
		return n
	}

	logs := &logBuffer{}
	l, err := NewLocalLogin(LoginSpec{
		ID: "flood", Name: "flood", Host: sshd.Host, Port: sshd.Port, User: sshd.User,
		AuthMethods: []AuthMethod{AuthKey}, IdentityFiles: []string{sshd.ClientKeyPath},
		SSHConfigPath: "none", HomeDir: t.TempDir(), KnownHostsFiles: []string{sshd.KnownHostsPath}, AgentSocket: "none",
		Session: SessionSettings{StatsInterval: -1, ConnectTimeout: 20 * time.Second},
	}, Secrets{}, nil, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = l.Close()
		if t.Failed() {
			t.Logf("login log:\n%s", logs.String())
		}
	})
	// The listing probes only the relay's port (the rest of this machine's
	// listeners belong to other tests).
	sc := discovery.NewScanner(l, ProbeDialer{Login: l}, discovery.Options{
		Logger: logs.logger(),
		Skip:   func(s discovery.Service) bool { return s.Port != port },
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svcs, err := sc.Scan(ctx)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(svcs) != 1 || svcs[0].Port != port || svcs[0].Probe.Protocol != discovery.ProtoSSH {
		t.Fatalf("the listing did not find sshd behind port %d: %+v", port, svcs)
	}
	time.Sleep(floodQuiet) // connected, nothing else to do: what does the pool open?
	if st := l.State().State; st != forwarder.StateReady {
		t.Fatalf("the login is %v after the quiet period, want it still connected", st)
	}
	n := opens()
	t.Logf("sshd opened %d connections to its own port (through the relay) for the login", n)
	if n != 1 {
		t.Fatalf("sshd's port got %d connections from one listing and %s connected; want 1 (the probe)", n, floodQuiet)
	}
}
