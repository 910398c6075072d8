//go:build unix

package portmap

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// An endpoint on a loopback address that this computer does not have (as on
// macOS without an lo0 alias) moves to 127.0.0.1, same port if free.
func TestBindAddressUnavailable(t *testing.T) {
	unavailable := func(ctx context.Context, addr string) (net.Listener, error) {
		if strings.HasPrefix(addr, "127.0.0.2:") {
			return nil, &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EADDRNOTAVAIL)}
		}
		return listenTCP(ctx, addr)
	}
	m := openMap(t, tempPath(t), withListen(unavailable))
	port := freePort(t, loopback1)
	ep := Endpoint{addr2, port}
	ln, got, notice, err := m.Bind(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got != (Endpoint{loopback1, port}) {
		t.Fatalf("moved to %v, want 127.0.0.1:%d", got, port)
	}
	if !strings.HasPrefix(notice, "address 127.0.0.2 is not available on this computer") ||
		!strings.HasSuffix(notice, fmt.Sprintf("; Porthole will use 127.0.0.1:%d", port)) {
		t.Fatalf("notice %q", notice)
	}
}

// A privileged port moves up by 8000.
func TestBindPermissionDenied(t *testing.T) {
	denied := func(ctx context.Context, addr string) (net.Listener, error) {
		if strings.HasSuffix(addr, ":80") {
			return nil, &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)}
		}
		return listenTCP(ctx, addr)
	}
	m := openMap(t, tempPath(t), withListen(denied))
	if !portFree(addr2, 8080) {
		t.Skip("127.0.0.2:8080 is taken on this computer")
	}
	ln, got, notice, err := m.Bind(context.Background(), Endpoint{addr2, 80})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got != (Endpoint{addr2, 8080}) || notice != "port 80 on 127.0.0.2 needs administrator rights; Porthole will use 8080" {
		t.Fatalf("got %v, %q", got, notice)
	}
}
