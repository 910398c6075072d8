package sshconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
	"golang.org/x/crypto/ssh"
)

// chain is three in-process servers: two jump hosts and a target, all
// accepting key s.
type chain struct {
	env     *testEnv
	s       ssh.Signer
	j1, j2  *testrig.SSHServer
	target  *testrig.SSHServer
	j1Relay *testrig.Relay // in front of j1 when withRelay
}

func newChain(t *testing.T, withRelay bool) *chain {
	t.Helper()
	_, s := newEd25519(t)
	opts := testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{s.PublicKey()}}
	c := &chain{env: newEnv(t), s: s}
	c.j1, c.j2, c.target = testrig.NewSSHServer(t, opts), testrig.NewSSHServer(t, opts), testrig.NewSSHServer(t, opts)
	j1Addr := c.j1.Addr()
	if withRelay {
		c.j1Relay = testrig.NewRelay(t, c.j1.Addr())
		j1Addr = c.j1Relay.Addr()
	}
	var b strings.Builder
	for _, h := range []struct{ alias, addr string }{{"j1", j1Addr}, {"j2", c.j2.Addr()}, {"target", c.target.Addr()}} {
		host, port := hostPort(t, h.addr)
		fmt.Fprintf(&b, "Host %s\n  HostName %s\n  Port %s\n", h.alias, host, port)
	}
	b.WriteString("Host target\n  ProxyJump j1,j2\nHost *\n  User tester\n  GlobalKnownHostsFile none\n  ConnectTimeout 5\n")
	c.env.writeConfig(t, b.String())
	c.env.addKnown(t, knownLine(j1Addr, c.j1.HostKey()), knownLine(c.j2.Addr(), c.j2.HostKey()), knownLine(c.target.Addr(), c.target.HostKey()))
	return c
}

func (c *chain) dialer(t *testing.T, opts Options) *Dialer {
	d := c.env.dialer(t, c.env.resolve(t, "target", opts), &noHostPrompt{t: t})
	d.Signers = []ssh.Signer{c.s}
	return d
}

type stepLog struct {
	mu    sync.Mutex
	steps []Step
	text  []string
}

