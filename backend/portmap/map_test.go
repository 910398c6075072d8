package portmap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/porthole-app/porthole/backend/atomicfile"
)

var (
	addr2 = netip.MustParseAddr("127.0.0.2")
	addr3 = netip.MustParseAddr("127.0.0.3")
	addr4 = netip.MustParseAddr("127.0.0.4")
)

// tWriter sends log lines to t.Log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// withListen replaces how Bind listens (tests only).
func withListen(f func(ctx context.Context, addr string) (net.Listener, error)) Option {
	return func(o *options) { o.listen = f }
}

func tempPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "porthole", "endpoints.json")
}

func openMap(t *testing.T, path string, opts ...Option) *Map {
	t.Helper()
	m, err := Open(path, testLogger(t), opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return m
}

func needPerLoginAddrs(t *testing.T) {
	t.Helper()
	if !probeLoopback(addr2) || !probeLoopback(addr3) {
		t.Skip("this computer cannot bind 127.0.0.2/127.0.0.3 (macOS without lo0 aliases)")
	}
}

// freePort returns a port that is free on every given address right now.
func freePort(t *testing.T, addrs ...netip.Addr) int {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		ok := port >= minPreferredPort
		for _, a := range addrs {
			ok = ok && portFree(a, port)
		}
		if ok {
			return port
		}
	}
	t.Fatal("no free port found")
	return 0
}

