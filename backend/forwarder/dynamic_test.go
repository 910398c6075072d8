package forwarder

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

// serverOnlyName resolves only on the test SSH server (its Hosts map).
const serverOnlyName = "only-on-server.test"

func listenDynamic(t testing.TB, d Dialer, opts DynamicOptions) *DynamicForward {
	t.Helper()
	f, err := ListenDynamic(DynamicSpec{}, d, opts)
	if err != nil {
		t.Fatalf("ListenDynamic: %v", err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// socksDial connects to the proxy, sends handshake and reads the reply
// (after SOCKS5's method selection, which must accept no-auth). It returns
// the connection, ready for the tunnelled bytes, and the reply.
func socksDial(t testing.TB, proxy string, handshake []byte) (net.Conn, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxy, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(handshake); err != nil {
		t.Fatalf("write handshake: %v", err)
	}
	n := 8
	if handshake[0] == 5 {
		n = 2 + 10
	}
	reply := make([]byte, n)
	if _, err := io.ReadFull(c, reply); err != nil {
		t.Fatalf("read reply: %v", err)
	}
	if handshake[0] == 5 {
		if !bytes.Equal(reply[:2], s5ok) {
			t.Fatalf("method selection % x, want % x", reply[:2], s5ok)
		}
		reply = reply[2:]
	}
	_ = c.SetDeadline(time.Time{})
	return c, reply
}

// lineOver sends one line request on an established tunnel and checks the answer.
func lineOver(c net.Conn, id string) error {
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "REQ "+id+"\n"); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if line != "OK "+id+"\n" {
		return fmt.Errorf("answer %q, want %q", line, "OK "+id)
	}
	return nil
}

// expectClosed waits (at most 10 s) for the proxy to close c, after
// reading any bytes it sent first.
func expectClosed(t testing.TB, c net.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("connection not closed by the proxy (got % x): %v", b, err)
	}
	return b
}

// expectGone waits (at most 10 s) for the proxy to close or reset c.
func expectGone(t testing.TB, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection stayed open (read % x, %v)", b, err)
	}
}

func closedPort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, p := hostPort(t, ln.Addr().String())
	_ = ln.Close()
	return p
}

