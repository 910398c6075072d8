package guard

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func acceptOne(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("accept failed")
		}
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection within 10 s")
		return nil
	}
}

func TestSameUserAllowsOwnConnections(t *testing.T) {
	// 127.3.4.1: a per-app endpoint's address (portmap), not only 127.0.0.1.
	for _, c := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}, {"tcp4", "127.3.4.1:0"}} {
		network, addr := c.network, c.addr
		t.Run(network+" "+addr, func(t *testing.T) {
			ln, err := net.Listen(network, addr)
			if err != nil {
				t.Skipf("no %s loopback: %v", network, err)
			}
			defer ln.Close()
			c, err := net.Dial(network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conn := acceptOne(t, ln)
			uid, err := peerUID(conn.LocalAddr().(*net.TCPAddr), conn.RemoteAddr().(*net.TCPAddr))
			if err != nil || int(uid) != os.Getuid() {
				t.Fatalf("peerUID = %d, %v; want %d", uid, err, os.Getuid())
			}
			if err := NewSameUser(nil).Allow(conn); err != nil {
				t.Fatalf("own connection refused: %v", err)
			}
		})
	}
}

// TestSameUserRefusesOtherUser connects from a child process running as another
// user (needs root to switch user, as CI runs) and checks the connection is refused.
func TestSameUserRefusesOtherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to start a process as another user")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The policy is for user 1000 here, so that the connecting user (65534, nobody) is "another user".
	g := &SameUser{UID: 1000}
	g.Logger = NewSameUser(nil).Logger

	// bash's /dev/tcp opens a TCP connection and holds it while sleeping.
	cmd := exec.Command("bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/"+portOf(ln)+"; sleep 5")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	conn := acceptOne(t, ln)
	err = g.Allow(conn)
	if !errors.Is(err, ErrOtherUser) {
		t.Fatalf("Allow(conn from uid 65534) = %v, want ErrOtherUser", err)
	}

	// And the same user's policy (65534) accepts it: the lookup found the real owner.
	if err := (&SameUser{UID: 65534, Logger: g.Logger}).Allow(conn); err != nil {
		t.Fatalf("policy for uid 65534 refused its own connection: %v", err)
	}
}

func portOf(ln net.Listener) string {
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

// TestSameUserUnixSockets checks Unix socket connections by the peer's
// credentials: this process's own connection is allowed, and one from a
// child running as another user (needs root and python3) is refused.
func TestSameUserUnixSockets(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/g.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Run("own", func(t *testing.T) {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conn := acceptOne(t, ln)
		uid, err := unixPeerUID(conn.(*net.UnixConn))
		if err != nil || int(uid) != os.Getuid() {
			t.Fatalf("unixPeerUID = %d, %v; want %d", uid, err, os.Getuid())
		}
		if err := NewSameUser(nil).Allow(conn); err != nil {
			t.Fatalf("own connection refused: %v", err)
		}
	})
	t.Run("other user", func(t *testing.T) {
		if os.Getuid() != 0 {
			t.Skip("needs root to start a process as another user")
		}
		py, err := exec.LookPath("/usr/bin/python3")
		if err != nil {
			t.Skip("needs python3 to connect to a Unix socket from a child")
		}
		for _, d := range []string{filepath.Dir(dir), dir} { // t.TempDir's are 0700
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(path, 0o777); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(py, "-c", "import socket,sys,time\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ntime.sleep(5)", path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		conn := acceptOne(t, ln)
		g := &SameUser{UID: 1000, Logger: NewSameUser(nil).Logger}
		if err := g.Allow(conn); !errors.Is(err, ErrOtherUser) {
			t.Fatalf("Allow(unix conn from uid 65534) = %v, want ErrOtherUser", err)
		}
		if err := (&SameUser{UID: 65534, Logger: g.Logger}).Allow(conn); err != nil {
			t.Fatalf("policy for uid 65534 refused its own connection: %v", err)
		}
	})
}