func (l *stepLog) record(s Step, detail string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.steps = append(l.steps, s)
	l.text = append(l.text, s.String()+": "+detail)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDialJumpHosts(t *testing.T) {
	checkGoroutines(t)
	ch := newChain(t, false)
	d := ch.dialer(t, Options{})
	var log stepLog
	d.OnStep = log.record
	c, err := d.Dial(dialCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st := ch.j1.Stats(); st.DirectTCPIP != 1 || st.AuthOK != 1 {
		t.Errorf("j1 stats %+v", st)
	}
	if st := ch.j2.Stats(); st.DirectTCPIP != 1 || st.AuthOK != 1 {
		t.Errorf("j2 stats %+v", st)
	}
	if st := ch.target.Stats(); st.AuthOK != 1 || st.DirectTCPIP != 0 {
		t.Errorf("target stats %+v", st)
	}
	// The destination works: ping it.
	if _, err := c.Ping(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if ch.target.Stats().Keepalives != 1 {
		t.Errorf("keepalive did not reach the target")
	}

	count := map[Step]int{}
	for _, s := range log.steps {
		count[s]++
	}
	if count[StepResolving] != 1 || count[StepConnecting] != 3 || count[StepHostKey] != 3 || count[StepAuthenticating] != 3 || count[StepReady] != 1 {
		t.Errorf("steps:\n%s", strings.Join(log.text, "\n"))
	}
	if log.steps[0] != StepResolving || log.steps[len(log.steps)-1] != StepReady {
		t.Errorf("steps:\n%s", strings.Join(log.text, "\n"))
	}
	mustContain(t, strings.Join(log.text, "\n"), "jump host 1 of 2", "jump host 2 of 2", "tester@"+ch.target.Addr())

	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for _, s := range []*testrig.SSHServer{ch.j1, ch.j2, ch.target} {
		waitFor(t, "servers to see the chain closed", func() bool { return s.Stats().ActiveConns == 0 })
	}
}

func TestDialJumpHostFailureNamesHop(t *testing.T) {
	ch := newChain(t, false)
	// Replace j2's known key with another one.
	_, other := newEd25519(t)
	writeFile(t, ch.env.known, knownLine(ch.j1.Addr(), ch.j1.HostKey())+"\n"+knownLine(ch.j2.Addr(), other.PublicKey())+"\n")
	_, err := ch.dialer(t, Options{}).Dial(dialCtx(t))
	if !errors.Is(err, ErrHostKeyMismatch) {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
	want := fmt.Sprintf("jump host 2 of 2 (%s): ", ch.j2.Addr())
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
	waitFor(t, "j1 connection closed", func() bool { return ch.j1.Stats().ActiveConns == 0 })
}

func TestDialThroughJumpToUnreachable(t *testing.T) {
	ch := newChain(t, false)
	dead := closedPort(t)
	d := ch.dialer(t, Options{ProxyJump: "j1", Port: dead})
	_, err := d.Dial(dialCtx(t))
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v", err)
	}
	mustContain(t, err.Error(), fmt.Sprintf("127.0.0.1:%d", dead))
}

// closedPort returns a loopback port nobody listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestDialUnreachable(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		env := newEnv(t)
		addr := fmt.Sprintf("127.0.0.1:%d", closedPort(t))
		env.configFor(t, "dead", addr, "u", "  ConnectTimeout 5\n")
		start := time.Now()
		_, err := env.dialer(t, env.resolve(t, "dead", Options{}), nil).Dial(dialCtx(t))
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("err = %v", err)
		}
		t.Log(err)
		mustContain(t, err.Error(), addr)
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("took %v, ConnectTimeout is 5s", el)
		}
	})
	t.Run("no answer", func(t *testing.T) {
		addr := silentAddr(t)
		env := newEnv(t)
		env.configFor(t, "silent", addr, "u", "  ConnectTimeout 1\n")
		start := time.Now()
		_, err := env.dialer(t, env.resolve(t, "silent", Options{}), nil).Dial(dialCtx(t))
		el := time.Since(start)
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("err = %v", err)
		}
		t.Log(err)
		mustContain(t, err.Error(), addr, "within 1s")
		if el > 5*time.Second {
			t.Errorf("took %v, ConnectTimeout is 1s", el)
		}
	})
	t.Run("no ssh handshake", func(t *testing.T) {
		env := newEnv(t)
		srv := env.serverUnknown(t, testrig.SSHServerOptions{Password: "pw"}, "  ConnectTimeout 1\n")
		srv.SetStall(true)
		start := time.Now()
		_, err := env.dialer(t, env.resolve(t, "srv", Options{}), nil).Dial(dialCtx(t))
		el := time.Since(start)
		if !errors.Is(err, ErrHandshakeTimeout) {
			t.Fatalf("err = %v", err)
		}
		t.Log(err)
		mustContain(t, err.Error(), srv.Addr())
		if el > 5*time.Second {
			t.Errorf("took %v, ConnectTimeout is 1s", el)
		}
	})
	t.Run("context canceled", func(t *testing.T) {
		checkGoroutines(t)
		env := newEnv(t)
		srv := env.serverUnknown(t, testrig.SSHServerOptions{Password: "pw"}, "")
		srv.SetStall(true)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := env.dialer(t, env.resolve(t, "srv", Options{}), nil).Dial(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("took %v after the context ended", el)
		}
	})
}

