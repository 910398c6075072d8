package apps

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/discovery"
	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/portmap"
)

func TestOpenExternal(t *testing.T) {
	am := New(nil, nil, nil, nil, nil)
	var opened []string
	am.openURL = func(u string) error { opened = append(opened, u); return nil }
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.2:8888/lab", true},
		{"https://example.com/x?y#z", true},
		{"file:///etc/passwd", false},
		{"javascript:alert(1)", false},
		{"", false},
		{"http://user:pw@example.com/", false},
		{"/relative", false},
	} {
		err := am.OpenExternal(context.Background(), tc.url)
		if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, apperr.ErrBadInput)) {
			t.Errorf("openExternal(%q) = %v", tc.url, err)
		}
	}
	if len(opened) != 2 {
		t.Errorf("opened %v", opened)
	}
}

// TestOpenExternalKeepsTokenOffArgvAndDisk (issue 14, finding 2): "Open in
// browser" on a Jupyter tab must not hand the token to xdg-open, whose argv
// every local user can read, nor write it to any file: the browser gets the
// app's web forward's one-time link, which leads it to the URL once.
func TestOpenExternalKeepsTokenOffArgvAndDisk(t *testing.T) {
	home, run, tmp := t.TempDir(), t.TempDir(), t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_RUNTIME_DIR", run)
	t.Setenv("TMPDIR", tmp)
	const token = "9f1c2d3e4b5a69788796a5b4c3d2e1f0"

	// The login's web forward for remote port 8888, as OpenApp makes it.
	l, err := agent.NewLocalLogin(agent.LoginSpec{
		ID: "s1", Name: "gpu1", Host: "127.0.0.1", Port: 1, User: "u", SSHConfigPath: "none", HomeDir: home, AgentSocket: "none",
		Session:  agent.SessionSettings{StatsInterval: -1},
		Forwards: []agent.ForwardSpec{{ID: "app-8888", Web: &forwarder.WebSpec{BindAddress: "127.0.0.1", TargetHost: "localhost", TargetPort: 8888}}},
	}, agent.Secrets{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	st, err := l.Stats(context.Background())
	if err != nil || len(st.Forwards) != 1 || st.Forwards[0].Addr == "" {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
	addr := st.Forwards[0].Addr
	ap := netip.MustParseAddrPort(addr)
	am := New(nil, nil, nil, nil, nil)
	am.state["s1"] = &serverApps{login: l, forwards: map[fwdKey]*appForward{{port: 8888}: {
		kind: agent.ForwardWeb, remotePort: 8888, targetHost: "localhost", bound: portmap.Endpoint{IP: ap.Addr(), Port: int(ap.Port())},
	}}}
	var argv []string
	am.openURL = func(u string) error { argv = append(argv, u); return nil }
	noFollow := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	local := "http://localhost:" + strconv.Itoa(int(ap.Port()))

	for _, tc := range []struct {
		name, url string
		via       string // the origin of the one-time link; "" when the URL goes as it is
		target    string // where the link leads
	}{
		{"token", "http://" + addr + "/lab?token=" + token, "http://" + addr, "/lab?token=" + token},
		{"token and fragment", "http://" + addr + "/lab/tree/a%20b.ipynb?x=1&token=" + token + "#cell", "http://" + addr, "/lab/tree/a%20b.ipynb?x=1&token=" + token + "#cell"},
		{"token in the fragment", "http://" + addr + "/#token=" + token, "http://" + addr, "/#token=" + token},
		{"localhost", local + "/tree?token=" + token, local, "/tree?token=" + token},
		{"no query", "http://" + addr + "/lab", "", ""},
		{"not ours", "https://example.com/search?q=porthole", "", ""},
		{"not ours, loopback", "http://127.0.0.9:8888/?q=x", "", ""},
		{"https on our endpoint", "https://" + addr + "/?q=x", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv = nil
			if err := am.OpenExternal(context.Background(), tc.url); err != nil {
				t.Fatal(err)
			}
			if len(argv) != 1 {
				t.Fatalf("browser started %d times, want 1", len(argv))
			}
			if strings.Contains(argv[0], token) {
				t.Fatalf("the browser's command line would be %q: it must not hold the token", argv[0])
			}
			if tc.via == "" {
				if argv[0] != tc.url {
					t.Fatalf("the browser got %q, want %q as it is", argv[0], tc.url)
				}
				return
			}
			if !strings.HasPrefix(argv[0], tc.via+forwarder.OpenPathPrefix) {
				t.Fatalf("the browser got %q, want a one-time link under %s%s", argv[0], tc.via, forwarder.OpenPathPrefix)
			}
			for i, want := range []int{http.StatusSeeOther, http.StatusGone} {
				resp, err := noFollow.Get(argv[0])
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want || (want == http.StatusSeeOther && resp.Header.Get("Location") != tc.target) {
					t.Fatalf("use %d of the link: %s to %q; want %d (to %q the first time)", i+1, resp.Status, resp.Header.Get("Location"), want, tc.target)
				}
			}
		})
	}

	// No file anywhere holds the token.
	for _, root := range []string{home, run, tmp} { // os.TempDir() is tmp
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil // other tests' files come and go
			}
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(token)) {
				t.Errorf("%s holds the token", p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// When the link cannot be made, the browser is not started at all.
	_ = l.Close()
	argv = nil
	if err := am.OpenExternal(context.Background(), "http://"+addr+"/lab?token="+token); err == nil || strings.Contains(err.Error(), token) {
		t.Fatalf("OpenExternal with the login closed = %v; want an error without the token", err)
	}
	if len(argv) != 0 {
		t.Fatalf("the browser was started on %q without a link", argv)
	}
}

func TestConnectHint(t *testing.T) {
	for _, tc := range []struct {
		kind       discovery.Kind
		remote     int
		host, want string
	}{
		{discovery.KindPostgres, 5432, "127.0.0.2", "psql -h 127.0.0.2 -p 5432"},
		{discovery.KindUnknown, 5432, "127.0.0.2", "psql -h 127.0.0.2 -p 5432"},
		{discovery.KindRedis, 6380, "127.0.0.3", "redis-cli -h 127.0.0.3 -p 6380"},
		{discovery.KindMySQL, 3306, "127.0.0.2", "mysql -h 127.0.0.2 -P 3306"},
		{discovery.KindMongoDB, 27017, "127.0.0.2", "mongosh --host 127.0.0.2 --port 27017"},
		{discovery.KindNotHTTP, 9000, "127.0.0.2", "connect to 127.0.0.2:9000"},
		{discovery.KindHTTP, 8080, "127.0.0.2", "open http://127.0.0.2:8080/"},
	} {
		if got := connectHint(tc.kind, tc.remote, tc.host, tc.remote); got != tc.want {
			t.Errorf("connectHint(%v, %d) = %q, want %q", tc.kind, tc.remote, got, tc.want)
		}
	}
}

func TestSameHostName(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"gpu1", "gpu1.example.com", true},
		{"GPU1.example.com.", "gpu1.example.com", true},
		{"gpu1.other.org", "gpu1.example.com", false},
		{"gpu2", "gpu1", false},
		{"10.0.0.7", "10.0.0.7", true},
		{"10.0.0.7", "10.0.0.8", false},
		{"10", "10.0.0.7", false},
		{"", "", false},
	} {
		if got := sameHostName(tc.a, tc.b); got != tc.want {
			t.Errorf("sameHostName(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

// appURLCases are splitAppURL's table (and the fuzz test's seeds).
var appURLCases = []struct {
	raw  string
	host string
	port int
	path string
	ok   bool
}{
	{"http://localhost:8888/lab?token=abc", "localhost", 8888, "/lab?token=abc", true},
	{"  http://127.0.0.1:6006  ", "127.0.0.1", 6006, "/", true},
	{"http://0.0.0.0:8501/?a=b#c", "0.0.0.0", 8501, "/?a=b#c", true},
	{"http://[::1]:5000/x%20y", "::1", 5000, "/x%20y", true},
	{"localhost:8080/a/b", "localhost", 8080, "/a/b", true},
	{"http://gpu1/", "gpu1", 80, "/", true},
	{"HTTP://Host:1/", "Host", 1, "/", true},
	{"https://localhost:8888/", "", 0, "", false},
	{"ftp://localhost/", "", 0, "", false},
	{"http://localhost:0/", "", 0, "", false},
	{"http://localhost:99999/", "", 0, "", false},
	{"http://a:b@localhost:1/", "", 0, "", false},
	{"http:///path", "", 0, "", false},
	{"", "", 0, "", false},
	{"mailto:a@b", "", 0, "", false},
	// Other computers, opened through a server (OpenThrough).
	{"http://grafana.internal:3000/d/abc?orgId=1", "grafana.internal", 3000, "/d/abc?orgId=1", true},
	{"grafana.internal:3000", "grafana.internal", 3000, "/", true},
	{"http://10.0.0.7:8080/", "10.0.0.7", 8080, "/", true},
	{"http://[fd00::7]:9090/graph", "fd00::7", 9090, "/graph", true},
	{"http://Grafana.Internal.:3000/", "Grafana.Internal.", 3000, "/", true},
	{"http://user@grafana.internal:3000/", "", 0, "", false},
	{"https://grafana.internal/", "", 0, "", false},
	{"http://grafana.internal:65536/", "", 0, "", false},
}

func TestThroughHost(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"grafana.internal", "grafana.internal"},
		{"Grafana.Internal.", "grafana.internal"},
		{"db_1.lan", "db_1.lan"},
		{"10.0.0.7", "10.0.0.7"},
		{"::ffff:10.0.0.7", "10.0.0.7"},
		{"fd00::7", "fd00::7"},
		{"127.0.0.1", "localhost"},
		{"LOCALHOST", "localhost"},
		{"", ""},
		{".", ""},
		{"a..b", ""},
		{"-a.b", ""},
		{"a-.b", ""},
		{"a b", ""},
		{"a%20b", ""},
		{"fe80::1%eth0", ""},
		{"a/b", ""},
		{strings.Repeat("a", 64) + ".b", ""},
		{strings.Repeat("a.", 127) + "ab", ""},
	} {
		got, err := throughHost(tc.in)
		if tc.want == "" {
			if err == nil || !errors.Is(err, apperr.ErrBadInput) {
				t.Errorf("throughHost(%q) = %q, %v; want a 400", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("throughHost(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestSplitAppURL(t *testing.T) {
	for _, tc := range appURLCases {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := splitAppURL(tc.raw)
			if !tc.ok {
				if err == nil || !errors.Is(err, apperr.ErrBadInput) {
					t.Fatalf("splitAppURL(%q) = %+v, %v; want a 400", tc.raw, got, err)
				}
				return
			}
			if err != nil || got.host != tc.host || got.port != tc.port || got.path != tc.path {
				t.Fatalf("splitAppURL(%q) = %+v, %v; want %s %d %s", tc.raw, got, err, tc.host, tc.port, tc.path)
			}
		})
	}
}

func FuzzSplitAppURL(f *testing.F) {
	for _, tc := range appURLCases {
		f.Add(tc.raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := splitAppURL(raw)
		if err != nil {
			if !errors.Is(err, apperr.ErrBadInput) {
				t.Fatalf("splitAppURL(%q): %v is not a 400", raw, err)
			}
			return
		}
		if got.port < 1 || got.port > 65535 || got.host == "" {
			t.Fatalf("splitAppURL(%q) = %+v", raw, got)
		}
		if _, err := cleanAppPath(got.path); err != nil || !strings.HasPrefix(got.path, "/") {
			t.Fatalf("splitAppURL(%q) gave path %q: %v", raw, got.path, err)
		}
		// What OpenThrough would dial: a host portmap and the forwarder take.
		h, err := throughHost(got.host)
		if err != nil {
			if !errors.Is(err, apperr.ErrBadInput) {
				t.Fatalf("throughHost(%q): %v is not a 400", got.host, err)
			}
			return
		}
		if c, err := portmap.CanonicalHost(h); err != nil || c != h || strings.ContainsAny(h, "@/?#%[] ") {
			t.Fatalf("throughHost(%q) = %q, not canonical (%q, %v)", got.host, h, c, err)
		}
	})
}

func TestWithQueryParam(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/lab", "/lab?token=t%2B1"},
		{"/lab?x=1", "/lab?x=1&token=t%2B1"},
		{"/lab?", "/lab?token=t%2B1"},
		{"/lab#tree/a", "/lab?token=t%2B1#tree/a"},
	} {
		if got := withQueryParam(tc.path, "token", "t+1"); got != tc.want {
			t.Errorf("withQueryParam(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}
