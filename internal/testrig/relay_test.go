package testrig

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func dialRelay(t *testing.T, r *Relay) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", r.Addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial relay: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRelayForwards(t *testing.T) {
	checkNoGoroutineLeak(t)
	t.Run("echo and stats", func(t *testing.T) {
		r := NewRelay(t, startTCPServer(t, echoHandler))
		c := dialRelay(t, r)
		roundTrip(t, c, "hello relay")
		// Counters move right after each write, so the echo can beat them.
		eventually(t, "stats to count the echo", func() bool {
			st := r.Stats()
			return st.BytesUp == 11 && st.BytesDown == 11 && st.TotalFlows == 1 && st.ActiveFlows == 1
		})
		_ = c.Close()
		eventually(t, "the flow to end", func() bool { return r.Stats().ActiveFlows == 0 })
	})
	t.Run("half-close both ways", func(t *testing.T) {
		r := NewRelay(t, startTCPServer(t, countThenReplyHandler))
		c := dialRelay(t, r)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		payload := bytes.Repeat([]byte("y"), 3<<20)
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "got 3145728 bytes" {
			t.Fatalf("reply = %q, %v", got, err)
		}
	})
	t.Run("SetTarget moves new flows", func(t *testing.T) {
		r := NewRelay(t, startTCPServer(t, greetEchoHandler("first")))
		old := dialRelay(t, r)
		if got := readLine(t, old); got != "first" {
			t.Fatalf("greeting %q", got)
		}
		r.SetTarget(startTCPServer(t, greetEchoHandler("second")))
		if got := readLine(t, dialRelay(t, r)); got != "second" {
			t.Fatalf("new flow greeting %q, want second", got)
		}
		roundTrip(t, old, "old flow still on first")
	})
	t.Run("unreachable target resets the client", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		_ = ln.Close()
		r := NewRelay(t, addr)
		c, err := net.DialTimeout("tcp", r.Addr(), 5*time.Second)
		if err != nil {
			// The reset can beat connect(2) itself on loopback.
			t.Logf("reset during connect: %v", err)
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		var ne net.Error
		if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("read on a flow whose target is down: %v, want reset/EOF", err)
		}
	})
}

