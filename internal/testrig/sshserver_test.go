package testrig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func dialSSH(t *testing.T, s *SSHServer, auth ...ssh.AuthMethod) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", s.Addr(), s.ClientConfig(auth...))
	if err != nil {
		t.Fatalf("ssh dial %s: %v", s.Addr(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestSSHServerAuth(t *testing.T) {
	checkNoGoroutineLeak(t)
	good := NewTestKey(t)
	other := NewTestKey(t)
	questions := []KIQuestion{
		{Prompt: "Verification code: ", Echo: true, Answer: "123456"},
		{Prompt: "Password: ", Echo: false, Answer: "s3cret"},
	}
	s := NewSSHServer(t, SSHServerOptions{
		Password:            "hunter2",
		AuthorizedKeys:      []ssh.PublicKey{good.PublicKey()},
		KeyboardInteractive: questions,
	})

	var gotPrompts []string
	var gotEchos []bool
	ki := func(answers ...string) ssh.AuthMethod {
		return ssh.KeyboardInteractive(func(name, instruction string, q []string, echos []bool) ([]string, error) {
			if len(q) == 0 {
				return nil, nil
			}
			gotPrompts, gotEchos = slices.Clone(q), slices.Clone(echos)
			return answers, nil
		})
	}
	tests := []struct {
		name   string
		user   string
		auth   ssh.AuthMethod
		wantOK bool
	}{
		{"password ok", "", ssh.Password("hunter2"), true},
		{"password wrong", "", ssh.Password("nope"), false},
		{"password wrong user", "mallory", ssh.Password("hunter2"), false},
		{"pubkey ok", "", ssh.PublicKeys(good), true},
		{"pubkey unauthorized", "", ssh.PublicKeys(other), false},
		{"keyboard-interactive ok", "", ki("123456", "s3cret"), true},
		{"keyboard-interactive wrong answer", "", ki("123456", "wrong"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Stats()
			cfg := s.ClientConfig(tc.auth)
			if tc.user != "" {
				cfg.User = tc.user
			}
			c, err := ssh.Dial("tcp", s.Addr(), cfg)
			if tc.wantOK != (err == nil) {
				t.Fatalf("dial err = %v, want ok=%v", err, tc.wantOK)
			}
			after := s.Stats()
			if tc.wantOK {
				_ = c.Close()
				if after.AuthOK != before.AuthOK+1 {
					t.Errorf("AuthOK %d → %d, want +1", before.AuthOK, after.AuthOK)
				}
			} else if after.AuthFail <= before.AuthFail {
				t.Errorf("AuthFail %d → %d, want an increase", before.AuthFail, after.AuthFail)
			}
		})
	}
	t.Run("keyboard-interactive prompts and echo flags", func(t *testing.T) {
		gotPrompts, gotEchos = nil, nil
		c := dialSSH(t, s, ki("123456", "s3cret"))
		_ = c.Close()
		if !slices.Equal(gotPrompts, []string{"Verification code: ", "Password: "}) {
			t.Errorf("prompts = %q", gotPrompts)
		}
		if !slices.Equal(gotEchos, []bool{true, false}) {
			t.Errorf("echos = %v, want [true false]", gotEchos)
		}
	})
	t.Run("no auth configured is an error", func(t *testing.T) {
		if _, err := StartSSHServer(t.Context(), SSHServerOptions{}); err == nil {
			t.Fatal("StartSSHServer with no auth method succeeded")
		}
	})
	t.Run("host key pinned", func(t *testing.T) {
		cfg := s.ClientConfig(ssh.Password("hunter2"))
		cfg.HostKeyCallback = ssh.FixedHostKey(other.PublicKey())
		if c, err := ssh.Dial("tcp", s.Addr(), cfg); err == nil {
			_ = c.Close()
			t.Fatal("dial with the wrong pinned host key succeeded")
		}
	})
}

func TestSSHServerChannels(t *testing.T) {
	checkNoGoroutineLeak(t)
	s := NewSSHServer(t, SSHServerOptions{Password: "pw", AllowExec: true})
	client := dialSSH(t, s, ssh.Password("pw"))

	t.Run("direct-tcpip echo", func(t *testing.T) {
		addr := startTCPServer(t, echoHandler)
		before := s.Stats().DirectTCPIP
		c, err := client.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		roundTrip(t, c, "hello through direct-tcpip")
		if got := s.Stats().DirectTCPIP; got != before+1 {
			t.Errorf("DirectTCPIP = %d, want %d", got, before+1)
		}
	})
	t.Run("direct-tcpip half-close both ways", func(t *testing.T) {
		addr := startTCPServer(t, countThenReplyHandler)
		c, err := client.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(bytes.Repeat([]byte("x"), 100000)); err != nil {
			t.Fatal(err)
		}
		if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("read until EOF: %v", err)
		}
		if string(got) != "got 100000 bytes" {
			t.Fatalf("reply = %q", got)
		}
	})
	t.Run("direct-tcpip non-loopback refused", func(t *testing.T) {
		_, err := client.Dial("tcp", "192.0.2.1:80")
		var oce *ssh.OpenChannelError
		if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
			t.Fatalf("err = %v, want OpenChannelError Prohibited", err)
		}
	})
	t.Run("direct-tcpip closed port fails", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		_ = ln.Close()
		_, err := client.Dial("tcp", addr)
		var oce *ssh.OpenChannelError
		if !errors.As(err, &oce) || oce.Reason != ssh.ConnectionFailed {
			t.Fatalf("err = %v, want OpenChannelError ConnectionFailed", err)
		}
	})
	t.Run("direct-streamlocal", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "s.sock")
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			echoHandler(c)
		}()
		c, err := client.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		roundTrip(t, c, "hello over a unix socket")
		if got := s.Stats().Streamlocal; got != 1 {
			t.Errorf("Streamlocal = %d, want 1", got)
		}
	})
	t.Run("session exec", func(t *testing.T) {
		sess, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		var stdout, stderr bytes.Buffer
		sess.Stdout, sess.Stderr = &stdout, &stderr
		sess.Stdin = strings.NewReader("from stdin")
		err = sess.Run("cat; echo; echo out; echo err >&2; exit 3")
		var ee *ssh.ExitError
		if !errors.As(err, &ee) || ee.ExitStatus() != 3 {
			t.Fatalf("Run err = %v, want exit status 3", err)
		}
		if stdout.String() != "from stdin\nout\n" || stderr.String() != "err\n" {
			t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
		}
		if s.Stats().Exec != 1 {
			t.Errorf("Exec = %d, want 1", s.Stats().Exec)
		}
	})
	t.Run("keepalive answered false like OpenSSH", func(t *testing.T) {
		before := s.Stats().Keepalives
		ok, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
		if err != nil || ok {
			t.Fatalf("keepalive = %v, %v; want false, nil", ok, err)
		}
		if got := s.Stats().Keepalives; got != before+1 {
			t.Errorf("Keepalives = %d, want %d", got, before+1)
		}
	})
	t.Run("tcpip-forward", func(t *testing.T) {
		ln, err := client.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		if port == 0 {
			t.Fatal("server did not report the bound port")
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); greetEchoHandler("remote-forward")(c) }()
			}
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if got := readLine(t, c); got != "remote-forward" {
			t.Fatalf("greeting = %q", got)
		}
		roundTrip(t, c, "back through forwarded-tcpip")
		_ = c.Close()
		if got := s.Stats().TCPIPForward; got != 1 {
			t.Errorf("TCPIPForward = %d, want 1", got)
		}
		if err := ln.Close(); err != nil {
			t.Fatalf("cancel-tcpip-forward: %v", err)
		}
		eventually(t, "the server to stop listening on the forwarded port", func() bool {
			c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
			if err == nil {
				_ = c.Close()
			}
			return err != nil
		})
	})
	t.Run("tcpip-forward non-loopback refused", func(t *testing.T) {
		if ln, err := client.Listen("tcp", "0.0.0.0:0"); err == nil {
			_ = ln.Close()
			t.Fatal("remote forward on 0.0.0.0 was accepted")
		}
	})
}

