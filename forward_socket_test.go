package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

// unixHTTPGet GETs path over the Unix socket at sock.
func unixHTTPGet(t *testing.T, sock, path string) string {
	t.Helper()
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := c.Get("http://unix" + path)
	if err != nil {
		t.Fatalf("GET %s over %s: %v", path, sock, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s over %s: %d %s", path, sock, resp.StatusCode, b)
	}
	return string(b)
}

// TestForwardUnixSockets: `porthole forward` takes the socket forms of -L
// and -R, several and mixed with TCP ones, against OpenSSH: a local port to
// a server socket, a local socket to a server port, and the server
// listening on a socket that reaches a local port.
func TestForwardUnixSockets(t *testing.T) {
	fakeHome(t)
	sshd := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}, ExtraConfig: []string{"SetEnv SHLVL=9"}})
	app := testrig.NewWebApp(t)
	// The app also on a Unix socket (the "server side" is this machine).
	appSock := filepath.Join(t.TempDir(), "app.sock")
	uln, err := net.Listen("unix", appSock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uln.Close() })
	go func() {
		for {
			c, err := uln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", app.Port()))
				if err != nil {
					return
				}
				defer tc.Close()
				go func() { _, _ = io.Copy(tc, c) }()
				_, _ = io.Copy(c, tc)
			}()
		}
	}()
	localSock := filepath.Join(t.TempDir(), "l.sock")
	remoteSock := filepath.Join(t.TempDir(), "r.sock")
	a := sshdArgs(sshd,
		"127.0.0.1:0:"+appSock,                                // local port → server socket
		fmt.Sprintf("%s:127.0.0.1:%d", localSock, app.Port()), // local socket → server port
		fmt.Sprintf("127.0.0.1:0:127.0.0.1:%d", app.Port()),   // plain TCP alongside
	)
	a.Remotes = []string{fmt.Sprintf("%s:127.0.0.1:%d", remoteSock, app.Port())}
	addrs := startForward(t, a)
	if len(addrs) != 3 {
		t.Fatalf("addrs %v, want 3", addrs)
	}
	if ua, ok := addrs[1].(*net.UnixAddr); !ok || ua.Name != localSock {
		t.Fatalf("addrs[1] = %#v, want the local socket %s", addrs[1], localSock)
	}
	if got := getBody(t, "http://"+addrs[0].String()+"/small"); got == "" {
		t.Fatal("empty body through local port → server socket")
	}
	if got := unixHTTPGet(t, localSock, "/small"); got == "" {
		t.Fatal("empty body through local socket → server port")
	}
	if got := getBody(t, "http://"+addrs[2].String()+"/small"); got == "" {
		t.Fatal("empty body through the TCP forward")
	}
	waitUntil(t, 30*time.Second, "the server's socket", func() bool {
		c, err := net.Dial("unix", remoteSock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if got := unixHTTPGet(t, remoteSock, "/small"); got == "" {
		t.Fatal("empty body through the server's socket → local port")
	}
	if n := app.Count("/small"); n != 4 {
		t.Fatalf("web app saw %d requests, want 4", n)
	}
}