func TestPing(t *testing.T) {
	t.Run("live server", func(t *testing.T) {
		checkGoroutines(t)
		env := newEnv(t)
		_, s := newEd25519(t)
		srv, cfg := env.server(t, testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{s.PublicKey()}}, "")
		d := env.dialer(t, cfg, nil)
		d.Signers = []ssh.Signer{s}
		c, err := d.Dial(dialCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range 3 {
			rtt, err := c.Ping(context.Background(), 5*time.Second)
			if err != nil || rtt <= 0 {
				t.Fatalf("ping %d: %v, %v", i, rtt, err)
			}
		}
		if n := srv.Stats().Keepalives; n != 3 {
			t.Errorf("server saw %d keepalives", n)
		}
	})
	t.Run("dropped connection", func(t *testing.T) {
		checkGoroutines(t)
		env := newEnv(t)
		_, s := newEd25519(t)
		srv, cfg := env.server(t, testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{s.PublicKey()}}, "")
		d := env.dialer(t, cfg, nil)
		d.Signers = []ssh.Signer{s}
		c, err := d.Dial(dialCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		srv.DropAll()
		waitFor(t, "the client to notice the reset", func() bool {
			_, err := c.Ping(context.Background(), 5*time.Second)
			return errors.Is(err, ErrConnectionLost)
		})
		c.Close()
	})
	for _, jumps := range []bool{false, true} {
		t.Run(fmt.Sprintf("blackholed jumps=%v", jumps), func(t *testing.T) {
			checkGoroutines(t)
			ch := newChain(t, true)
			opts := Options{ProxyJump: "none"}
			if jumps {
				opts.ProxyJump = "j1"
			}
			alias := "j1"
			if jumps {
				alias = "target"
			}
			cfg := ch.env.resolve(t, alias, opts)
			d := ch.env.dialer(t, cfg, &noHostPrompt{t: t})
			d.Signers = []ssh.Signer{ch.s}
			c, err := d.Dial(dialCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Ping(context.Background(), 5*time.Second); err != nil {
				t.Fatal(err)
			}
			ch.j1Relay.Blackhole()
			start := time.Now()
			_, err = c.Ping(context.Background(), 300*time.Millisecond)
			el := time.Since(start)
			if !errors.Is(err, ErrPingTimeout) {
				t.Fatalf("err = %v", err)
			}
			if el > 5*time.Second {
				t.Errorf("ping took %v with a 300ms timeout", el)
			}
			// The client is closed: Wait returns, and so does another ping.
			done := make(chan error, 1)
			go func() { done <- c.Wait() }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("client still open after a ping timeout")
			}
			if _, err := c.Ping(context.Background(), time.Second); !errors.Is(err, ErrConnectionLost) {
				t.Errorf("ping after close: %v", err)
			}
			if _, err := c.NewSession(); err == nil {
				t.Errorf("NewSession works on a closed client")
			}
			if jumps {
				// The jump host connection was closed too.
				for _, j := range c.jumps {
					if _, _, err := j.SendRequest("keepalive@openssh.com", true, nil); err == nil {
						t.Errorf("jump client still usable")
					}
				}
			}
		})
	}
}

// Closing a client, with or without jumps, leaves no goroutine behind.
func TestClientCloseNoLeak(t *testing.T) {
	ch := newChain(t, false)
	for _, alias := range []string{"j1", "target"} {
		t.Run(alias, func(t *testing.T) {
			d := ch.env.dialer(t, ch.env.resolve(t, alias, Options{}), &noHostPrompt{t: t})
			d.Signers = []ssh.Signer{ch.s}
			base := runtime.NumGoroutine()
			for range 3 {
				c, err := d.Dial(dialCtx(t))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.Ping(context.Background(), 5*time.Second); err != nil {
					t.Fatal(err)
				}
				// Open and close a forward channel too.
				conn, err := c.Dial("tcp", ch.target.Addr())
				if err != nil {
					t.Fatal(err)
				}
				conn.Close()
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if n, ok := settleGoroutines(base, 10*time.Second); !ok {
				t.Errorf("%d goroutines after Close, %d before", n, base)
			}
		})
	}
}
