package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

// TestForwardExitOnForwardFailure: an sshd that allows -L but refuses -R
// (AllowTcpForwarding local). With ExitOnForwardFailure=yes, forward()
// ends at once with an error naming the -R; with no (the default), it logs
// the refusal and keeps running, and the -L works.
func TestForwardExitOnForwardFailure(t *testing.T) {
	fakeHome(t)
	sshd := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}, ExtraConfig: []string{"AllowTcpForwarding local", "SetEnv SHLVL=9"}})
	app := testrig.NewWebApp(t)
	args := func(exit string) forwardArgs {
		a := sshdArgs(sshd, fmt.Sprintf("127.0.0.1:0:127.0.0.1:%d", app.Port()))
		a.Remotes = []string{fmt.Sprintf("0:127.0.0.1:%d", app.Port())}
		if exit != "" {
			a.Options["exitonforwardfailure"] = exit
		}
		return a
	}

	t.Run("yes", func(t *testing.T) {
		a := args("yes")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		err := forward(ctx, a, localSpecs(t, a), nil, nil)
		if err == nil || !strings.Contains(err.Error(), "-R 0:127.0.0.1:") || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("forward = %v, want an error naming the refused -R", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("forward took %s to give up", d)
		}
	})

	t.Run("no", func(t *testing.T) {
		buf := &lockedBuffer{}
		a := args("")
		addrs := startForwardLog(t, a, slog.New(slog.NewTextHandler(buf, nil)))
		waitUntil(t, 10*time.Second, "the refusal in the log", func() bool { return strings.Contains(buf.String(), "refused") })
		if got := getBody(t, "http://"+addrs[0].String()+"/small"); got == "" {
			t.Fatal("empty body through the -L")
		}
	})
}

// TestForwardExitOnForwardFailureLocal: a -L whose port is taken ends the
// command with ExitOnForwardFailure=yes; with no, the other -L runs.
func TestForwardExitOnForwardFailureLocal(t *testing.T) {
	fakeHome(t)
	sshd := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}, ExtraConfig: []string{"SetEnv SHLVL=9"}})
	app := testrig.NewWebApp(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", taken.Addr().(*net.TCPAddr).Port, app.Port())
	a := sshdArgs(sshd, busy, fmt.Sprintf("127.0.0.1:0:127.0.0.1:%d", app.Port()))

	a.Options["exitonforwardfailure"] = "yes"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := forward(ctx, a, localSpecs(t, a), nil, nil); err == nil || !strings.Contains(err.Error(), "-L "+busy) {
		t.Fatalf("forward = %v, want an error naming -L %s", err, busy)
	}

	a.Options["exitonforwardfailure"] = "no"
	addrs := startForward(t, a)
	if len(addrs) != 1 {
		t.Fatalf("bound %v, want the one free -L", addrs)
	}
	if got := getBody(t, "http://"+addrs[0].String()+"/small"); got == "" {
		t.Fatal("empty body through the other -L")
	}
}

// TestRunForwardConfigForwards: `porthole forward gpu` with no flag runs the
// host's LocalForward from ~/.ssh/config; ClearAllForwardings drops it (and,
// with nothing else, it is a usage error), and so is a malformed line.
func TestRunForwardConfigForwards(t *testing.T) {
	home := fakeHome(t)
	sshd := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}})
	app := testrig.NewWebApp(t)
	port := freeLoopbackPort(t)
	cfg := sshd.SSHConfigBlock("gpu") + fmt.Sprintf("    LocalForward 127.0.0.1:%d 127.0.0.1:%d\n\n", port, app.Port()) +
		"Host bad\n    LocalForward 8080\n"
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-o", "ClearAllForwardings=yes", "gpu"}, {"bad"}} {
		if err := runForward(args); !errors.Is(err, errUsage) {
			t.Errorf("runForward %q = %v, want a usage error", args, err)
		}
	}

	done := make(chan error, 1)
	go func() { done <- runForward([]string{"gpu"}) }()
	waitUntil(t, 20*time.Second, "the config's LocalForward to listen", func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	getBody(t, fmt.Sprintf("http://127.0.0.1:%d/small", port))
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("runForward = %v after SIGINT", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("runForward did not stop on SIGINT")
	}
}

// TestForwardServerDropsEveryLogin: an sshd that accepts the login and
// closes the connection at once (a missing ChrootDirectory). OpenSSH logs
// in once and exits ("Connection … closed by remote host"); forward logs
// in at most 3 times (forwarder.EarlyDeathLimit: one or two drops may be
// the network's) and exits with the plain reason instead of serving
// listeners whose every request would log in again.
func TestForwardServerDropsEveryLogin(t *testing.T) {
	fakeHome(t)
	sshd, _ := testrig.NewSshdDroppingLogins(t)
	app := testrig.NewWebApp(t)
	a := sshdArgs(sshd, fmt.Sprintf("127.0.0.1:0:127.0.0.1:%d", app.Port()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err := forward(ctx, a, localSpecs(t, a), nil, nil)
	took := time.Since(start)
	t.Logf("forward: %v after %v, %d logins", err, took.Round(time.Millisecond), sshd.Logins())
	if err == nil || !strings.Contains(err.Error(), "right after login") || !strings.Contains(err.Error(), "ChrootDirectory") {
		t.Errorf("forward = %v, want the plain reason (the server closes the connection right after login)", err)
	}
	if took > 15*time.Second {
		t.Errorf("forward took %v to give up", took)
	}
	if n := sshd.Logins(); n < 1 || n > 3 {
		t.Errorf("sshd accepted %d logins, want 1 to 3", n)
	}
}

// TestForwardServerStartsDroppingLogins: the server worked, then its
// ChrootDirectory went missing and sshd restarted (the connection is lost).
// forward redials, sees each new login dropped, and exits with the reason
// after at most 3 more logins instead of redialing for ever.
func TestForwardServerStartsDroppingLogins(t *testing.T) {
	fakeHome(t)
	sshd, chroot := testrig.NewSshdDroppingLogins(t)
	if err := os.Mkdir(chroot, 0o755); err != nil {
		t.Fatal(err)
	}
	app := testrig.NewWebApp(t)
	a := sshdArgs(sshd, fmt.Sprintf("127.0.0.1:0:127.0.0.1:%d", app.Port()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ready := make(chan []net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- forward(ctx, a, localSpecs(t, a), nil, func(addrs []net.Addr) { ready <- addrs }) }()
	var addrs []net.Addr
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("forward ended before it was ready: %v (sshd log:\n%s)", err, sshd.Log())
	}
	if got := getBody(t, "http://"+addrs[0].String()+"/small"); got != "small\n" {
		t.Fatalf("GET through the working server = %q", got)
	}
	before := sshd.Logins()
	if err := os.Remove(chroot); err != nil {
		t.Fatal(err)
	}
	if err := sshd.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Logf("forward: %v; %d logins after the change", err, sshd.Logins()-before)
		if err == nil || !strings.Contains(err.Error(), "right after login") {
			t.Errorf("forward = %v, want the plain reason", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("forward still runs 30 s after the server began dropping logins (%d logins)", sshd.Logins()-before)
	}
	if n := sshd.Logins() - before; n > 3 {
		t.Errorf("%d logins after the server began dropping them, want at most 3", n)
	}
}
