package portmap

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// alwaysBindable pretends every loopback address can be bound (Linux can
// anyway; the probe only keeps the test independent of the OS).
var alwaysBindable = WithLoopbackProbe(func(netip.Addr) bool { return true })

// TestPerAppAddresses (issue 15): with per-app addresses on, every app of
// a server gets an address of its own in the server's block 127.N.0.0/16,
// keeps its remote port, and keeps its address after a restart; a
// forgotten app's address is never handed out again.
func TestPerAppAddresses(t *testing.T) {
	needPerLoginAddrs(t)
	path := tempPath(t)
	m := openMap(t, path, alwaysBindable)
	m.SetPerApp(true)
	if !m.PerApp() {
		t.Fatal("PerApp() = false after SetPerApp(true)")
	}
	port := freePort(t, ip("127.1.0.1"), ip("127.1.1.1"), ip("127.2.0.1"))
	a1 := mustEndpoint(t, m, "a", "localhost", port)
	a2 := mustEndpoint(t, m, "a", "localhost", port+1)
	b1 := mustEndpoint(t, m, "b", "localhost", port)
	want := map[Endpoint]Endpoint{
		a1: {ip("127.1.0.1"), port},
		a2: {ip("127.1.1.1"), port + 1},
		b1: {ip("127.2.0.1"), port},
	}
	for got, w := range want {
		if got != w {
			t.Errorf("endpoint %v, want %v", got, w)
		}
	}
	// Raw forwards and sockets are endpoints too: each its own address.
	if db := mustEndpoint(t, m, "a", "db.internal", 5432); db.IP != ip("127.1.2.1") {
		t.Errorf("a's third endpoint on %v, want 127.1.2.1", db.IP)
	}

	m2 := openMap(t, path, alwaysBindable)
	m2.SetPerApp(true)
	for _, c := range []struct {
		port int
		want Endpoint
	}{{port, a1}, {port + 1, a2}} {
		if got := mustEndpoint(t, m2, "a", "localhost", c.port); got != c.want {
			t.Errorf("after a restart %d is on %v, want %v", c.port, got, c.want)
		}
	}
	if err := m2.Forget(context.Background(), "a", "localhost", port+1); err != nil {
		t.Fatal(err)
	}
	if again := mustEndpoint(t, m2, "a", "localhost", port+1); again.IP == a2.IP || again.IP != ip("127.1.3.1") {
		t.Errorf("forgotten and asked again: %v; want a fresh address (127.1.3.1), never %v again", again, a2.IP)
	}
	// A forgotten server's block is never given to a new server.
	if err := m2.ForgetLogin(context.Background(), "b"); err != nil {
		t.Fatal(err)
	}
	if c := mustEndpoint(t, m2, "c", "localhost", port); c.IP != ip("127.3.0.1") {
		t.Errorf("a new server after b was forgotten got %v, want 127.3.0.1 (never b's 127.2.x.x)", c.IP)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"last_app_net": 3`, `"net": 1`, `"last_addr": "127.1.3.1"`} {
		if !strings.Contains(string(data), s) {
			t.Errorf("the file lacks %s:\n%s", s, data)
		}
	}
}

// TestPerAppMigration (issue 15): an endpoints file written before per-app
// addresses keeps every endpoint where it was (nobody loses a login by
// upgrading); only new apps get addresses of their own.
func TestPerAppMigration(t *testing.T) {
	needPerLoginAddrs(t)
	path := tempPath(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	old := `{
  "version": 1,
  "last_login_addr": "127.0.0.3",
  "logins": [
    {"id": "a", "addr": "127.0.0.2"},
    {"id": "b", "addr": "127.0.0.3"}
  ],
  "endpoints": [
    {"login": "a", "host": "localhost", "port": 8888, "local": "127.0.0.2:8888"},
    {"login": "a", "host": "localhost", "port": 8889, "local": "127.0.0.2:8889"},
    {"login": "b", "host": "localhost", "port": 8888, "local": "127.0.0.3:8888"}
  ]
}
`
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	m := openMap(t, path, alwaysBindable)
	m.SetPerApp(true)
	for _, c := range []struct {
		login string
		port  int
		want  string
	}{{"a", 8888, "127.0.0.2:8888"}, {"a", 8889, "127.0.0.2:8889"}, {"b", 8888, "127.0.0.3:8888"}} {
		if got := mustEndpoint(t, m, c.login, "localhost", c.port); got.String() != c.want {
			t.Errorf("%s's %d moved to %v, want %s", c.login, c.port, got, c.want)
		}
	}
	port := freePort(t, ip("127.1.0.1"), ip("127.2.0.1"), ip("127.0.0.4"))
	if n := mustEndpoint(t, m, "a", "localhost", port); n != (Endpoint{ip("127.1.0.1"), port}) {
		t.Errorf("a's new app on %v, want 127.1.0.1:%d", n, port)
	}
	if n := mustEndpoint(t, m, "new", "localhost", port); n != (Endpoint{ip("127.2.0.1"), port}) {
		t.Errorf("a new server's app on %v, want 127.2.0.1:%d", n, port)
	}
	// Setting off: new endpoints use the login's own address, as before;
	// a new login's address stays out of the blocks.
	m.SetPerApp(false)
	if m.PerApp() {
		t.Fatal("PerApp() = true after SetPerApp(false)")
	}
	if n := mustEndpoint(t, m, "b", "localhost", port); n.IP != ip("127.0.0.3") {
		t.Errorf("per-app off: b's new app on %v, want b's own 127.0.0.3", n)
	}
	if n := mustEndpoint(t, m, "d", "localhost", port); n.IP != ip("127.0.0.4") {
		t.Errorf("per-app off: a new server's app on %v, want 127.0.0.4", n)
	}
	// Shared loopback wins over per-app (macOS, or the user's choice).
	m.SetPerApp(true)
	m.SetSharedLoopback(true)
	if m.PerApp() {
		t.Fatal("PerApp() = true with shared loopback on")
	}
	if n := mustEndpoint(t, m, "a", "localhost", port+1); n.IP != loopback1 {
		t.Errorf("shared loopback: %v, want 127.0.0.1", n)
	}
}

// TestPerAppFallsBack: where a new app's address cannot be bound, the app
// uses its server's address (and says so in the log) rather than failing;
// in SharedLoopback mode (macOS) per-app addresses are never tried.
func TestPerAppFallsBack(t *testing.T) {
	m := openMap(t, tempPath(t), WithLoopbackProbe(func(a netip.Addr) bool { return a.As4()[1] == 0 }))
	m.SetPerApp(true)
	if ep := mustEndpoint(t, m, "a", "localhost", 40001); ep.IP != addr2 {
		t.Errorf("per-app address not bindable: %v, want the login's 127.0.0.2", ep)
	}
	mac := openMap(t, tempPath(t), WithLoopbackProbe(func(netip.Addr) bool { return false }))
	mac.SetPerApp(true)
	if mac.Mode() != SharedLoopback || mac.PerApp() {
		t.Fatalf("Mode %v PerApp %v; want SharedLoopback, false", mac.Mode(), mac.PerApp())
	}
	if ep := mustEndpoint(t, mac, "a", "localhost", 40001); ep.IP != loopback1 {
		t.Errorf("SharedLoopback: %v, want 127.0.0.1", ep)
	}
}

// TestAppBlocksSkipServeAndExhaust: block 80 (serve's 127.80.72.1) is
// never an app block, and past block 255 a new server's apps use the
// server's own address.
func TestAppBlocksSkipServeAndExhaust(t *testing.T) {
	st := newState()
	st.lastNet = 79
	if n, ok := nextNet(st); !ok || n != 81 {
		t.Fatalf("after 79: %d %v, want 81", n, ok)
	}
	st.lastNet = 255
	if _, ok := nextNet(st); ok {
		t.Fatal("a block after 255")
	}
	for i := range appsPerNet {
		a := appAddr(7, i)
		if b := a.As4(); b[3] == 0 || b[3] == 255 || netOf(a) != 7 || appIndex(a) != i {
			t.Fatalf("appAddr(7, %d) = %v (index %d)", i, a, appIndex(a))
		}
	}
	// A login address that reaches a block jumps over every block.
	st = newState()
	st.nets["x"] = 1
	st.lastNet = 2
	st.lastAddr = ip("127.0.255.254")
	m := openMap(t, tempPath(t), alwaysBindable)
	if a := m.assignLoginAddr(st, "y"); a != ip("127.3.0.1") {
		t.Fatalf("the login address after 127.0.255.254 with blocks 1–2 = %v, want 127.3.0.1", a)
	}
}
