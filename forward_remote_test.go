package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/sshconn"
	"github.com/porthole-app/porthole/internal/testrig"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestForwardRemotePhoneHome: `porthole forward -R … -L …` against OpenSSH:
// port 0 is reported like ssh does ("Allocated port N …"), the server side
// reaches the local app, the forwards come back by themselves after the
// server restarts (the outage logged with its length), and a permanent
// error afterwards (the key is no longer accepted) ends the command with
// that error.
func TestForwardRemotePhoneHome(t *testing.T) {
	fakeHome(t)
	// SetEnv SHLVL: server-side commands skip root's ~/.bashrc, which can
	// hang for 60 s on this machine (a stale pyenv lock).
	sshd := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}, ExtraConfig: []string{"SetEnv SHLVL=9"}})
	app := testrig.NewWebApp(t)
	fixed := freeLoopbackPort(t)
	a := sshdArgs(sshd, fmt.Sprintf("127.0.0.1:0:127.0.0.1:%d", app.Port()))
	a.Remotes = []string{
		fmt.Sprintf("0:127.0.0.1:%d", app.Port()),
		fmt.Sprintf("%d:127.0.0.1:%d", fixed, app.Port()),
	}
	specs := []forwarder.LocalSpec{}
	for _, l := range a.Locals {
		s, err := forwarder.ParseLocalSpec(l)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, s)
	}
	buf := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("forward log:\n%s", buf.String())
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	ready := make(chan []net.Addr, 1)
	go func() { done <- forward(ctx, a, specs, log, func(addrs []net.Addr) { ready <- addrs }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("forward did not stop within 10 s")
		}
	})
	var addrs []net.Addr
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("forward ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready within 30 s")
	}
	getBody(t, "http://"+addrs[0].String()+"/small") // the -L forward still works alongside

	allocRe := regexp.MustCompile(fmt.Sprintf(`Allocated port (\d+) for remote forward to 127\.0\.0\.1:%d`, app.Port()))
	var allocated int
	waitUntil(t, 30*time.Second, "the allocated port in the log", func() bool {
		m := allocRe.FindStringSubmatch(buf.String())
		if m == nil {
			return false
		}
		allocated, _ = strconv.Atoi(m[1])
		return true
	})
	fixedURL := "http://127.0.0.1:" + strconv.Itoa(fixed) + "/small"
	waitUntil(t, 30*time.Second, "the fixed remote port", func() bool { return strings.Contains(buf.String(), "server=localhost:"+strconv.Itoa(fixed)) })
	getBody(t, "http://127.0.0.1:"+strconv.Itoa(allocated)+"/small")
	getBody(t, fixedURL)

	// The server reboots: every session dies, sshd comes back.
	if err := sshd.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "the forward back after the restart", func() bool {
		return strings.Count(buf.String(), "remote forward listening again after") >= 2
	})
	getBody(t, fixedURL)
	if !strings.Contains(buf.String(), "downtime=") {
		t.Fatal("the outage length was not logged")
	}

	// Now the server no longer accepts the key: a permanent error.
	if err := os.WriteFile(filepath.Join(sshd.Dir, "authorized_keys"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := sshd.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, sshconn.ErrAuthFailed) {
			t.Fatalf("forward ended with %v, want an authentication error", err)
		}
		done <- err // for the cleanup
	case <-time.After(60 * time.Second):
		t.Fatal("forward kept running after the key was refused")
	}
}
