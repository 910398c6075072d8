package leaks

import (
	"strings"
	"testing"
	"time"
)

func TestClassifyParent(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	before, after := start.Add(-time.Hour), start.Add(time.Minute)
	cases := []struct {
		name    string
		started time.Time
		parent  Parent
		want    Orphan
		why     string
	}{
		{"init", start, Parent{PID: 1, Name: "systemd", Started: before, Exists: true}, ParentInit, "init (PID 1)"},
		{"no parent at all", start, Parent{PID: 0}, ParentInit, "init"},
		{"systemd --user adopted it", start, Parent{PID: 900, Name: "systemd", Started: before, Exists: true}, ParentReaper, "systemd (PID 900) adopted it"},
		{"tini adopted it", start, Parent{PID: 7, Name: "tini", Started: before, Exists: true}, ParentReaper, "tini"},
		{"the parent exited", start, Parent{PID: 4242}, ParentGone, "PID 4242) has exited"},
		{"the parent's PID was reused", start, Parent{PID: 4242, Name: "bash", Started: after, Exists: true}, ParentGone, "now belongs to bash, which started later"},
		{"a live shell", start, Parent{PID: 4242, Name: "bash", Started: before, Exists: true}, Attached, "started by bash (PID 4242)"},
		{"same tick as its parent", start, Parent{PID: 4242, Name: "zsh", Started: start, Exists: true}, Attached, "zsh"},
		{"autossh", start, Parent{PID: 4242, Name: "autossh", Started: before, Exists: true}, Attached, "autossh"},
		{"unknown start times", time.Time{}, Parent{PID: 4242, Name: "tmux: server", Exists: true}, Attached, "tmux: server"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, why := ClassifyParent(tc.started, tc.parent)
			if got != tc.want || !strings.Contains(why, tc.why) {
				t.Errorf("ClassifyParent = %v, %q; want %v, …%q…", got, why, tc.want, tc.why)
			}
			if got.Leaked() != (tc.want != Attached) {
				t.Errorf("%v.Leaked() = %v", got, got.Leaked())
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	cases := []struct {
		name      string
		f         ArgForward
		gateway   bool
		listeners []string
		reach     Reach
		exposes   string
		who       string
	}{
		{"loopback -L", ArgForward{Kind: ForwardLocal, Spec: "8080:db:5432", Port: 8080, TargetHost: "db", TargetPort: 5432}, false, nil,
			ReachLocalUsers, "127.0.0.1:8080 → db:5432, as seen from web1", "Every user of this computer can connect"},
		{"-g", ArgForward{Kind: ForwardLocal, Spec: "8080:db:5432", Port: 8080, TargetHost: "db", TargetPort: 5432}, true, nil,
			ReachNetwork, "0.0.0.0:8080", "other machines"},
		{"the sockets decide", ArgForward{Kind: ForwardLocal, Spec: "8080:db:5432", Port: 8080, TargetHost: "db", TargetPort: 5432}, false, []string{"192.0.2.1:8080"},
			ReachNetwork, "192.0.2.1:8080", "other machines"},
		{"dynamic", ArgForward{Kind: ForwardDynamic, Spec: "[::1]:1080", Bind: "::1", Port: 1080}, false, nil,
			ReachLocalUsers, "[::1]:1080 → a SOCKS proxy out of web1", "as a proxy"},
		{"remote", ArgForward{Kind: ForwardRemote, Spec: "9000:localhost:3000", Port: 9000, TargetHost: "localhost", TargetPort: 3000}, false, nil,
			ReachServerUsers, "port 9000 of web1 (its loopback) → localhost:3000 on this computer", "Every user of web1"},
		{"remote everywhere", ArgForward{Kind: ForwardRemote, Spec: "*:9000:localhost:3000", Bind: "*", Port: 9000, TargetHost: "localhost", TargetPort: 3000}, false, nil,
			ReachServerNetwork, "every interface", "GatewayPorts"},
		{"a local Unix socket", ArgForward{Kind: ForwardLocal, Spec: "/tmp/s:h:80", BindPath: "/tmp/s", TargetHost: "h", TargetPort: 80}, false, nil,
			ReachSocketOwner, "the Unix socket /tmp/s → h:80", "for you alone"},
		{"to a socket on the server", ArgForward{Kind: ForwardLocal, Spec: "8080:/run/a.sock", Port: 8080, TargetPath: "/run/a.sock"}, false, nil,
			ReachLocalUsers, "127.0.0.1:8080 → the Unix socket /run/a.sock", "Every user of this computer"},
		{"a listener not on the command line", ArgForward{Kind: ForwardLocal, Port: 20000}, false, []string{"127.0.0.1:20000"},
			ReachLocalUsers, "not on the command line", "can connect to 127.0.0.1:20000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			exposes, who, reach := describe(tc.f, tc.gateway, "web1", tc.listeners)
			if reach != tc.reach || !strings.Contains(exposes, tc.exposes) || !strings.Contains(who, tc.who) {
				t.Errorf("describe = %q, %q, %v; want …%q…, …%q…, %v", exposes, who, reach, tc.exposes, tc.who, tc.reach)
			}
		})
	}
}