func TestRelayDelay(t *testing.T) {
	checkNoGoroutineLeak(t)
	r := NewRelay(t, startTCPServer(t, echoHandler))
	const oneWay = 150 * time.Millisecond
	r.SetDelay(oneWay)
	c := dialRelay(t, r)

	start := time.Now()
	roundTrip(t, c, "ping")
	rtt := time.Since(start)
	t.Logf("round trip with %v one-way delay: %v", oneWay, rtt)
	if rtt < 2*oneWay {
		t.Errorf("round trip %v, want at least 2*%v", rtt, oneWay)
	}
	if rtt > 5*time.Second {
		t.Errorf("round trip %v, want well under 5 s", rtt)
	}

	// Delay must not cut bandwidth: 8 MiB one way in 64 KiB reads would take
	// more than 25 s if every chunk waited its own delay in turn.
	sink := NewRelay(t, startTCPServer(t, countThenReplyHandler))
	sink.SetDelay(200 * time.Millisecond)
	sc := dialRelay(t, sink)
	_ = sc.SetDeadline(time.Now().Add(20 * time.Second))
	start = time.Now()
	go func() {
		_, _ = sc.Write(bytes.Repeat([]byte("z"), 8<<20))
		_ = sc.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(sc)
	took := time.Since(start)
	t.Logf("8 MiB through a 200 ms one-way delay took %v", took)
	if err != nil || string(got) != "got 8388608 bytes" {
		t.Fatalf("reply %q, %v", got, err)
	}
	if took > 10*time.Second {
		t.Errorf("8 MiB took %v: the delay is cutting bandwidth", took)
	}

	r.SetDelay(0)
	start = time.Now()
	roundTrip(t, c, "pong")
	t.Logf("round trip after SetDelay(0): %v", time.Since(start))
}

func TestRelayBlackhole(t *testing.T) {
	checkNoGoroutineLeak(t)
	r := NewRelay(t, startTCPServer(t, greetEchoHandler("hi")))
	c := dialRelay(t, r)
	if got := readLine(t, c); got != "hi" {
		t.Fatalf("greeting %q", got)
	}
	roundTrip(t, c, "before")

	r.Blackhole()
	t.Log("relay blackholed: bytes must stop both ways, nothing closed")
	if _, err := io.WriteString(c, "held"); err != nil {
		t.Fatalf("write into the blackhole: %v", err)
	}
	expectNoData(t, c, 300*time.Millisecond)
	fresh := dialRelay(t, r) // accepted, but hears nothing
	expectNoData(t, fresh, 200*time.Millisecond)
	if !r.Blackholed() {
		t.Fatal("Blackholed() = false")
	}
	up := r.Stats().BytesUp

	r.Resume()
	t.Log("relay resumed: held bytes must arrive in order")
	buf := make([]byte, 4)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "held" {
		t.Fatalf("after Resume got %q, %v; want the held bytes echoed", buf, err)
	}
	eventually(t, "BytesUp to grow after Resume", func() bool { return r.Stats().BytesUp > up })
	if got := readLine(t, fresh); got != "hi" {
		t.Fatalf("flow opened during the blackhole: greeting %q", got)
	}
	roundTrip(t, fresh, "fresh works")
}

func TestRelayBlackholeSSHKeepalive(t *testing.T) {
	checkNoGoroutineLeak(t)
	s := NewSSHServer(t, SSHServerOptions{Password: "pw"})
	r := NewRelay(t, s.Addr())
	client, err := ssh.Dial("tcp", r.Addr(), s.ClientConfig(ssh.Password("pw")))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	r.Blackhole()
	t.Log("relay blackholed under an SSH client: keepalive must get no answer")
	answered := make(chan error, 1)
	go func() {
		_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("keepalive answered through a blackhole (err %v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	closed := make(chan struct{})
	go func() { _ = client.Wait(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("client connection closed during the blackhole")
	default:
	}

	r.Resume()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("keepalive after Resume: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("keepalive not answered within 5 s of Resume")
	}
	if got := s.Stats().Keepalives; got != 1 {
		t.Errorf("server saw %d keepalives, want 1", got)
	}
	_ = client.Close()
	<-closed
}

func TestRelayCutFlows(t *testing.T) {
	checkNoGoroutineLeak(t)
	r := NewRelay(t, startTCPServer(t, echoHandler))
	a := dialRelay(t, r)
	b := dialRelay(t, r)
	roundTrip(t, a, "a")
	roundTrip(t, b, "b")
	if got := r.Stats().ActiveFlows; got != 2 {
		t.Fatalf("ActiveFlows = %d, want 2", got)
	}

	r.CutFlows()
	t.Log("flows cut: existing connections must be reset, new ones must work")
	for name, c := range map[string]net.Conn{"a": a, "b": b} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("flow %s: read after CutFlows = %v, want reset/EOF", name, err)
		}
		t.Logf("flow %s ended with: %v", name, err)
	}
	eventually(t, "ActiveFlows to reach 0", func() bool { return r.Stats().ActiveFlows == 0 })

	c := dialRelay(t, r)
	roundTrip(t, c, "new flow after cut")

	// Cut while blackholed: the new flow stays silent until Resume.
	r.Blackhole()
	r.CutFlows()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("flow survived CutFlows during a blackhole")
	}
	d := dialRelay(t, r)
	if _, err := io.WriteString(d, "later"); err != nil {
		t.Fatal(err)
	}
	expectNoData(t, d, 200*time.Millisecond)
	r.Resume()
	buf := make([]byte, 5)
	_ = d.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(d, buf); err != nil || string(buf) != "later" {
		t.Fatalf("after Resume: %q, %v", buf, err)
	}
	if got := r.Stats().TotalFlows; got != 4 {
		t.Errorf("TotalFlows = %d, want 4", got)
	}
}

func TestRelayCloseResetsFlows(t *testing.T) {
	checkNoGoroutineLeak(t)
	r, err := StartRelay(t.Context(), RelayOptions{Target: startTCPServer(t, echoHandler)})
	if err != nil {
		t.Fatal(err)
	}
	c := dialRelay(t, r)
	roundTrip(t, c, "x")
	r.Blackhole()
	if _, err := io.WriteString(c, strings.Repeat("q", 1000)); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("flow alive after Close")
	}
	if _, err := StartRelay(t.Context(), RelayOptions{}); err == nil {
		t.Fatal("StartRelay without a target succeeded")
	}
}

func TestRelaySilenceFlows(t *testing.T) {
	checkNoGoroutineLeak(t)
	r := NewRelay(t, startTCPServer(t, echoHandler))
	a := dialRelay(t, r)
	roundTrip(t, a, "a")

	r.SilenceFlows()
	t.Log("flows silenced: the old flow hears nothing and is not closed; a new flow works")
	if _, err := io.WriteString(a, "lost"); err != nil {
		t.Fatal(err)
	}
	expectNoData(t, a, 300*time.Millisecond)
	if got := r.Stats().ActiveFlows; got != 1 {
		t.Fatalf("ActiveFlows = %d, want the silenced flow still open", got)
	}
	b := dialRelay(t, r)
	roundTrip(t, b, "new flow after the network changed")
}

// A server that answers a client's first bytes with a banner and closes
// with the rest of the request unread, so its kernel resets the connection
// (sshd given "GET / HTTP/1.1" as an identification string), behind a path
// with latency: the client must get the banner before the reset, as over a
// real path.
func TestRelayDeliversBytesBeforeAReset(t *testing.T) {
	checkNoGoroutineLeak(t)
	r := NewRelay(t, startTCPServer(t, func(c net.Conn) {
		b := make([]byte, 4)
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		_, _ = io.WriteString(c, "SSH-2.0-Test\r\n")
		_ = c.Close() // unread bytes: a reset right behind the banner
	}))
	r.SetDelay(50 * time.Millisecond) // the reset reaches the relay before the banner is due
	c := dialRelay(t, r)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if string(got) != "SSH-2.0-Test\r\n" {
		t.Fatalf("got %q (%v) through the relay; want the banner, then the reset", got, err)
	}
}
