package portmap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/shirou/gopsutil/v4/process"
)

func selfName(t *testing.T) string {
	t.Helper()
	p, err := process.NewProcess(int32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	name, err := p.Name()
	if err != nil || name == "" {
		t.Fatalf("cannot read this process's name: %q, %v", name, err)
	}
	return name
}

func listenerEndpoint(t *testing.T, ln net.Listener) Endpoint {
	t.Helper()
	a := ln.Addr().(*net.TCPAddr)
	ip, _ := netipAddrFromTCP(a)
	return Endpoint{IP: ip, Port: a.Port}
}

func TestBindFreeEndpoint(t *testing.T) {
	m := openMap(t, tempPath(t))
	addr, err := m.LoginAddr(context.Background(), "login-a")
	if err != nil {
		t.Fatal(err)
	}
	ep := mustEndpoint(t, m, "login-a", "localhost", freePort(t, addr))
	ln, got, notice, err := m.Bind(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got != ep || notice != "" || listenerEndpoint(t, ln) != ep {
		t.Fatalf("Bind(%v) = %v (listening on %v), notice %q", ep, got, ln.Addr(), notice)
	}
}

func TestBindMovesWhenTaken(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		alsoHeld int // ports after the assigned one that are held too
	}{
		{"next port free", 0},
		{"next two ports held", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tempPath(t)
			m := openMap(t, path)
			addr, err := m.LoginAddr(ctx, "login-a")
			if err != nil {
				t.Fatal(err)
			}
			var ep Endpoint
			for try := 0; ; try++ { // an assigned endpoint with room above it
				if try == 50 {
					t.Fatal("no free run of ports found")
				}
				ep = mustEndpoint(t, m, "login-a", "localhost", freePort(t, addr))
				ok := ep.Port+tc.alsoHeld+1 <= 65535
				for i := 1; ok && i <= tc.alsoHeld+1; i++ {
					ok = portFree(addr, ep.Port+i)
				}
				if ok {
					break
				}
			}
			hold(t, ep)
			for i := 1; i <= tc.alsoHeld; i++ {
				hold(t, Endpoint{addr, ep.Port + i})
			}

			ln, got, notice, err := m.Bind(ctx, ep)
			if err != nil {
				t.Fatalf("Bind: %v", err)
			}
			want := Endpoint{addr, ep.Port + tc.alsoHeld + 1}
			if got != want || listenerEndpoint(t, ln) != want {
				t.Fatalf("Bind(%v) moved to %v (listening on %v), want %v", ep, got, ln.Addr(), want)
			}
			wantNotice := fmt.Sprintf("port %d on %s is held by %s (pid %d); Porthole will use %d",
				ep.Port, addr, selfName(t), os.Getpid(), want.Port)
			if notice != wantNotice {
				t.Fatalf("notice = %q\nwant     %q", notice, wantNotice)
			}

			// The move is for this run only: the map keeps the original.
			if again := mustEndpoint(t, m, "login-a", "localhost", ep.Port); again != ep {
				t.Fatalf("the map now says %v, want the original %v", again, ep)
			}
			if again := mustEndpoint(t, openMap(t, path), "login-a", "localhost", ep.Port); again != ep {
				t.Fatalf("the file now says %v, want the original %v", again, ep)
			}
			_ = ln.Close()
		})
	}
}

func TestBindReturnsWhenFreed(t *testing.T) {
	ctx := context.Background()
	m := openMap(t, tempPath(t))
	addr, _ := m.LoginAddr(ctx, "login-a")
	ep := mustEndpoint(t, m, "login-a", "localhost", freePort(t, addr))
	squatter := hold(t, ep)
	ln, moved, notice, err := m.Bind(ctx, ep)
	if err != nil || moved == ep || notice == "" {
		t.Fatalf("Bind while held: %v %v %q %v", ln, moved, notice, err)
	}
	_ = ln.Close()
	_ = squatter.Close()
	ln, got, notice, err := m.Bind(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got != ep || notice != "" {
		t.Fatalf("after the port was freed: %v, %q; want the original %v", got, notice, ep)
	}
}

// The alternative skips ports assigned to other apps, even if they are not
// listening right now.
func TestBindSkipsAssignedPorts(t *testing.T) {
	ctx := context.Background()
	m := openMap(t, tempPath(t))
	addr, _ := m.LoginAddr(ctx, "login-a")
	var ep, next Endpoint
	for try := 0; ; try++ {
		if try == 50 {
			t.Fatal("no free run of ports found")
		}
		ep = mustEndpoint(t, m, "login-a", "localhost", freePort(t, addr))
		if ep.Port+2 <= 65535 && portFree(addr, ep.Port+1) && portFree(addr, ep.Port+2) {
			next = mustEndpoint(t, m, "login-a", "localhost", ep.Port+1)
			if next.Port == ep.Port+1 {
				break
			}
		}
	}
	hold(t, ep)
	ln, got, _, err := m.Bind(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got.Port != ep.Port+2 {
		t.Fatalf("moved to %v; want %d, skipping %v (assigned to another app)", got, ep.Port+2, next)
	}
}

func TestBindInvalid(t *testing.T) {
	m := openMap(t, tempPath(t))
	for _, ep := range []Endpoint{{}, {IP: addr2}, {IP: addr2, Port: 70000}} {
		if _, _, _, err := m.Bind(context.Background(), ep); !errors.Is(err, ErrInvalid) {
			t.Errorf("Bind(%v): %v, want ErrInvalid", ep, err)
		}
	}
}

func TestBindOtherErrorIsReturned(t *testing.T) {
	boom := errors.New("boom")
	m := openMap(t, tempPath(t), withListen(func(context.Context, string) (net.Listener, error) { return nil, boom }))
	ln, _, _, err := m.Bind(context.Background(), Endpoint{addr2, 40100})
	if ln != nil || !errors.Is(err, boom) || !strings.Contains(err.Error(), "127.0.0.2:40100") {
		t.Fatalf("Bind: %v, %v", ln, err)
	}
}

func netipAddrFromTCP(a *net.TCPAddr) (netip.Addr, bool) {
	ip, ok := netip.AddrFromSlice(a.IP)
	return ip.Unmap(), ok
}
