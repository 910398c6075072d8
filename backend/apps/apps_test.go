package apps

import (
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/discovery"
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
		err := am.OpenExternal(tc.url)
		if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, apperr.ErrBadInput)) {
			t.Errorf("openExternal(%q) = %v", tc.url, err)
		}
	}
	if len(opened) != 2 {
		t.Errorf("opened %v", opened)
	}
}

// TestOpenExternalKeepsTokenOffArgv (issue 14, finding 2): "Open in
// browser" on a Jupyter tab must not hand the token to xdg-open, whose argv
// every local user can read; the browser gets a private page's path.
func TestOpenExternalKeepsTokenOffArgv(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	am := New(nil, nil, nil, nil, nil)
	t.Cleanup(am.Close)
	var argv []string
	am.openURL = func(u string) error { argv = append(argv, u); return nil }
	const token = "9f1c2d3e4b5a69788796a5b4c3d2e1f0"
	if err := am.OpenExternal("http://127.0.0.2:8888/lab?token=" + token); err != nil {
		t.Fatal(err)
	}
	if len(argv) != 1 {
		t.Fatalf("browser started %d times, want 1", len(argv))
	}
	if strings.Contains(argv[0], token) || !strings.HasPrefix(argv[0], "file://") {
		t.Fatalf("the browser's command line would be %q: it must name a private page, not the token", argv[0])
	}
	page, err := url.Parse(argv[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(page.Path)
	if err != nil || !strings.Contains(string(b), token) {
		t.Fatalf("the page does not lead to the app: %v\n%s", err, b)
	}
	am.Close()
	if _, err := os.Stat(page.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the page outlived Close: %v", err)
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