func hold(t *testing.T, ep Endpoint) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", ep.String())
	if err != nil {
		t.Fatalf("holding %s: %v", ep, err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

func mustEndpoint(t *testing.T, m *Map, login, host string, port int) Endpoint {
	t.Helper()
	ep, err := m.Endpoint(context.Background(), login, host, port)
	if err != nil {
		t.Fatalf("Endpoint(%q, %q, %d): %v", login, host, port, err)
	}
	if !ep.IsValid() {
		t.Fatalf("Endpoint(%q, %q, %d) = invalid %v", login, host, port, ep)
	}
	return ep
}

// firstFree is what the deterministic fallback should pick for k on addr,
// skipping the given ports.
func firstFree(t *testing.T, k key, addr netip.Addr, skip ...int) int {
	t.Helper()
	for p := range fallbackPorts(k) {
		if !slices.Contains(skip, p) && portFree(addr, p) {
			return p
		}
	}
	t.Fatal("no free fallback port")
	return 0
}

func TestEndpointPersists(t *testing.T) {
	ctx := context.Background()
	path := tempPath(t)
	m := openMap(t, path)
	addr, err := m.LoginAddr(ctx, "login-a")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t, addr)
	ep := mustEndpoint(t, m, "login-a", "localhost", port)
	if ep.IP != addr {
		t.Fatalf("endpoint %v is not on the login's address %v", ep, addr)
	}
	// Other spellings of the server's localhost are the same app.
	for _, host := range []string{"127.0.0.1", "[::1]", "LOCALHOST", "0.0.0.0"} {
		if got := mustEndpoint(t, m, "login-a", host, port); got != ep {
			t.Errorf("Endpoint(%q) = %v, want %v", host, got, ep)
		}
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v (%v), want 0700", di.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}

	// Reopened (a restart), and with the port now taken by someone else (an
	// idle login whose port got squatted): the assignment is kept as is.
	hold(t, ep)
	m2 := openMap(t, path)
	if got := mustEndpoint(t, m2, "login-a", "localhost", port); got != ep {
		t.Fatalf("after reopening: %v, want %v", got, ep)
	}
	if got, _ := m2.LoginAddr(ctx, "login-a"); got != addr {
		t.Fatalf("LoginAddr after reopening = %v, want %v", got, addr)
	}
	want := []Assignment{{LoginID: "login-a", RemoteHost: "localhost", RemotePort: port, Local: ep}}
	if got := m2.List("login-a"); !slices.Equal(got, want) {
		t.Fatalf("List = %+v, want %+v", got, want)
	}
	if got := m2.List("nobody"); len(got) != 0 {
		t.Fatalf("List(nobody) = %+v", got)
	}

	// Forget removes it for everyone sharing the file.
	if err := m2.Forget(ctx, "login-a", "127.0.0.1", port); err != nil {
		t.Fatal(err)
	}
	if got := m.List(""); len(got) != 0 {
		t.Fatalf("after Forget, the first map still lists %+v", got)
	}
}

func TestDefaultPath(t *testing.T) {
	p, err := DefaultPath()
	if err != nil {
		t.Skipf("no config dir here: %v", err)
	}
	if filepath.Base(p) != "endpoints.json" || filepath.Base(filepath.Dir(p)) != "porthole" {
		t.Fatalf("DefaultPath = %s", p)
	}
}

func TestLoginsGetOwnAddresses(t *testing.T) {
	needPerLoginAddrs(t)
	ctx := context.Background()
	path := tempPath(t)
	m := openMap(t, path)
	if m.Mode() != PerLoginAddrs {
		t.Fatalf("Mode = %v, want %v", m.Mode(), PerLoginAddrs)
	}
	port := freePort(t, addr2, addr3, addr4)
	a := mustEndpoint(t, m, "login-a", "localhost", port)
	b := mustEndpoint(t, m, "login-b", "localhost", port)
	if a.IP == b.IP {
		t.Fatalf("two logins share the address %v: their apps would share cookies", a.IP)
	}
	if a != (Endpoint{addr2, port}) || b != (Endpoint{addr3, port}) {
		t.Fatalf("got %v and %v; want %v:%d and %v:%d", a, b, addr2, port, addr3, port)
	}

	// A forgotten login's address is never handed out again.
	if err := m.ForgetLogin(ctx, "login-a"); err != nil {
		t.Fatal(err)
	}
	if got := m.List("login-a"); len(got) != 0 {
		t.Fatalf("ForgetLogin left %+v", got)
	}
	c := mustEndpoint(t, m, "login-c", "localhost", port)
	if c.IP != addr4 {
		t.Fatalf("new login got %v, want %v (not the forgotten 127.0.0.2)", c.IP, addr4)
	}
	m2 := openMap(t, path)
	for login, want := range map[string]netip.Addr{"login-b": addr3, "login-c": addr4} {
		if got, err := m2.LoginAddr(ctx, login); err != nil || got != want {
			t.Errorf("after reopening, LoginAddr(%s) = %v, %v; want %v", login, got, err, want)
		}
	}
	for _, as := range m2.List("") {
		if as.Local.IP == loopback1 {
			t.Errorf("%+v is on 127.0.0.1 although per-login addresses work", as)
		}
	}
}

func TestPortChoice(t *testing.T) {
	ctx := context.Background()
	m := openMap(t, tempPath(t))
	addr, err := m.LoginAddr(ctx, "login-a")
	if err != nil {
		t.Fatal(err)
	}
	taken := freePort(t, addr)
	hold(t, Endpoint{addr, taken})
	free := freePort(t, addr) // != taken: that one is held
	shared := freePort(t, addr)
	for shared == free {
		shared = freePort(t, addr)
	}
	// Another app of the same login already has port `shared`.
	first := mustEndpoint(t, m, "login-a", "localhost", shared)
	if first.Port != shared {
		t.Fatalf("first app on %d got %v", shared, first)
	}

	for _, tc := range []struct {
		name      string
		host      string
		port      int
		preferred bool
	}{
		{"remote port free locally", "localhost", free, true},
		{"remote port held by another process", "localhost", taken, false},
		{"remote port assigned to another app", "db.internal", shared, false},
		{"privileged remote port", "localhost", 80, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := mustEndpoint(t, m, "login-a", tc.host, tc.port)
			if ep.IP != addr {
				t.Fatalf("%v is not on the login's address %v", ep, addr)
			}
			if tc.preferred {
				if ep.Port != tc.port {
					t.Fatalf("got %v, want the remote port %d", ep, tc.port)
				}
				return
			}
			k, _ := makeKey("login-a", tc.host, tc.port)
			want := firstFree(t, k, addr, shared, free)
			if ep.Port != want || ep.Port < fallbackLo || ep.Port >= fallbackLo+fallbackSize {
				t.Fatalf("got %v, want the deterministic fallback port %d", ep, want)
			}
		})
	}
}

// The same inputs give the same endpoint on two machines (here: two fresh
// files) in the same state.
func TestFallbackIsDeterministic(t *testing.T) {
	ctx := context.Background()
	var got []Endpoint
	var heldPort int
	for i := range 2 {
		m := openMap(t, tempPath(t))
		addr, err := m.LoginAddr(ctx, "login-a")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			heldPort = freePort(t, addr)
			hold(t, Endpoint{addr, heldPort})
		}
		ep := mustEndpoint(t, m, "login-a", "localhost", heldPort)
		if ep.Port == heldPort {
			t.Fatalf("got the held port %d", heldPort)
		}
		got = append(got, ep)
	}
	if got[0] != got[1] {
		t.Fatalf("same inputs, different endpoints: %v and %v", got[0], got[1])
	}
	// Different apps start their search elsewhere (the hash spreads them).
	starts := map[int]bool{}
	for _, k := range []key{{"a", "localhost", 8888}, {"b", "localhost", 8888}, {"a", "localhost", 8889}, {"a", "h", 8888}} {
		for p := range fallbackPorts(k) {
			starts[p] = true
			break
		}
	}
	if len(starts) < 3 {
		t.Fatalf("hash start ports barely differ: %v", starts)
	}
}