func TestSSHServerSessionWithoutExec(t *testing.T) {
	s := NewSSHServer(t, SSHServerOptions{Password: "pw"})
	client := dialSSH(t, s, ssh.Password("pw"))
	_, err := client.NewSession()
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
		t.Fatalf("NewSession err = %v, want Prohibited", err)
	}
}

func TestSSHServerRefuseChannels(t *testing.T) {
	checkNoGoroutineLeak(t)
	s := NewSSHServer(t, SSHServerOptions{Password: "pw"})
	client := dialSSH(t, s, ssh.Password("pw"))
	addr := startTCPServer(t, echoHandler)

	s.SetRefuseChannels(true)
	_, err := client.Dial("tcp", addr)
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
		t.Fatalf("dial while refusing: err = %v, want Prohibited", err)
	}
	s.SetRefuseChannels(false)
	c, err := client.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial after refusing ended: %v", err)
	}
	roundTrip(t, c, "works again")
	_ = c.Close()
}

func TestSSHServerStall(t *testing.T) {
	checkNoGoroutineLeak(t)
	s := NewSSHServer(t, SSHServerOptions{Password: "pw"})
	client := dialSSH(t, s, ssh.Password("pw"))
	addr := startTCPServer(t, echoHandler)
	ch, err := client.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	roundTrip(t, ch, "before stall")

	s.SetStall(true)
	t.Log("server stalled: keepalive, channel data and new handshakes must hang")
	keepalive := make(chan error, 1)
	go func() {
		_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
		keepalive <- err
	}()
	if _, err := io.WriteString(ch, "during stall"); err != nil {
		t.Fatal(err)
	}
	// SSH channels have no read deadlines: read the echo in a goroutine.
	echo := make(chan string, 1)
	go func() {
		buf := make([]byte, len("during stall"))
		n, _ := io.ReadFull(ch, buf)
		echo <- string(buf[:n])
	}()
	raw, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatalf("new TCP connection must be accepted while stalled: %v", err)
	}
	defer raw.Close()
	expectNoData(t, raw, 300*time.Millisecond) // no SSH banner
	select {
	case err := <-keepalive:
		t.Fatalf("keepalive answered while stalled (err %v)", err)
	case got := <-echo:
		t.Fatalf("channel echoed %q while stalled", got)
	default:
	}

	s.SetStall(false)
	t.Log("stall lifted")
	select {
	case err := <-keepalive:
		if err != nil {
			t.Fatalf("keepalive after stall: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("keepalive not answered within 5 s of resuming")
	}
	select {
	case got := <-echo:
		if got != "during stall" {
			t.Fatalf("echo after stall = %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no echo within 5 s of resuming")
	}
	if got := readLine(t, raw); !strings.HasPrefix(got, "SSH-2.0-") {
		t.Fatalf("banner after stall = %q", got)
	}
}

func TestSSHServerDropAll(t *testing.T) {
	checkNoGoroutineLeak(t)
	s := NewSSHServer(t, SSHServerOptions{Password: "pw"})
	c1 := dialSSH(t, s, ssh.Password("pw"))
	c2 := dialSSH(t, s, ssh.Password("pw"))
	if got := s.Stats().ActiveConns; got != 2 {
		t.Fatalf("ActiveConns = %d, want 2", got)
	}
	s.DropAll()
	for i, c := range []*ssh.Client{c1, c2} {
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("client %d still connected 5 s after DropAll", i)
		}
	}
	eventually(t, "ActiveConns to reach 0", func() bool { return s.Stats().ActiveConns == 0 })
	c3 := dialSSH(t, s, ssh.Password("pw"))
	if ok, _, err := c3.SendRequest("keepalive@openssh.com", true, nil); err != nil || ok {
		t.Fatalf("new connection after DropAll: keepalive %v, %v", ok, err)
	}
	if got := s.Stats().Conns; got != 3 {
		t.Errorf("Conns = %d, want 3", got)
	}
}

func TestSSHServerCloseStopsEverything(t *testing.T) {
	checkNoGoroutineLeak(t)
	s, err := StartSSHServer(t.Context(), SSHServerOptions{Password: "pw", AllowExec: true})
	if err != nil {
		t.Fatal(err)
	}
	addr := startTCPServer(t, echoHandler)
	client, err := ssh.Dial("tcp", s.Addr(), s.ClientConfig(ssh.Password("pw")))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ch, err := client.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	roundTrip(t, ch, "x")
	ln, err := client.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	// sh forks the sleep: Close must kill the whole process group.
	marker := fmt.Sprintf("60.%06d", time.Now().UnixNano()%1e6)
	if err := sess.Start("sleep " + marker + " & wait"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the remote command to start", func() bool { return pgrep("sleep\x00" + marker) })
	// A target that never reads, with a client pushing more than all the
	// buffers hold: Close must not hang on it.
	release := make(chan struct{})
	deaf := startTCPServer(t, func(net.Conn) { <-release })
	t.Cleanup(func() { close(release) })
	dc, err := client.Dial("tcp", deaf)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		_, _ = dc.Write(make([]byte, 16<<20))
	}()
	s.SetStall(true) // Close must also unblock stalled connections
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10 s")
	}
	_ = client.Wait()
	select {
	case <-pushed:
	case <-time.After(5 * time.Second):
		t.Fatal("client write to the deaf target still blocked after Close")
	}
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Fatal("server still accepting after Close")
	}
	eventually(t, "the exec'd command to die", func() bool { return !pgrep("sleep\x00" + marker) })
}
