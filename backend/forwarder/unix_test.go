package forwarder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unixEcho is an echo server on a Unix socket in a temporary directory.
func unixEcho(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "echo.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	serveRawBackend(t, ln, func(c net.Conn) { _, _ = io.Copy(c, c) })
	return path
}

// echoOn is echoOnce on any network.
func echoOn(network, addr string, timeout time.Duration) error {
	c, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != "ping\n" {
		return fmt.Errorf("echo returned %q", got)
	}
	return nil
}

// TestUnixSocketRoundTrips forwards through a real sshd in each direction
// with sockets in temporary directories: local TCP → remote socket, local
// socket → remote TCP, local socket → remote socket, and the server
// listening on a socket with the target a local TCP port or socket.
func TestUnixSocketRoundTrips(t *testing.T) {
	sshd := remoteSshd(t)
	s := sshdSession(t, sshd, sshd.Addr, SessionOptions{})
	remoteSock := unixEcho(t)
	_, tcpPort := echoBackend(t)
	localSock := unixEcho(t)

	local := []struct {
		name string
		spec LocalSpec
	}{
		{"local tcp to remote unix", LocalSpec{TargetPath: remoteSock}},
		{"local unix to remote tcp", LocalSpec{BindPath: filepath.Join(t.TempDir(), "l.sock"), TargetHost: "127.0.0.1", TargetPort: tcpPort}},
		{"local unix to remote unix", LocalSpec{BindPath: filepath.Join(t.TempDir(), "l.sock"), TargetPath: remoteSock}},
	}
	for _, tc := range local {
		t.Run(tc.name, func(t *testing.T) {
			log, _ := testLogger(t)
			f, err := ListenLocal(tc.spec, s, LocalOptions{Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			network, addr := "tcp", f.Addr().String()
			if tc.spec.BindPath != "" {
				network = "unix"
				if addr != tc.spec.BindPath {
					t.Errorf("Addr = %q, want %q", addr, tc.spec.BindPath)
				}
				fi, err := os.Stat(addr)
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("socket mode: %v, %v; want 0600", fi, err)
				}
			}
			for i := range 3 {
				if err := echoOn(network, addr, 10*time.Second); err != nil {
					t.Fatalf("round trip %d: %v", i, err)
				}
			}
			waitFor(t, 10*time.Second, "the stats to count 3 connections", func() bool {
				st := f.Stats()
				return st.TotalConns == 3 && st.ActiveConns == 0 && st.BytesIn == 15 && st.BytesOut == 15
			})
			if st := f.Stats(); st.FailedConns != 0 {
				t.Errorf("stats %+v", st)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if tc.spec.BindPath != "" {
				if _, err := os.Lstat(tc.spec.BindPath); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the socket outlived Close: %v", err)
				}
			}
		})
	}

	remote := []struct {
		name string
		spec RemoteSpec
	}{
		{"remote unix listener to local tcp", RemoteSpec{BindPath: filepath.Join(t.TempDir(), "r.sock"), TargetHost: "127.0.0.1", TargetPort: tcpPort}},
		{"remote unix listener to local unix", RemoteSpec{BindPath: filepath.Join(t.TempDir(), "r.sock"), TargetPath: localSock}},
	}
	for _, tc := range remote {
		t.Run(tc.name, func(t *testing.T) {
			log, _ := testLogger(t)
			f := startRemote(t, s, tc.spec, RemoteOptions{Logger: log})
			st := waitListening(t, f, 20*time.Second)
			if !strings.Contains(st.Reason, tc.spec.BindPath) || f.Addr().String() != tc.spec.BindPath {
				t.Errorf("status %+v, Addr %v; want the socket path", st, f.Addr())
			}
			// The server is this machine: its socket is right here.
			for i := range 3 {
				if err := echoOn("unix", tc.spec.BindPath, 10*time.Second); err != nil {
					t.Fatalf("round trip %d: %v", i, err)
				}
			}
			waitFor(t, 10*time.Second, "the stats to count 3 connections", func() bool {
				st := f.Stats()
				return st.TotalConns == 3 && st.ActiveConns == 0
			})
			if st := f.Stats(); st.FailedConns != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestUnixSocketRefusedBySshd: with AllowStreamLocalForwarding no (or
// DisableForwarding yes) both directions fail with a message that names
// the setting.
func TestUnixSocketRefusedBySshd(t *testing.T) {
	for _, line := range []string{"AllowStreamLocalForwarding no", "DisableForwarding yes"} {
		t.Run(line, func(t *testing.T) {
			sshd := remoteSshd(t, line)
			s := sshdSession(t, sshd, sshd.Addr, SessionOptions{})
			remoteSock := unixEcho(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := s.DialUnix(ctx, remoteSock)
			if err == nil {
				c.Close()
				t.Fatal("DialUnix went through")
			}
			if !errors.Is(err, ErrChannelRefused) || !strings.Contains(err.Error(), "AllowStreamLocalForwarding no") || !strings.Contains(err.Error(), "DisableForwarding yes") {
				t.Fatalf("DialUnix error %q: want ErrChannelRefused naming the sshd settings", err)
			}
			// A missing socket is told apart.
			if _, err := s.DialUnix(ctx, remoteSock+".missing"); err == nil || !strings.Contains(err.Error(), "there is no Unix socket") {
				t.Errorf("DialUnix(missing) error %v", err)
			}

			log, _ := testLogger(t)
			f := startRemote(t, s, RemoteSpec{BindPath: filepath.Join(t.TempDir(), "r.sock"), TargetHost: "127.0.0.1", TargetPort: 1},
				RemoteOptions{Logger: log, Retry: Backoff{Initial: 50 * time.Millisecond, Max: 100 * time.Millisecond}})
			waitFor(t, 20*time.Second, "refused", func() bool { return f.Status().State == RemoteRefused })
			if r := f.Status().Reason; !strings.Contains(r, "AllowStreamLocalForwarding no") {
				t.Fatalf("reason %q names no sshd setting", r)
			}
		})
	}
}

// TestRemoteSocketPathExists: sshd does not bind over an existing path
// (StreamLocalBindUnlink no, the default); the forward says so, naming the
// setting, and leaves the file alone. With StreamLocalBindUnlink yes, sshd
// replaces it.
func TestRemoteSocketPathExists(t *testing.T) {
	_, tcpPort := echoBackend(t)
	for _, unlink := range []bool{false, true} {
		t.Run("StreamLocalBindUnlink="+strconv.FormatBool(unlink), func(t *testing.T) {
			var extra []string
			if unlink {
				extra = append(extra, "StreamLocalBindUnlink yes")
			}
			sshd := remoteSshd(t, extra...)
			s := sshdSession(t, sshd, sshd.Addr, SessionOptions{})
			path := filepath.Join(t.TempDir(), "left.sock")
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			ln.SetUnlinkOnClose(false)
			ln.Close() // a socket file left behind, like an earlier forward's
			log, _ := testLogger(t)
			f := startRemote(t, s, RemoteSpec{BindPath: path, TargetHost: "127.0.0.1", TargetPort: tcpPort},
				RemoteOptions{Logger: log, Retry: Backoff{Initial: 50 * time.Millisecond, Max: 100 * time.Millisecond}})
			if unlink {
				waitListening(t, f, 20*time.Second)
				if err := echoOn("unix", path, 10*time.Second); err != nil {
					t.Fatal(err)
				}
				return
			}
			waitFor(t, 20*time.Second, "waiting", func() bool { return f.Status().State == RemoteWaitingPort })
			if r := f.Status().Reason; !strings.Contains(r, "StreamLocalBindUnlink yes") || !strings.Contains(r, path) {
				t.Fatalf("reason %q does not explain the existing path", r)
			}
			if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSocket {
				t.Fatalf("the existing socket was touched: %v, %v", fi, err)
			}
		})
	}
}

// refuseDialer refuses every dial (the listener tests need no server).
var refuseDialer = DialerFunc(func(context.Context, string, int) (net.Conn, error) {
	return nil, errors.New("test: no server")
})

// TestLocalSocketPathTaken: an existing file that is not a stale socket of
// ours is refused with an error naming it and left intact; a stale socket
// of ours is replaced; a relative name lives in the runtime directory.
func TestLocalSocketPathTaken(t *testing.T) {
	spec := func(path string) LocalSpec { return LocalSpec{BindPath: path, TargetHost: "localhost", TargetPort: 80} }
	t.Run("regular file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "data.sock")
		if err := os.WriteFile(path, []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := ListenLocal(spec(path), refuseDialer, LocalOptions{})
		if err == nil {
			f.Close()
			t.Fatal("listened over a regular file")
		}
		if !errors.Is(err, ErrSocketPathTaken) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a socket") {
			t.Fatalf("error %q: want ErrSocketPathTaken naming %s", err, path)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "keep me" {
			t.Fatalf("the file changed: %q, %v", b, err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "d.sock")
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := ListenLocal(spec(path), refuseDialer, LocalOptions{}); !errors.Is(err, ErrSocketPathTaken) || !strings.Contains(err.Error(), "a directory") {
			t.Fatalf("error %v", err)
		}
		if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
			t.Fatalf("the directory changed: %v", err)
		}
	})
	t.Run("live socket", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "live.sock")
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if _, err := ListenLocal(spec(path), refuseDialer, LocalOptions{}); !errors.Is(err, ErrSocketPathTaken) || !strings.Contains(err.Error(), "accepts connections") {
			t.Fatalf("error %v", err)
		}
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatalf("the live socket was replaced: %v", err)
		}
		c.Close()
	})
	t.Run("stale socket of ours", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "stale.sock")
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		ln.Close()
		log, buf := testLogger(t)
		f, err := ListenLocal(spec(path), refuseDialer, LocalOptions{Logger: log})
		if err != nil {
			t.Fatalf("a stale socket of ours was not replaced: %v", err)
		}
		defer f.Close()
		if !strings.Contains(buf.String(), "replaced a stale socket") {
			t.Errorf("no log line about the replaced socket:\n%s", buf)
		}
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatalf("the new socket does not accept: %v", err)
		}
		c.Close()
	})
	t.Run("relative name", func(t *testing.T) {
		rt := t.TempDir()
		t.Setenv("XDG_RUNTIME_DIR", rt)
		s, err := ParseLocalSpec("docker.sock:/var/run/docker.sock")
		if err != nil {
			t.Fatal(err)
		}
		want := filepath.Join(rt, "porthole", "docker.sock")
		if s.BindPath != want || s.TargetPath != "/var/run/docker.sock" {
			t.Fatalf("parsed %+v, want BindPath %s", s, want)
		}
		f, err := ListenLocal(s, refuseDialer, LocalOptions{})
		if err == nil {
			defer f.Close()
		}
		// refuseDialer is no UnixDialer, but listening works all the same.
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(filepath.Dir(want)); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("socket dir: %v, %v; want mode 0700", fi, err)
		}
		if f.Addr().String() != want {
			t.Errorf("Addr %v, want %s", f.Addr(), want)
		}
	})
	t.Run("socket dir open to others", func(t *testing.T) {
		rt := t.TempDir()
		t.Setenv("XDG_RUNTIME_DIR", rt)
		if err := os.Mkdir(filepath.Join(rt, "porthole"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(rt, "porthole"), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := ListenLocal(spec("x.sock"), refuseDialer, LocalOptions{}); !errors.Is(err, ErrSocketPathTaken) || !strings.Contains(err.Error(), "open to other users") {
			t.Fatalf("error %v", err)
		}
	})
}

var socketSpecCases = []struct {
	name   string
	spec   string
	remote bool
	want   LocalSpec // for -R: the same fields
	bad    string
}{
	{name: "port to remote socket", spec: "2375:/var/run/docker.sock", want: LocalSpec{BindPort: 2375, TargetPath: "/var/run/docker.sock"}},
	{name: "bind port to remote socket", spec: "127.0.0.2:2375:/var/run/docker.sock", want: LocalSpec{BindAddress: "127.0.0.2", BindPort: 2375, TargetPath: "/var/run/docker.sock"}},
	{name: "ipv6 bind to remote socket", spec: "[::1]:0:/run/x.sock", want: LocalSpec{BindAddress: "::1", TargetPath: "/run/x.sock"}},
	{name: "local socket to tcp", spec: "/tmp/l.sock:localhost:5432", want: LocalSpec{BindPath: "/tmp/l.sock", TargetHost: "localhost", TargetPort: 5432}},
	{name: "local socket to ipv6", spec: "/tmp/l.sock:[::1]:80", want: LocalSpec{BindPath: "/tmp/l.sock", TargetHost: "::1", TargetPort: 80}},
	{name: "socket to socket", spec: "/tmp/l.sock:/var/run/postgresql/.s.PGSQL.5432", want: LocalSpec{BindPath: "/tmp/l.sock", TargetPath: "/var/run/postgresql/.s.PGSQL.5432"}},
	{name: "remote socket listener", spec: "/tmp/r.sock:localhost:80", remote: true, want: LocalSpec{BindPath: "/tmp/r.sock", TargetHost: "localhost", TargetPort: 80}},
	{name: "remote socket to local socket", spec: "/tmp/r.sock:/tmp/l.sock", remote: true, want: LocalSpec{BindPath: "/tmp/r.sock", TargetPath: "/tmp/l.sock"}},
	{name: "remote port to local socket", spec: "8080:/tmp/l.sock", remote: true, want: LocalSpec{BindPort: 8080, TargetPath: "/tmp/l.sock"}},

	{name: "relative remote target", spec: "2375:docker.sock", bad: "must be an absolute path"},
	{name: "relative remote listener", spec: "r.sock:localhost:80", remote: true, bad: "must be an absolute path"},
	{name: "socket in the middle", spec: "8080:/tmp/x:80", bad: "must be the listening end"},
	{name: "socket without target", spec: "/tmp/l.sock:8080", bad: "needs a target"},
	{name: "dot dot", spec: "2375:/var/../x.sock", bad: "contains '..'"},
	{name: "trailing slash", spec: "2375:/var/run/", bad: "ends with '/'"},
	{name: "too long", spec: "2375:/" + strings.Repeat("x", 120), bad: "longer than 107"},
	{name: "four fields", spec: "a:1:/x:2", bad: "must be the listening end"},
	{name: "relative name with a slash", spec: "a/b.sock:localhost:80", bad: "has no '/'"},
}

func TestParseSocketSpecs(t *testing.T) {
	for _, tc := range socketSpecCases {
		t.Run(tc.name, func(t *testing.T) {
			var got LocalSpec
			var err error
			var str string
			if tc.remote {
				var r RemoteSpec
				r, err = ParseRemoteSpec(tc.spec)
				got, str = r.local(), r.String()
				if err == nil {
					if again, err := ParseRemoteSpec(str); err != nil || again != r {
						t.Errorf("round trip via %q = %+v, %v", str, again, err)
					}
					if err := r.Validate(); err != nil {
						t.Errorf("Validate: %v", err)
					}
				}
			} else {
				got, err = ParseLocalSpec(tc.spec)
				str = got.String()
				if err == nil {
					if again, err := ParseLocalSpec(str); err != nil || again != got {
						t.Errorf("round trip via %q = %+v, %v", str, again, err)
					}
					if err := got.Validate(); err != nil {
						t.Errorf("Validate: %v", err)
					}
				}
			}
			if tc.bad != "" {
				if err == nil || !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), tc.bad) || !strings.Contains(err.Error(), strconv.Quote(tc.spec)) {
					t.Fatalf("parse %q = %+v, %v; want an error with %q", tc.spec, got, err, tc.bad)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parse %q = %+v, %v; want %+v", tc.spec, got, err, tc.want)
			}
			if str != tc.spec {
				t.Errorf("String() = %q, want %q", str, tc.spec)
			}
		})
	}
}

func TestParseStreamlocalOpen(t *testing.T) {
	p, err := parseStreamlocalOpen(append(streamlocalPayload("/tmp/a.sock"), 0, 0, 0, 0))
	if err != nil || p != "/tmp/a.sock" {
		t.Fatalf("= %q, %v", p, err)
	}
	for _, b := range [][]byte{nil, {0, 0}, {0, 0, 0, 9, 'a'}} {
		if _, err := parseStreamlocalOpen(b); err == nil {
			t.Errorf("%x parsed", b)
		}
	}
}

func FuzzParseSocketSpec(f *testing.F) {
	for _, tc := range socketSpecCases {
		f.Add(tc.spec, tc.remote)
	}
	f.Fuzz(func(t *testing.T, spec string, remote bool) {
		if remote {
			s, err := ParseRemoteSpec(spec)
			if err != nil {
				if !errors.Is(err, ErrBadSpec) {
					t.Fatalf("error %v does not wrap ErrBadSpec", err)
				}
				return
			}
			if err := s.Validate(); err != nil {
				t.Fatalf("parsed %q into an invalid spec: %v", spec, err)
			}
			if again, err := ParseRemoteSpec(s.String()); err != nil || again != s {
				t.Fatalf("round trip %q → %q: %+v, %v", spec, s.String(), again, err)
			}
			return
		}
		s, err := ParseLocalSpec(spec)
		if err != nil {
			if !errors.Is(err, ErrBadSpec) {
				t.Fatalf("error %v does not wrap ErrBadSpec", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("parsed %q into an invalid spec: %v", spec, err)
		}
		if again, err := ParseLocalSpec(s.String()); err != nil || again != s {
			t.Fatalf("round trip %q → %q: %+v, %v", spec, s.String(), again, err)
		}
	})
}