func TestSharedLoopbackFallback(t *testing.T) {
	ctx := context.Background()
	path := tempPath(t)
	var probed []netip.Addr
	var mu sync.Mutex
	never := WithLoopbackProbe(func(a netip.Addr) bool {
		mu.Lock()
		defer mu.Unlock()
		probed = append(probed, a)
		return false
	})
	m := openMap(t, path, never)
	if m.Mode() != SharedLoopback {
		t.Fatalf("Mode = %v, want %v", m.Mode(), SharedLoopback)
	}
	if !slices.Equal(probed, []netip.Addr{addr2}) {
		t.Fatalf("probed %v, want exactly one probe of 127.0.0.2", probed)
	}
	port := freePort(t, loopback1)
	a := mustEndpoint(t, m, "login-a", "localhost", port)
	b := mustEndpoint(t, m, "login-b", "localhost", port)
	if a != (Endpoint{loopback1, port}) {
		t.Fatalf("first login got %v, want 127.0.0.1:%d", a, port)
	}
	kb, _ := makeKey("login-b", "localhost", port)
	if b.IP != loopback1 || b.Port != firstFree(t, kb, loopback1, port) {
		t.Fatalf("second login got %v, want 127.0.0.1 with the deterministic fallback port", b)
	}
	for _, login := range []string{"login-a", "login-b"} {
		if got, err := m.LoginAddr(ctx, login); err != nil || got != loopback1 {
			t.Fatalf("LoginAddr(%s) = %v, %v; want 127.0.0.1", login, got, err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(`"logins"`)) {
		t.Fatalf("shared mode saved login addresses:\n%s", data)
	}
	m2 := openMap(t, path, never)
	if got := m2.List(""); len(got) != 2 || got[0].Local != a || got[1].Local != b {
		t.Fatalf("after reopening: %+v", got)
	}
}

// Per-login addresses work in general, but not the one a new login would get.
func TestNewLoginAddressUnavailable(t *testing.T) {
	m := openMap(t, tempPath(t), WithLoopbackProbe(func(a netip.Addr) bool { return a == addr2 }))
	if m.Mode() != PerLoginAddrs {
		t.Fatalf("Mode = %v", m.Mode())
	}
	a := mustEndpoint(t, m, "login-a", "localhost", 40001)
	b := mustEndpoint(t, m, "login-b", "localhost", 40001)
	if a.IP != addr2 || b.IP != loopback1 {
		t.Fatalf("got %v and %v; want 127.0.0.2 and (unavailable 127.0.0.3 →) 127.0.0.1", a, b)
	}
	if got := m.List(""); len(got) != 2 {
		t.Fatalf("List = %+v", got)
	}
}

func TestInvalidArguments(t *testing.T) {
	ctx := context.Background()
	m := openMap(t, tempPath(t))
	for _, tc := range []struct {
		name  string
		login string
		host  string
		port  int
	}{
		{"empty login", "", "localhost", 80},
		{"bad utf-8 login", "\xff", "localhost", 80},
		{"long login", strings.Repeat("x", maxLoginIDLen+1), "localhost", 80},
		{"empty host", "a", "", 80},
		{"host with port", "a", "localhost:80", 80},
		{"port 0", "a", "localhost", 0},
		{"port too big", "a", "localhost", 65536},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := m.Endpoint(ctx, tc.login, tc.host, tc.port); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Endpoint: err = %v, want ErrInvalid", err)
			}
			if err := m.Forget(ctx, tc.login, tc.host, tc.port); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Forget: err = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := m.LoginAddr(ctx, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("LoginAddr(\"\"): %v", err)
	}
	if err := m.ForgetLogin(ctx, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ForgetLogin(\"\"): %v", err)
	}
	if _, err := os.Stat(m.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("invalid calls wrote the file: %v", err)
	}
}

func TestCorruptFileIsKept(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		content   string
		line, col int
	}{
		{"syntax", "{\n  \"version\": 1,\n  \"endpoints\": [,]\n}\n", 3, 17},
		{"wrong type", "{\"version\": 1,\n \"endpoints\": [\n  {\"login\": \"a\", \"host\": \"h\", \"port\": true, \"local\": \"127.0.0.1:9\"}]}", 3, 3},
		{"two logins on one address", "{\"version\": 1, \"logins\": [{\"id\": \"a\", \"addr\": \"127.0.0.2\"},\n  {\"id\": \"b\", \"addr\": \"127.0.0.2\"}]}", 2, 3},
		{"empty", "", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tempPath(t)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			m, err := Open(path, testLogger(t))
			var fe *FileError
			if !errors.As(err, &fe) || !errors.Is(err, ErrCorrupt) || !errors.Is(err, ErrNotSaved) {
				t.Fatalf("Open: err = %v, want a *FileError matching ErrCorrupt and ErrNotSaved", err)
			}
			if fe.Line != tc.line || fe.Column != tc.col || fe.Path != path {
				t.Fatalf("reported %s line %d column %d, want %s line %d column %d (%v)", fe.Path, fe.Line, fe.Column, path, tc.line, tc.col, err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("line %d, column %d", tc.line, tc.col)) {
				t.Fatalf("message does not give the position: %v", err)
			}
			if m == nil || m.ReadOnly() != err {
				t.Fatalf("map %v, ReadOnly %v", m, m.ReadOnly())
			}
			if backup, err := os.ReadFile(fe.Backup); err != nil || string(backup) != tc.content {
				t.Fatalf("backup %q: %v, content %q", fe.Backup, err, backup)
			}

			// The map still works, in memory, and never touches the file.
			ep := mustEndpoint(t, m, "login-a", "localhost", 40002)
			if got := mustEndpoint(t, m, "login-a", "localhost", 40002); got != ep {
				t.Fatalf("in-memory endpoint changed: %v then %v", ep, got)
			}
			if _, err := m.LoginAddr(ctx, "login-b"); err != nil {
				t.Fatal(err)
			}
			if err := m.Forget(ctx, "login-x", "localhost", 1); err != nil {
				t.Fatal(err)
			}
			if data, _ := os.ReadFile(path); string(data) != tc.content {
				t.Fatalf("the damaged file was changed to %q", data)
			}

			// Reopening the same damaged file does not pile up copies.
			if _, err := Open(path, testLogger(t)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("second Open: %v", err)
			}
			if copies, _ := filepath.Glob(path + ".corrupt-*"); len(copies) != 1 {
				t.Fatalf("copies: %v", copies)
			}

			// The user removes the file: Reload saves what was assigned meanwhile.
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := m.Reload(ctx); err != nil {
				t.Fatalf("Reload: %v", err)
			}
			if m.ReadOnly() != nil {
				t.Fatalf("still read-only: %v", m.ReadOnly())
			}
			m2 := openMap(t, path)
			if got := mustEndpoint(t, m2, "login-a", "localhost", 40002); got != ep {
				t.Fatalf("after Reload and reopening: %v, want %v", got, ep)
			}
		})
	}
}

func TestNewerFileIsNotTouched(t *testing.T) {
	path := tempPath(t)
	content := `{"version": 7, "something": "new"}`
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := Open(path, testLogger(t))
	if !errors.Is(err, ErrNewerVersion) || !errors.Is(err, ErrNotSaved) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v; want ErrNewerVersion and ErrNotSaved", err)
	}
	mustEndpoint(t, m, "login-a", "localhost", 40003)
	if data, _ := os.ReadFile(path); string(data) != content {
		t.Fatalf("newer file changed to %q", data)
	}
	if copies, _ := filepath.Glob(path + ".corrupt-*"); len(copies) != 0 {
		t.Fatalf("a newer file is not damaged, but copies were made: %v", copies)
	}
	if err := m.Reload(context.Background()); !errors.Is(err, ErrNewerVersion) {
		t.Fatalf("Reload: %v", err)
	}
}