// TestDynamicForward: SOCKS5 (name, IPv4, IPv6), SOCKS4 and SOCKS4a CONNECTs
// through the in-process SSH server, names resolved only there, and open
// failures reported with their reply codes.
func TestDynamicForward(t *testing.T) {
	srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{User: "tester", Password: testPassword,
		Hosts: map[string]string{serverOnlyName: "127.0.0.1"}})
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{})
	ls := &lineServer{}
	be := newRawBackend(t, ls.handle)
	_, port := hostPort(t, be.Addr())
	f := listenDynamic(t, s, DynamicOptions{})
	proxy := f.Addr().String()
	if f.Spec().BindPort == 0 || !strings.HasPrefix(proxy, "127.0.0.1:") {
		t.Fatalf("listening on %s, spec %+v; want loopback and the port filled in", proxy, f.Spec())
	}
	p := uint16(port)
	dead := uint16(closedPort(t))

	ok := []struct {
		name string
		hs   []byte
	}{
		{"socks5 server-only name", s5name(serverOnlyName, p)},
		{"socks5 ipv4", s5req(1, []byte{127, 0, 0, 1}, p)},
		{"socks4", s4req(p, [4]byte{127, 0, 0, 1}, "me", "")},
		{"socks4a server-only name", s4req(p, [4]byte{0, 0, 0, 1}, "", serverOnlyName)},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			c, reply := socksDial(t, proxy, tc.hs)
			want := s5rep(0)
			if tc.hs[0] == 4 {
				want = []byte{0, 0x5a, 0, 0, 0, 0, 0, 0}
			}
			if !bytes.Equal(reply, want) {
				t.Fatalf("reply % x, want % x", reply, want)
			}
			for i := range 3 {
				if err := lineOver(c, fmt.Sprintf("%s-%d", tc.name, i)); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	t.Run("socks5 ipv6", func(t *testing.T) {
		ln6, err := net.Listen("tcp", "[::1]:0")
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		be6 := serveRawBackend(t, ln6, ls.handle)
		_, p6 := hostPort(t, be6.Addr())
		c, reply := socksDial(t, proxy, s5req(4, net.IPv6loopback, uint16(p6)))
		if !bytes.Equal(reply, s5rep(0)) {
			t.Fatalf("reply % x, want success", reply)
		}
		if err := lineOver(c, "v6"); err != nil {
			t.Fatal(err)
		}
	})

	fails := []struct {
		name string
		hs   []byte
		want []byte
	}{
		{"socks5 refused", s5req(1, []byte{127, 0, 0, 1}, dead), s5rep(0x05)},
		{"socks5 unknown name", s5name("nowhere.test", p), s5rep(0x04)},
		{"socks5 not loopback is prohibited", s5req(1, []byte{192, 0, 2, 1}, p), s5rep(0x02)},
		{"socks4 refused", s4req(dead, [4]byte{127, 0, 0, 1}, "", ""), s4rej},
		{"socks4a unknown name", s4req(p, [4]byte{0, 0, 0, 1}, "", "nowhere.test"), s4rej},
	}
	for _, tc := range fails {
		t.Run(tc.name, func(t *testing.T) {
			before := f.Stats().FailedConns
			c, reply := socksDial(t, proxy, tc.hs)
			if !bytes.Equal(reply, tc.want) {
				t.Fatalf("reply % x, want % x", reply, tc.want)
			}
			if rest := expectClosed(t, c); len(rest) > 0 {
				t.Fatalf("bytes after a failure reply: % x", rest)
			}
			waitFor(t, 5*time.Second, "the failure to be counted", func() bool { return f.Stats().FailedConns == before+1 })
		})
	}
	t.Run("socks5 prohibited by the server", func(t *testing.T) {
		srv.SetRefuseChannels(true)
		defer srv.SetRefuseChannels(false)
		// A target not used before: the pool may hold a channel opened
		// before the switch for the others.
		c, reply := socksDial(t, proxy, s5name("localhost", p))
		if !bytes.Equal(reply, s5rep(0x02)) {
			t.Fatalf("reply % x, want 02 (not allowed)", reply)
		}
		expectClosed(t, c)
	})

	st := f.Stats()
	if st.TotalConns < uint64(len(ok)+len(fails)+1) || st.FailedConns < uint64(len(fails)+1) || st.BytesOut == 0 || st.BytesIn == 0 || st.DialLatency.Count < uint64(len(ok)) {
		t.Fatalf("stats %+v", st)
	}
	if ls.requests.Load() < int64(3*len(ok)) {
		t.Fatalf("backend saw %d requests, want at least %d", ls.requests.Load(), 3*len(ok))
	}
}

// TestDynamicForwardGarbage: clients that do not speak SOCKS get the
// protocol's error reply (where it has one) and a closed connection, a
// silent one is dropped after the handshake timeout, and none of this
// disturbs a good client or the SSH connection.
func TestDynamicForwardGarbage(t *testing.T) {
	srv := newServer(t, nil)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: PoolOptions{Disabled: true}})
	ls := &lineServer{}
	be := newRawBackend(t, ls.handle)
	_, port := hostPort(t, be.Addr())
	f := listenDynamic(t, s, DynamicOptions{HandshakeTimeout: 300 * time.Millisecond})
	proxy := f.Addr().String()

	good, reply := socksDial(t, proxy, s5req(1, []byte{127, 0, 0, 1}, uint16(port)))
	if !bytes.Equal(reply, s5rep(0)) {
		t.Fatalf("good client: reply % x", reply)
	}
	for _, tc := range socksCases {
		if tc.want != (socksRequest{}) || len(tc.in) == 0 || strings.Contains(tc.name, "truncated") || strings.Contains(tc.name, "no NUL") || strings.Contains(tc.name, "empty name") {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", proxy, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(tc.in); err != nil {
				t.Fatal(err)
			}
			if got := expectClosed(t, c); !bytes.Equal(got, tc.written) {
				t.Fatalf("proxy sent % x, want % x", got, tc.written)
			}
		})
	}
	t.Run("silent client times out", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", proxy, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte{5, 1}) // and then nothing
		expectClosed(t, c)
	})
	t.Run("random bytes", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", proxy, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write(bytes.Repeat([]byte{0x04, 0xff}, 600))
		expectClosed(t, c)
	})
	if err := lineOver(good, "still-works"); err != nil {
		t.Fatalf("the good client broke: %v", err)
	}
	if c, reply := socksDial(t, proxy, s5req(1, []byte{127, 0, 0, 1}, uint16(port))); !bytes.Equal(reply, s5rep(0)) {
		t.Fatalf("new client after garbage: reply % x", reply)
	} else if err := lineOver(c, "new"); err != nil {
		t.Fatal(err)
	}
	if st := f.Stats(); !strings.Contains(st.LastError, "SOCKS") || st.FailedConns == 0 {
		t.Fatalf("stats %+v: want the handshake failures counted", st)
	}
	if got := srv.Stats().DirectTCPIP; got != 2 {
		t.Fatalf("server saw %d channel opens, want 2 (garbage must open none)", got)
	}
}

