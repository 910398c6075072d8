package portmap

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServeAddrIsNeverGivenToALogin(t *testing.T) {
	if !ServeAddr().Is4() || !ServeAddr().IsLoopback() || ServeAddr() == loopback1 {
		t.Fatalf("ServeAddr() = %v, want an IPv4 loopback address other than 127.0.0.1", ServeAddr())
	}
	if isLoginAddr(ServeAddr()) {
		t.Fatal("serve's address counts as a login address")
	}
	if (Endpoint{ServeAddr(), 8888}).IsValid() {
		t.Fatal("an endpoint on serve's address is valid")
	}

	// The next address after the highest one handed out is serve's: it is
	// skipped, and the login gets the one after it, also after reopening.
	ctx := context.Background()
	before, after := ServeAddr().Prev(), ServeAddr().Next()
	path := tempPath(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	file := fmt.Sprintf(`{"version": 1, "last_login_addr": %q, "logins": [{"id": "old", "addr": %q}]}`, before, before)
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	var probed []netip.Addr
	probe := func(a netip.Addr) bool { probed = append(probed, a); return true }
	m := openMap(t, path, WithLoopbackProbe(probe))
	if m.Mode() != PerLoginAddrs {
		t.Fatalf("Mode = %v", m.Mode())
	}
	a, err := m.LoginAddr(ctx, "new")
	if err != nil {
		t.Fatal(err)
	}
	if a != after {
		t.Fatalf("the login after %v got %v, want %v (skipping serve's %v)", before, a, after, ServeAddr())
	}
	ep := mustEndpoint(t, m, "newer", "localhost", 40003)
	if ep.IP == ServeAddr() || ep.IP != after.Next() {
		t.Fatalf("the next login's endpoint is %v, want one on %v", ep, after.Next())
	}
	for _, p := range probed {
		if p == ServeAddr() {
			t.Fatal("serve's address was probed for a login")
		}
	}
	m2 := openMap(t, path, WithLoopbackProbe(probe))
	for _, as := range m2.List("") {
		if as.Local.IP == ServeAddr() {
			t.Fatalf("%+v is on serve's address", as)
		}
	}
	if got, err := m2.LoginAddr(ctx, "new"); err != nil || got != after {
		t.Fatalf("after reopening: %v, %v; want %v", got, err, after)
	}
}

func TestListenServe(t *testing.T) {
	ctx := context.Background()
	t.Run("own address", func(t *testing.T) {
		if !probeLoopback(ServeAddr()) {
			t.Skipf("this computer cannot bind %v (macOS without an lo0 alias)", ServeAddr())
		}
		ln, shared, err := ListenServe(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ap := netip.MustParseAddrPort(ln.Addr().String())
		if shared || ap.Addr() != ServeAddr() || ap.Port() == 0 {
			t.Fatalf("listening on %v (shared %v), want %v with a port", ap, shared, ServeAddr())
		}
	})
	t.Run("unavailable falls back to 127.0.0.1", func(t *testing.T) {
		// 198.51.100.1 (TEST-NET-2) is configured on no test machine: the
		// bind fails as 127.80.72.1's does on macOS (nothing is sent).
		ln, shared, err := listenServe(ctx, netip.MustParseAddr("198.51.100.1"), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if ap := netip.MustParseAddrPort(ln.Addr().String()); !shared || ap.Addr() != loopback1 {
			t.Fatalf("listening on %v (shared %v), want 127.0.0.1 and shared", ap, shared)
		}
	})
	t.Run("taken port is not a fallback", func(t *testing.T) {
		held := hold(t, Endpoint{loopback1, freePort(t, loopback1)})
		port := netip.MustParseAddrPort(held.Addr().String()).Port()
		_, _, err := listenServe(ctx, loopback1, int(port))
		var pe *PortInUseError
		if !errors.As(err, &pe) || !errors.Is(err, ErrPortInUse) {
			t.Fatalf("err = %v, want a *PortInUseError", err)
		}
	})
}

func TestSharedServeWarning(t *testing.T) {
	w := SharedServeWarning("127.0.0.1")
	for _, want := range []string{"127.0.0.1", ServeAddr().String(), "cookie"} {
		if !strings.Contains(w, want) {
			t.Errorf("warning %q does not name %q", w, want)
		}
	}
	if strings.Contains(w, "\n") {
		t.Errorf("warning %q is not one line", w)
	}
}
