package profiles

import (
	"errors"
	"strings"
	"testing"
)

var sshForwardCases = []struct {
	name  string
	kind  ForwardKind
	value string
	want  ForwardRule
	err   string // substring of the error; "" = valid
}{
	{"local port", ForwardLocal, "8080 localhost:80", ForwardRule{Kind: ForwardLocal, LocalPort: 8080, RemoteHost: "localhost", RemotePort: 80}, ""},
	{"local bind", ForwardLocal, "127.0.0.1:5432 db.internal:5432", ForwardRule{Kind: ForwardLocal, LocalHost: "127.0.0.1", LocalPort: 5432, RemoteHost: "db.internal", RemotePort: 5432}, ""},
	{"local all interfaces", ForwardLocal, "*:8080 web:80", ForwardRule{Kind: ForwardLocal, LocalHost: "*", LocalPort: 8080, RemoteHost: "web", RemotePort: 80}, ""},
	{"local empty bind", ForwardLocal, ":8080 web:80", ForwardRule{Kind: ForwardLocal, LocalHost: "*", LocalPort: 8080, RemoteHost: "web", RemotePort: 80}, ""},
	{"local ipv6", ForwardLocal, "[::1]:8080 [2001:db8::5]:443", ForwardRule{Kind: ForwardLocal, LocalHost: "::1", LocalPort: 8080, RemoteHost: "2001:db8::5", RemotePort: 443}, ""},
	{"remote", ForwardRemote, "9000 localhost:3000", ForwardRule{Kind: ForwardRemote, RemotePort: 9000, LocalHost: "localhost", LocalPort: 3000}, ""},
	{"remote bind", ForwardRemote, "0.0.0.0:9000 127.0.0.1:3000", ForwardRule{Kind: ForwardRemote, RemoteHost: "0.0.0.0", RemotePort: 9000, LocalHost: "127.0.0.1", LocalPort: 3000}, ""},
	{"remote port 0", ForwardRemote, "0 localhost:3000", ForwardRule{Kind: ForwardRemote, LocalHost: "localhost", LocalPort: 3000}, ""},
	{"dynamic", ForwardDynamic, "1080", ForwardRule{Kind: ForwardDynamic, LocalPort: 1080}, ""},
	{"dynamic bind", ForwardDynamic, "localhost:1080", ForwardRule{Kind: ForwardDynamic, LocalHost: "localhost", LocalPort: 1080}, ""},
	{"extra spaces", ForwardLocal, "  8080\t localhost:80 ", ForwardRule{Kind: ForwardLocal, LocalPort: 8080, RemoteHost: "localhost", RemotePort: 80}, ""},
	{"local socket", ForwardLocal, "/tmp/a.sock /run/b.sock", ForwardRule{}, "Unix socket"},
	{"remote socks", ForwardRemote, "1080", ForwardRule{}, "SOCKS proxy on the server"},
	{"local missing target", ForwardLocal, "8080", ForwardRule{}, "want [bind_address:]port host:hostport"},
	{"local port 0", ForwardLocal, "8080 localhost:0", ForwardRule{}, "between 1 and 65535"},
	{"bad port", ForwardLocal, "http localhost:80", ForwardRule{}, "between 1 and 65535"},
	{"big port", ForwardDynamic, "70000", ForwardRule{}, "between 1 and 65535"},
	{"target without port", ForwardLocal, "8080 localhost", ForwardRule{}, "host:hostport"},
	{"bad bracket", ForwardLocal, "[::1:8080 a:1", ForwardRule{}, "want"},
	{"bad host", ForwardLocal, "8080 a|b:80", ForwardRule{}, "remoteHost"},
	{"too many fields", ForwardLocal, "a:b:8080 h:1", ForwardRule{}, "want"},
}

func TestParseSSHForward(t *testing.T) {
	for _, tc := range sshForwardCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSSHForward(tc.kind, tc.value)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseSSHForward(%q) = %+v, %v; want an error with %q", tc.value, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseSSHForward(%q) = %+v, %v; want %+v", tc.value, got, err, tc.want)
			}
		})
	}
	if _, err := ParseSSHForward(ForwardLocal, "/a.sock b:1"); !errors.Is(err, ErrSocketForward) {
		t.Fatalf("a socket path must wrap ErrSocketForward: %v", err)
	}
}