// TestDynamicForwardNeverDialsBeforeRequest: a guard refusal, a handshake
// failure or Close mid-handshake opens no channel; Close leaves no goroutine.
func TestDynamicForwardNoDialWithoutRequest(t *testing.T) {
	base := steadyGoroutines()
	var dials int
	d := DialerFunc(func(ctx context.Context, host string, port int) (net.Conn, error) {
		dials++
		return nil, errors.New("must not dial")
	})
	g := &denyAll{}
	f, err := ListenDynamic(DynamicSpec{BindAddress: "127.0.0.1"}, d, DynamicOptions{Guard: g})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write(s5name("h", 1))
	expectGone(t, c)
	c.Close()
	waitFor(t, 5*time.Second, "the refusal to be counted", func() bool { return f.Stats().Refused == 1 })
	_ = f.Close()

	f, err = ListenDynamic(DynamicSpec{}, d, DynamicOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err = net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte{5, 1, 0, 5, 1}) // half a request
	waitFor(t, 5*time.Second, "the connection to be accepted", func() bool { return f.Stats().TotalConns == 1 })
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	expectGone(t, c)
	if dials != 0 {
		t.Fatalf("dialed %d times", dials)
	}
	settleGoroutines(t, base)
}

func TestListenDynamicErrors(t *testing.T) {
	d := DialerFunc(func(context.Context, string, int) (net.Conn, error) { return nil, errors.New("unused") })
	if _, err := ListenDynamic(DynamicSpec{BindPort: 70000}, d, DynamicOptions{}); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("ListenDynamic with port 70000 = %v, want ErrBadSpec", err)
	}
	if _, err := ListenDynamic(DynamicSpec{}, nil, DynamicOptions{}); err == nil {
		t.Fatal("ListenDynamic without a Dialer succeeded")
	}
	f := listenDynamic(t, d, DynamicOptions{})
	_, port := hostPort(t, f.Addr().String())
	if _, err := ListenDynamic(DynamicSpec{BindPort: port}, d, DynamicOptions{}); err == nil || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), "dynamic forward") {
		t.Fatalf("second listener on the same port = %v, want an 'in use' hint", err)
	}
}

// TestDynamicForwardRealSshd: OpenSSH's sshd says why a direct-tcpip open
// failed in words the reply codes are read from.
func TestDynamicForwardRealSshd(t *testing.T) {
	sshd := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"},
		ExtraConfig: []string{"PermitOpen localhost:* 127.0.0.1:*"}})
	s := newSession(t, sshd.Addr, sshd.ClientConfig(), SessionOptions{})
	ls := &lineServer{}
	be := newRawBackend(t, ls.handle)
	_, port := hostPort(t, be.Addr())
	f := listenDynamic(t, s, DynamicOptions{})
	proxy := f.Addr().String()
	for _, tc := range []struct {
		name string
		hs   []byte
		want []byte
	}{
		{"socks5 name", s5name("localhost", uint16(port)), s5rep(0)},
		{"socks5 refused", s5req(1, []byte{127, 0, 0, 1}, uint16(closedPort(t))), s5rep(0x05)},
		{"socks5 not permitted", s5req(4, net.IPv6loopback, uint16(port)), s5rep(0x02)},
		{"socks4a name", s4req(uint16(port), [4]byte{0, 0, 0, 1}, "", "localhost"), []byte{0, 0x5a, 0, 0, 0, 0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, reply := socksDial(t, proxy, tc.hs)
			if !bytes.Equal(reply, tc.want) {
				t.Fatalf("reply % x, want % x (last error: %s)", reply, tc.want, f.Stats().LastError)
			}
			if tc.want[1] == 0 || tc.want[1] == 0x5a {
				if err := lineOver(c, tc.name); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
