package portmap

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
)

func TestListenNamesHolder(t *testing.T) {
	ctx := context.Background()
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := held.Addr().(*net.TCPAddr).Port

	h, ok := WhoHolds(ctx, port)
	if !ok || int(h.PID) != os.Getpid() {
		t.Fatalf("WhoHolds(%d) = %v, %v; want this test process (pid %d)", port, h, ok, os.Getpid())
	}

	ln, err := Listen(ctx, held.Addr().String())
	if err == nil {
		ln.Close()
		t.Fatal("Listen on a held port succeeded")
	}
	var pe *PortInUseError
	if !errors.As(err, &pe) || !errors.Is(err, ErrPortInUse) {
		t.Fatalf("error %v is not a PortInUseError/ErrPortInUse", err)
	}
	if !pe.Known || int(pe.Holder.PID) != os.Getpid() || !strings.Contains(err.Error(), "held by") {
		t.Fatalf("error does not name the holder: %v", err)
	}
}

func TestListenFreePort(t *testing.T) {
	ln, err := Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ln.Addr().(*net.TCPAddr).Port == 0 {
		t.Fatal("no port assigned")
	}
}
