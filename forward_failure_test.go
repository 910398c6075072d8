package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
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
