package desktop

import (
	"errors"
	"strings"
	"testing"
)

var launchCases = []struct {
	name string
	args []string
	want Launch
	err  string // a part of the error; "" for none
}{
	{name: "none", args: nil, want: Launch{}},
	{name: "hidden", args: []string{"--hidden"}, want: Launch{Hidden: true}},
	{name: "jupyter url", args: []string{"http://localhost:8888/lab?token=abc"}, want: Launch{Target: Target{Kind: TargetAppURL, URL: "http://localhost:8888/lab?token=abc"}}},
	{name: "url on a server", args: []string{"--server", "gpu1", "http://127.0.0.1:8888/"}, want: Launch{Server: "gpu1", Target: Target{Kind: TargetAppURL, URL: "http://127.0.0.1:8888/"}}},
	{name: "server inline", args: []string{"https://localhost/x", "--server=gpu 1"}, want: Launch{Server: "gpu 1", Target: Target{Kind: TargetAppURL, URL: "https://localhost/x"}}},
	{name: "ssh full", args: []string{"ssh://alice@example.org:2222"}, want: Launch{Target: Target{Kind: TargetSSH, User: "alice", Host: "example.org", Port: 2222}}},
	{name: "ssh host only", args: []string{"ssh://gpu-1.lab/"}, want: Launch{Target: Target{Kind: TargetSSH, Host: "gpu-1.lab"}}},
	{name: "ssh ipv6", args: []string{"ssh://bob@[::1]:22"}, want: Launch{Target: Target{Kind: TargetSSH, User: "bob", Host: "::1", Port: 22}}},
	{name: "ssh password refused", args: []string{"ssh://bob:secret@host"}, err: "password"},
	{name: "ssh path refused", args: []string{"ssh://host/etc"}, err: "without a path"},
	{name: "ssh bad port", args: []string{"ssh://host:0"}, err: "port"},
	{name: "ssh option-like host", args: []string{"ssh://-oProxyCommand=x"}, err: "host"},
	{name: "http without host", args: []string{"http:///lab"}, err: "no host"},
	{name: "http user info", args: []string{"http://u:p@localhost:1/"}, err: "user name"},
	{name: "http bad port", args: []string{"http://localhost:99999/"}, err: "port"},
	{name: "ftp", args: []string{"ftp://host/?token=secret"}, err: "not ftp://"},
	{name: "a word", args: []string{"hello"}, err: "not a URL"},
	{name: "a file path", args: []string{"/tmp/x.html"}, err: "not a URL"},
	{name: "two urls", args: []string{"http://localhost:1/", "http://localhost:2/"}, err: "one URL"},
	{name: "unknown flag", args: []string{"--token=secret"}, err: `"--token"`},
	{name: "server without url", args: []string{"--server", "gpu1"}, err: "no such URL"},
	{name: "server without name", args: []string{"--server"}, err: "needs a server"},
	{name: "server then url as name", args: []string{"--server", "http://localhost:1/"}, err: "needs a server"},
}

func TestParseLaunch(t *testing.T) {
	for _, c := range launchCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseLaunch(c.args)
			if c.err != "" {
				if err == nil || !errors.Is(err, ErrBadArgument) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("ParseLaunch(%q) = %+v, %v; want ErrBadArgument saying %q", c.args, got, err, c.err)
				}
				for _, a := range c.args {
					if strings.Contains(a, "secret") && strings.Contains(err.Error(), "secret") {
						t.Fatalf("the error repeats a secret: %v", err)
					}
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("ParseLaunch(%q) = %+v, %v; want %+v", c.args, got, err, c.want)
			}
		})
	}
}

func TestLooksLikeLaunch(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{{nil, true}, {[]string{"--hidden"}, true}, {[]string{"ssh://h"}, true}, {[]string{"--server", "x"}, true},
		{[]string{"serve"}, false}, {[]string{"--bogus"}, false}, {[]string{"forward"}, false}} {
		if got := LooksLikeLaunch(c.args); got != c.want {
			t.Errorf("LooksLikeLaunch(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}

func TestRequestFor(t *testing.T) {
	refs := []ServerRef{{ID: "s1", Name: "GPU1"}, {ID: "s2", Name: "lab"}}
	if r := RequestFor(Launch{Server: "gpu1", Target: Target{Kind: TargetAppURL, URL: "http://localhost:1/"}}, refs); r.Kind != RequestOpenURL || r.ServerID != "s1" {
		t.Errorf("by name: %+v", r)
	}
	if r := RequestFor(Launch{Server: "s2", Target: Target{Kind: TargetAppURL, URL: "http://localhost:1/"}}, refs); r.ServerID != "s2" {
		t.Errorf("by id: %+v", r)
	}
	if r := RequestFor(Launch{Server: "nope", Target: Target{Kind: TargetAppURL, URL: "http://localhost:1/?token=t"}}, refs); r.Kind != RequestMessage || r.URL != "" || strings.Contains(r.Message, "token") {
		t.Errorf("unknown server: %+v; want a message without the URL", r)
	}
	if r := RequestFor(Launch{Target: Target{Kind: TargetAppURL, URL: "http://localhost:1/"}}, refs); r.Kind != RequestOpenURL || r.ServerID != "" {
		t.Errorf("no server: %+v; want the UI to ask", r)
	}
	if r := RequestFor(Launch{Target: Target{Kind: TargetSSH, User: "u", Host: "h", Port: 2}}, refs); r.Kind != RequestAddServer || r.Host != "h" || r.User != "u" || r.Port != 2 {
		t.Errorf("ssh: %+v", r)
	}
	if r := RequestFor(Launch{Hidden: true}, refs); r.Kind != RequestShow {
		t.Errorf("plain: %+v", r)
	}
}

func FuzzParseLaunch(f *testing.F) {
	for _, c := range launchCases {
		f.Add(strings.Join(c.args, "\n"))
	}
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\n")
		l, err := ParseLaunch(args)
		if err != nil {
			if !errors.Is(err, ErrBadArgument) {
				t.Fatalf("error not ErrBadArgument: %v", err)
			}
			return
		}
		switch l.Target.Kind {
		case TargetSSH:
			if l.Target.Host == "" || strings.HasPrefix(l.Target.Host, "-") || l.Target.Port < 0 || l.Target.Port > 65535 {
				t.Fatalf("bad ssh target accepted: %+v", l.Target)
			}
		case TargetAppURL:
			if !strings.Contains(l.Target.URL, "://") {
				t.Fatalf("app URL without a scheme: %q", l.Target.URL)
			}
		}
		if l.Server != "" && l.Target.Kind != TargetAppURL {
			t.Fatalf("--server without a URL accepted: %+v", l)
		}
	})
}