// When the directory cannot hold the file, the map works in memory.
func TestUnwritableLocationWorksInMemory(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := Open(filepath.Join(notDir, "endpoints.json"), testLogger(t))
	if !errors.Is(err, ErrNotSaved) {
		t.Fatalf("Open: %v, want ErrNotSaved", err)
	}
	a := mustEndpoint(t, m, "login-a", "localhost", 40004)
	if got := mustEndpoint(t, m, "login-a", "localhost", 40004); got != a {
		t.Fatalf("%v then %v", a, got)
	}
}

func TestLockTimeout(t *testing.T) {
	path := tempPath(t)
	m := openMap(t, path, WithLockTimeout(200*time.Millisecond))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := atomicfile.TryLock(path + ".lock")
	if err != nil {
		t.Fatalf("taking the lock: %v", err)
	}
	defer l.Unlock()
	if _, err := m.Endpoint(context.Background(), "a", "localhost", 40005); !errors.Is(err, ErrLocked) {
		t.Fatalf("Endpoint while locked: %v, want ErrLocked", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m2 := openMap(t, path) // default 10 s timeout: ctx must end the wait
	if _, err := m2.Endpoint(ctx, "a", "localhost", 40005); !errors.Is(err, context.Canceled) {
		t.Fatalf("Endpoint with a cancelled ctx: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	mustEndpoint(t, m, "a", "localhost", 40005)
	if m.ReadOnly() != nil {
		t.Fatalf("ReadOnly: %v", m.ReadOnly())
	}
}

// Goroutines on one Map and on two Maps of the same file (flock excludes
// two opens in one process as it does two processes) agree on every
// endpoint, and no two apps share one.
func TestConcurrentGoroutines(t *testing.T) {
	path := tempPath(t)
	maps := []*Map{openMap(t, path), openMap(t, path)}
	keys := testKeys("g", 3, 6)
	var wg sync.WaitGroup
	results := make([]map[key]Endpoint, 12)
	errs := make(chan error, len(results))
	for i := range results {
		wg.Go(func() {
			m := maps[i%2]
			got := map[key]Endpoint{}
			for j := range keys {
				k := keys[(j+i*5)%len(keys)] // different orders
				ep, err := m.Endpoint(context.Background(), k.login, k.host, k.port)
				if err != nil {
					errs <- err
					return
				}
				got[k] = ep
			}
			results[i] = got
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkAgreement(t, path, keys, results)
}

func testKeys(prefix string, logins, ports int) []key {
	var keys []key
	for l := range logins {
		for p := range ports {
			keys = append(keys, key{login: fmt.Sprintf("%s-login-%d", prefix, l), host: "localhost", port: 41000 + p})
		}
	}
	return keys
}

// checkAgreement: every result gives each key the same endpoint, the file
// holds exactly those, endpoints are unique, and in per-login mode each
// login sits on its own address.
func checkAgreement(t *testing.T, path string, keys []key, results []map[key]Endpoint) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := parse(data)
	if err != nil {
		t.Fatalf("the file does not parse: %v\n%s", err, data)
	}
	if len(st.entries) != len(keys) {
		t.Fatalf("file has %d endpoints, want %d", len(st.entries), len(keys))
	}
	for i, r := range results {
		for _, k := range keys {
			if r[k] != st.entries[k] {
				t.Fatalf("writer %d got %v for %+v, the file says %v", i, r[k], k, st.entries[k])
			}
		}
	}
	seen := map[Endpoint]key{}
	loginIP := map[string]netip.Addr{}
	ipLogin := map[netip.Addr]string{}
	for k, e := range st.entries {
		if other, dup := seen[e]; dup {
			t.Fatalf("%v is given to %+v and %+v", e, other, k)
		}
		seen[e] = k
		if e.IP == loopback1 {
			continue
		}
		if ip, ok := loginIP[k.login]; ok && ip != e.IP {
			t.Fatalf("login %s has endpoints on %v and %v", k.login, ip, e.IP)
		}
		if l, ok := ipLogin[e.IP]; ok && l != k.login {
			t.Fatalf("logins %s and %s share %v", l, k.login, e.IP)
		}
		loginIP[k.login], ipLogin[e.IP] = e.IP, k.login
	}
}

func TestProcessNameInNotice(t *testing.T) {
	// Sanity check for the Bind tests: gopsutil can name this process.
	p, err := process.NewProcess(int32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if name, err := p.Name(); err != nil || name == "" {
		t.Fatalf("process name: %q, %v", name, err)
	}
}

func TestMergeInto(t *testing.T) {
	ip := netip.MustParseAddr
	file := newState()
	file.logins["f"] = ip("127.0.0.2")
	file.lastAddr = ip("127.0.0.5") // .3–.5 belonged to forgotten logins
	file.entries[key{"f", "localhost", 1}] = Endpoint{ip("127.0.0.2"), 1000}

	mem := newState()
	mem.logins["old"] = ip("127.0.0.3") // a forgotten login's address: dropped
	mem.logins["new"] = ip("127.0.0.6")
	mem.logins["f"] = ip("127.0.0.9")                                         // the file's own answer wins
	mem.entries[key{"f", "localhost", 1}] = Endpoint{ip("127.0.0.9"), 1}      // file wins
	mem.entries[key{"old", "localhost", 1}] = Endpoint{ip("127.0.0.3"), 1}    // address not its own: dropped
	mem.entries[key{"new", "localhost", 1}] = Endpoint{ip("127.0.0.6"), 1}    // kept
	mem.entries[key{"new", "localhost", 2}] = Endpoint{ip("127.0.0.2"), 1000} // taken in the file: dropped
	mem.entries[key{"s", "localhost", 1}] = Endpoint{ip("127.0.0.1"), 5000}   // shared address: kept
	mem.entries[key{"s", "localhost", 2}] = Endpoint{ip("127.0.0.2"), 5001}   // another login's address: dropped

	mergeInto(file, mem)
	wantLogins := map[string]netip.Addr{"f": ip("127.0.0.2"), "new": ip("127.0.0.6")}
	if !maps.Equal(file.logins, wantLogins) || file.lastAddr != ip("127.0.0.6") {
		t.Fatalf("logins %v last %v; want %v last 127.0.0.6", file.logins, file.lastAddr, wantLogins)
	}
	wantEntries := map[key]Endpoint{
		{"f", "localhost", 1}:   {ip("127.0.0.2"), 1000},
		{"new", "localhost", 1}: {ip("127.0.0.6"), 1},
		{"s", "localhost", 1}:   {ip("127.0.0.1"), 5000},
	}
	if !maps.Equal(file.entries, wantEntries) {
		t.Fatalf("entries %v\nwant %v", file.entries, wantEntries)
	}
	if _, err := parse(encode(file)); err != nil {
		t.Fatalf("merged state does not validate: %v", err)
	}
}

// TestSharedLoopbackSwitch (issue 13): with "a loopback address per server"
// off, new endpoints use 127.0.0.1 with distinct ports; endpoints assigned
// before keep their address, and switching back on gives new ones the
// login's own address again.
func TestSharedLoopbackSwitch(t *testing.T) {
	m := openMap(t, tempPath(t), WithLoopbackProbe(func(netip.Addr) bool { return true }))
	if m.Mode() != PerLoginAddrs {
		t.Fatalf("Mode = %v", m.Mode())
	}
	before := mustEndpoint(t, m, "login-a", "localhost", 40001)
	m.SetSharedLoopback(true)
	a := mustEndpoint(t, m, "login-a", "localhost", 40002)
	b := mustEndpoint(t, m, "login-b", "localhost", 40002)
	if before.IP == loopback1 || a.IP != loopback1 || b.IP != loopback1 || a.Port == b.Port {
		t.Fatalf("before %v, then %v and %v; want own address, then 127.0.0.1 with distinct ports", before, a, b)
	}
	if again := mustEndpoint(t, m, "login-a", "localhost", 40001); again != before {
		t.Fatalf("an endpoint assigned before moved: %v → %v", before, again)
	}
	if got, err := m.LoginAddr(context.Background(), "login-c"); err != nil || got != loopback1 {
		t.Fatalf("LoginAddr while shared = %v, %v", got, err)
	}
	m.SetSharedLoopback(false)
	if c := mustEndpoint(t, m, "login-c", "localhost", 40003); c.IP == loopback1 {
		t.Fatalf("switched back on: %v; want an address of its own", c)
	}
}
