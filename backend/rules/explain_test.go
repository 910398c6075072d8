package rules

import (
	"strings"
	"testing"

	"github.com/porthole-app/porthole/backend/profiles"
)

// TestExplain is the refusal-to-message table: what the forwarder and the
// agent report, and what the rule shows.
func TestExplain(t *testing.T) {
	l := profiles.ForwardRule{Kind: profiles.ForwardLocal, LocalPort: 8080, RemoteHost: "db", RemotePort: 5432}
	d := profiles.ForwardRule{Kind: profiles.ForwardDynamic, LocalPort: 1080}
	r := profiles.ForwardRule{Kind: profiles.ForwardRemote, RemotePort: 9000, LocalPort: 3000}
	for _, tc := range []struct {
		name    string
		rule    profiles.ForwardRule
		raw     string
		want    string // the whole message, or a part of it
		refused bool
	}{
		{"-L PermitOpen", l, "dial db:5432: ssh server refused the channel: ssh: rejected: administratively prohibited (open failed)",
			"the server refused to open db:5432: its sshd_config may forbid it (AllowTcpForwarding no/remote or a PermitOpen rule)", true},
		{"-D PermitOpen names the SOCKS target", d, "dial example.org:443: ssh server refused the channel: ssh: rejected: administratively prohibited (open failed)",
			"the server refused to open example.org:443: its sshd_config may forbid it (AllowTcpForwarding no/remote or a PermitOpen rule)", true},
		{"-R PermitListen (the forwarder's words)", r, "the server refused to listen on localhost:9000: its sshd_config may have AllowTcpForwarding no/local or a PermitListen rule that does not allow it (or the port is privileged)",
			"AllowTcpForwarding no/local or a PermitListen rule", true},
		{"-R GatewayPorts (the forwarder's words)", r, "listening on port 9000 of the server's loopback only, not on *: its sshd_config has GatewayPorts no, so other machines cannot reach it",
			"GatewayPorts no", false},
		{"target down", l, "dial db:5432: ssh server refused the channel: ssh: rejected: connect failed (Connection refused)",
			"nothing listens on db:5432 on the server (connection refused)", false},
		{"unknown host", l, "dial db:5432: ssh server refused the channel: ssh: rejected: connect failed (Name or service not known)",
			"the server cannot find the host of db:5432 (name not known)", false},
		{"timeout", l, "ssh: rejected: connect failed (Connection timed out)", "could not reach db:5432 in time", false},
		{"unreachable", l, "ssh: rejected: connect failed (Network is unreachable)", "no route to db:5432", false},
		{"port taken", l, "cannot listen on the local address: forward rule:x: listen tcp 127.0.0.1:8080: bind: address already in use",
			"127.0.0.1:8080 is already in use on this computer", false},
		{"privileged port", profiles.ForwardRule{Kind: profiles.ForwardLocal, LocalPort: 80, RemotePort: 80}, "listen tcp 127.0.0.1:80: bind: permission denied",
			"ports below 1024 need administrator rights", false},
		{"not an address here", profiles.ForwardRule{Kind: profiles.ForwardLocal, LocalHost: "10.9.9.9", LocalPort: 80, RemotePort: 80}, "listen tcp 10.9.9.9:80: bind: cannot assign requested address",
			"10.9.9.9:80 is not an address of this computer", false},
		{"no connection", l, "dial db:5432: ssh connection unavailable: dial tcp: connection refused", "the server cannot be reached right now", false},
		{"unknown text is kept", l, "something odd", "something odd", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, refused := explain(tc.rule, tc.raw)
			if !strings.Contains(got, tc.want) || refused != tc.refused {
				t.Fatalf("explain(%q) = %q, refused %v; want %q, refused %v", tc.raw, got, refused, tc.want, tc.refused)
			}
			if Explain(tc.rule, tc.raw) != got {
				t.Fatal("Explain and explain disagree")
			}
		})
	}
}
