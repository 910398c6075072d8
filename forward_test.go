package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/sshconn"
	"github.com/porthole-app/porthole/internal/testrig"
)

// startForward runs forward() in the background and returns the bound local
// addresses. The forward stops at test cleanup, and the test fails if it does not.
func startForward(t *testing.T, a forwardArgs) []net.Addr {
	t.Helper()
	return startForwardLog(t, a, nil)
}

// startForwardLog is startForward logging to log.
func startForwardLog(t *testing.T, a forwardArgs, log *slog.Logger) []net.Addr {
	t.Helper()
	specs := localSpecs(t, a)
	ctx, cancel := context.WithCancel(context.Background())
	readyCh := make(chan []net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- forward(ctx, a, specs, log, func(addrs []net.Addr) { readyCh <- addrs }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("forward did not stop within 10 s")
		}
	})
	select {
	case addrs := <-readyCh:
		return addrs
	case err := <-done:
		t.Fatalf("forward ended before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("forward not ready within 30 s")
	}
	return nil
}

// localSpecs parses a's -L specs, as runForward does.
func localSpecs(t *testing.T, a forwardArgs) []forwarder.LocalSpec {
	t.Helper()
	specs := make([]forwarder.LocalSpec, 0, len(a.Locals))
	for _, l := range a.Locals {
		s, err := forwarder.ParseLocalSpec(l)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, s)
	}
	return specs
}

func fakeHome(t *testing.T) string {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	return home
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

func sshdArgs(sshd *testrig.Sshd, locals ...string) forwardArgs {
	return forwardArgs{
		Locals:      locals,
		Identities:  []string{sshd.ClientKeyPath},
		Port:        sshd.Port,
		Options:     map[string]string{"userknownhostsfile": sshd.KnownHostsPath, "stricthostkeychecking": "yes"},
		Destination: sshd.User + "@" + sshd.Host,
	}
}

// TestForwardRealSshd: `porthole forward -L` against OpenSSH's sshd; the web app
// is reachable only through the tunnel's direct-tcpip channel.
func TestForwardRealSshd(t *testing.T) {
	fakeHome(t)
	sshd := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}})
	app := testrig.NewWebApp(t)
	addrs := startForward(t, sshdArgs(sshd, fmt.Sprintf("127.0.0.1:0:127.0.0.1:%d", app.Port())))
	for i := 0; i < 3; i++ {
		if got := getBody(t, "http://"+addrs[0].String()+"/small"); got == "" {
			t.Fatal("empty body through the tunnel")
		}
	}
	if n := app.Count("/small"); n != 3 {
		t.Fatalf("web app saw %d requests, want 3", n)
	}
}

// TestForwardTwoHopProxyJump: -L through two jump hosts resolved from ~/.ssh/config,
// each hop checking its own host key.
func TestForwardTwoHopProxyJump(t *testing.T) {
	home := fakeHome(t)
	hop1 := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}})
	hop2 := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"rsa"}})
	target := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}})
	app := testrig.NewWebApp(t)
	cfg := hop1.SSHConfigBlock("hop1") + "\n" + hop2.SSHConfigBlock("hop2") + "    ProxyJump hop1\n\n" +
		target.SSHConfigBlock("target") + "    ProxyJump hop1,hop2\n"
	// ProxyJump on hop2 is ignored for the chain, as in OpenSSH: -J lists the hops in order.
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs := startForward(t, forwardArgs{
		Locals:      []string{fmt.Sprintf("0:127.0.0.1:%d", app.Port())},
		Options:     map[string]string{},
		Destination: "target",
	})
	getBody(t, "http://"+addrs[0].String()+"/small")
	if app.Count("/small") != 1 {
		t.Fatal("request did not reach the web app")
	}
}

func TestForwardBadInput(t *testing.T) {
	fakeHome(t)
	sshd := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}})

	t.Run("malformed spec", func(t *testing.T) {
		_, err := forwarder.ParseLocalSpec("80:localhost")
		if err == nil || !strings.Contains(err.Error(), `"80:localhost"`) || !strings.Contains(err.Error(), "[bind_address:]port:host:hostport") {
			t.Fatalf("err = %v; want the spec quoted and the expected form", err)
		}
		if err := runForward([]string{"-L", "80:localhost", "host"}); !errors.Is(err, errUsage) {
			t.Fatalf("runForward with a bad spec = %v, want a usage error", err)
		}
	})

	t.Run("port in use names the holder", func(t *testing.T) {
		held, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		a := sshdArgs(sshd, held.Addr().String()+":127.0.0.1:80")
		spec, _ := forwarder.ParseLocalSpec(a.Locals[0])
		err = forward(context.Background(), a, []forwarder.LocalSpec{spec}, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "is held by") || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
			t.Fatalf("err = %v; want the holder (this process) named", err)
		}
	})

	t.Run("auth failure lists the methods tried", func(t *testing.T) {
		other := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}})
		a := sshdArgs(sshd, "127.0.0.1:0:127.0.0.1:80")
		a.Identities = []string{other.ClientKeyPath} // a key sshd does not authorize
		a.Options["identitiesonly"] = "yes"
		spec, _ := forwarder.ParseLocalSpec(a.Locals[0])
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := forward(ctx, a, []forwarder.LocalSpec{spec}, nil, nil)
		if !errors.Is(err, sshconn.ErrAuthFailed) || !strings.Contains(err.Error(), "publickey") {
			t.Fatalf("err = %v; want ErrAuthFailed naming publickey", err)
		}
	})

	t.Run("failing jump hop is named", func(t *testing.T) {
		dead, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		deadAddr := dead.Addr().String()
		dead.Close() // nothing listens there now
		a := sshdArgs(sshd, "127.0.0.1:0:127.0.0.1:80")
		a.Jump = "root@" + deadAddr
		spec, _ := forwarder.ParseLocalSpec(a.Locals[0])
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = forward(ctx, a, []forwarder.LocalSpec{spec}, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "jump host 1 of 1") || !strings.Contains(err.Error(), deadAddr) {
			t.Fatalf("err = %v; want the failing hop named", err)
		}
	})
}

// Issue 14 finding 10e: with StrictHostKeyChecking yes, an unknown host key
// ends `porthole forward` at once with ErrHostKeyUnknown (as a changed key
// or failed authentication do), instead of retrying forever.
func TestForwardStrictUnknownHostKeyExitsAtOnce(t *testing.T) {
	home := fakeHome(t)
	sshd := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}})
	empty := filepath.Join(home, "empty_known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	a := sshdArgs(sshd, "127.0.0.1:0:127.0.0.1:80")
	a.Options["userknownhostsfile"] = empty
	a.Options["globalknownhostsfile"] = "/dev/null"
	a.Options["stricthostkeychecking"] = "yes"
	spec, _ := forwarder.ParseLocalSpec(a.Locals[0])
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- forward(ctx, a, []forwarder.LocalSpec{spec}, nil, nil) }()
	select {
	case err := <-done:
		if !errors.Is(err, sshconn.ErrHostKeyUnknown) {
			t.Fatalf("forward = %v; want ErrHostKeyUnknown", err)
		}
		t.Logf("forward ended after %s: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		t.Fatal("forward still running 10 s after an unknown host key with StrictHostKeyChecking yes")
	}
	if b, _ := os.ReadFile(empty); len(b) != 0 {
		t.Fatalf("known_hosts was written: %q", b)
	}
}
