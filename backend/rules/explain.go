package rules

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/porthole-app/porthole/backend/profiles"
)

// refusal is one row of the table that says in plain words why a forward
// failed: every word of match must be in the error (lower-cased).
type refusal struct {
	match []string
	// refused: the server (its sshd_config) said no, as opposed to a
	// target that is down or a local problem.
	refused bool
	say     func(r profiles.ForwardRule, target string) string
}

// refusals is checked in order; the first row that matches wins.
var refusals = []refusal{
	{[]string{"administratively prohibited"}, true, func(r profiles.ForwardRule, target string) string {
		return fmt.Sprintf("the server refused to open %s: its sshd_config may forbid it (AllowTcpForwarding no/remote or a PermitOpen rule)", target)
	}},
	{[]string{"the server refused to listen"}, true, nil}, // -R: forwarder's words name AllowTcpForwarding and PermitListen
	{[]string{"gatewayports"}, false, nil},                // -R on loopback only: forwarder's words
	{[]string{"connect failed", "connection refused"}, false, func(_ profiles.ForwardRule, target string) string {
		return fmt.Sprintf("nothing listens on %s on the server (connection refused)", target)
	}},
	{[]string{"connect failed", "not known"}, false, func(_ profiles.ForwardRule, target string) string {
		return fmt.Sprintf("the server cannot find the host of %s (name not known)", target)
	}},
	{[]string{"connect failed", "timed out"}, false, func(_ profiles.ForwardRule, target string) string {
		return fmt.Sprintf("the server could not reach %s in time (connection timed out)", target)
	}},
	{[]string{"connect failed", "unreachable"}, false, func(_ profiles.ForwardRule, target string) string {
		return fmt.Sprintf("the server has no route to %s (network unreachable)", target)
	}},
	{[]string{"address already in use"}, false, func(r profiles.ForwardRule, _ string) string {
		return fmt.Sprintf("%s is already in use on this computer: choose another local port, or stop the program that uses it", listenSide(r))
	}},
	{[]string{"listen", "permission denied"}, false, func(r profiles.ForwardRule, _ string) string {
		return fmt.Sprintf("this computer does not let Porthole listen on %s (ports below 1024 need administrator rights): choose a port above 1023", listenSide(r))
	}},
	{[]string{"cannot assign requested address"}, false, func(r profiles.ForwardRule, _ string) string {
		return fmt.Sprintf("%s is not an address of this computer", listenSide(r))
	}},
	{[]string{"ssh connection unavailable"}, false, func(profiles.ForwardRule, string) string {
		return "the server cannot be reached right now; the next connection tries again"
	}},
}

// Explain says in plain words why rule r failed, from the forwarder's or
// the agent's error text raw (it crossed the agent's pipe as text). A
// server refusal names the sshd_config setting that may cause it. Text no
// row knows is returned as it is.
func Explain(r profiles.ForwardRule, raw string) string {
	msg, _ := explain(r, raw)
	return msg
}

// explain is Explain, and whether the server refused.
func explain(r profiles.ForwardRule, raw string) (string, bool) {
	lower := strings.ToLower(raw)
	for _, row := range refusals {
		ok := true
		for _, w := range row.match {
			if !strings.Contains(lower, w) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if row.say == nil {
			return raw, row.refused
		}
		return row.say(r, targetOf(r, raw)), row.refused
	}
	return raw, false
}

// targetOf is what the server was asked to open: the rule's target, or for
// a SOCKS rule the one the error names ("dial host:port: …").
func targetOf(r profiles.ForwardRule, raw string) string {
	if r.Kind == profiles.ForwardDynamic {
		if rest, ok := strings.CutPrefix(raw, "dial "); ok {
			if t, _, ok := strings.Cut(rest, ": "); ok {
				return t
			}
		}
		return "the address the SOCKS client asked for"
	}
	return serverSide(r)
}

func hostPort(host string, port int, def string) string {
	if host == "" {
		host = def
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// listenSide is where the rule listens on this computer (-L, -D) as the
// rule says it; the forward's bound address replaces it once known.
func listenSide(r profiles.ForwardRule) string {
	if r.Kind == profiles.ForwardRemote {
		return hostPort(r.LocalHost, r.LocalPort, "localhost")
	}
	return hostPort(r.LocalHost, r.LocalPort, "127.0.0.1")
}

// serverSide is the rule's end on the server: the target of -L, the
// listener of -R; "" for -D.
func serverSide(r profiles.ForwardRule) string {
	switch r.Kind {
	case profiles.ForwardLocal, profiles.ForwardWeb:
		return hostPort(r.RemoteHost, r.RemotePort, "localhost")
	case profiles.ForwardRemote:
		return hostPort(r.RemoteHost, r.RemotePort, "localhost")
	}
	return ""
}