// FuzzParseSSHForward: never panics; an accepted line is a valid rule that
// its ssh form parses back to.
func FuzzParseSSHForward(f *testing.F) {
	for _, tc := range sshForwardCases {
		f.Add(int(tc.kind), tc.value)
	}
	f.Fuzz(func(t *testing.T, kind int, value string) {
		r, err := ParseSSHForward(ForwardKind(kind), value)
		if err != nil {
			return
		}
		if verr := r.Validate(); verr != nil {
			t.Fatalf("accepted an invalid rule %+v: %v", r, verr)
		}
		s := r.SSHForwardString() // "-L listen:target"
		_, spec, _ := strings.Cut(s, " ")
		var line string
		switch r.Kind {
		case ForwardDynamic:
			line = spec
		default:
			// listen is everything before the last host:port
			fields, err := splitForwardFields(spec)
			if err != nil || len(fields) < 3 {
				t.Fatalf("SSHForwardString %q does not split: %v", s, err)
			}
			n := len(fields)
			reform := func(parts []string) string {
				out := make([]string, len(parts))
				for i, p := range parts {
					if strings.Contains(p, ":") {
						p = "[" + p + "]"
					}
					out[i] = p
				}
				return strings.Join(out, ":")
			}
			line = reform(fields[:n-2]) + " " + reform(fields[n-2:])
		}
		back, err := ParseSSHForward(r.Kind, line)
		if err != nil {
			t.Fatalf("%q → %+v → %q: %v", value, r, line, err)
		}
		norm := func(x ForwardRule) ForwardRule {
			if x.Kind == ForwardLocal && x.RemoteHost == "" {
				x.RemoteHost = "localhost"
			}
			if x.Kind == ForwardRemote && x.LocalHost == "" {
				x.LocalHost = "localhost"
			}
			return x
		}
		if norm(back) != norm(r) {
			t.Fatalf("%q → %+v → %q → %+v", value, r, line, back)
		}
	})
}

func TestResolvedForwardRules(t *testing.T) {
	res := Resolved{
		LocalForwards:   []string{"8080 localhost:80", "/tmp/x.sock localhost:80"},
		RemoteForwards:  []string{"9000 localhost:3000", "1080"},
		DynamicForwards: []string{"1081"},
	}
	rules, skipped := res.ForwardRules()
	want := []ForwardRule{
		{Kind: ForwardLocal, LocalPort: 8080, RemoteHost: "localhost", RemotePort: 80},
		{Kind: ForwardRemote, RemotePort: 9000, LocalHost: "localhost", LocalPort: 3000},
		{Kind: ForwardDynamic, LocalPort: 1081},
	}
	if len(rules) != len(want) {
		t.Fatalf("rules %+v", rules)
	}
	for i := range want {
		if rules[i] != want[i] {
			t.Fatalf("rule %d = %+v, want %+v", i, rules[i], want[i])
		}
	}
	if len(skipped) != 2 || !strings.HasPrefix(skipped[0], "LocalForward /tmp/x.sock") || !strings.HasPrefix(skipped[1], "RemoteForward 1080") {
		t.Fatalf("skipped %q", skipped)
	}
	p := Candidate{Alias: "fw", Resolved: res}.ToProfile(false)
	if len(p.Forwards) != 3 {
		t.Fatalf("ToProfile forwards %+v", p.Forwards)
	}
	for _, r := range p.Forwards {
		if r.ID == "" {
			t.Fatalf("an imported rule has no id: %+v", r)
		}
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("imported profile invalid: %v", err)
	}
}

func TestValidateRule(t *testing.T) {
	for _, tc := range []struct {
		rule  ForwardRule
		field string // "" = valid
	}{
		{ForwardRule{Kind: ForwardLocal, LocalPort: 8080, RemotePort: 80}, ""},
		{ForwardRule{Kind: ForwardLocal, LocalHost: "*", LocalPort: 8080, RemotePort: 80}, ""},
		{ForwardRule{Kind: ForwardLocal, LocalPort: 8080}, "remotePort"},
		{ForwardRule{Kind: ForwardLocal, LocalPort: 70000, RemotePort: 80}, "localPort"},
		{ForwardRule{Kind: ForwardLocal, RemoteHost: "*", RemotePort: 80}, "remoteHost"},
		{ForwardRule{Kind: ForwardRemote, RemoteHost: "*", RemotePort: 9000, LocalPort: 3000}, ""},
		{ForwardRule{Kind: ForwardRemote, RemotePort: 9000}, "localPort"},
		{ForwardRule{Kind: ForwardDynamic, LocalPort: 1080, RemotePort: 1}, "remotePort"},
		{ForwardRule{ID: "bad id", Kind: ForwardDynamic}, "id"},
		{ForwardRule{}, "kind"},
	} {
		err := tc.rule.Validate()
		if tc.field == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.rule, err)
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%+v: err = %v, want a field error on %s", tc.rule, err, tc.field)
			continue
		}
		if _, ok := ve.Reason(tc.field); !ok {
			t.Errorf("%+v: fields %+v, want %s", tc.rule, ve.Fields, tc.field)
		}
	}
}
