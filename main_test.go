package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/portmap"
	"github.com/porthole-app/porthole/backend/ui"
)

func TestParseServeFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    serveFlags
		wantErr string
	}{
		{"defaults", nil, serveFlags{addr: ""}, ""}, // Porthole's own address, see serveListener
		{"addr and open", []string{"--addr", "127.0.0.1:8080", "--open"}, serveFlags{addr: "127.0.0.1:8080", open: true}, ""},
		{"unknown flag", []string{"--bogus"}, serveFlags{}, "flag provided but not defined: -bogus"},
		{"stray argument", []string{"extra"}, serveFlags{}, `unexpected argument "extra"`},
		{"not host:port", []string{"--addr", "8080"}, serveFlags{}, "is not host:port"},
		{"not loopback", []string{"--addr", "0.0.0.0:8080"}, serveFlags{}, "loopback address only"},
		{"hostname", []string{"--addr", "example.com:80"}, serveFlags{}, "loopback address only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseServeFlags(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errUsage) {
					t.Fatalf("err = %v, want one containing %q wrapping errUsage", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("error is not one line: %q", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestServeEndToEnd runs the real serve path (real App, real webui bridge, real
// listener) and checks the security rules and a method round trip.
func TestServeEndToEnd(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, serveFlags{}, pw, nil) }() // the default address
	t.Cleanup(func() {
		cancel()
		pr.Close()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("serve returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop within 10 s of cancel")
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	u, err := url.Parse(strings.TrimSpace(line))
	if err != nil || u.Scheme != "http" || !strings.HasPrefix(u.Fragment, "token=") {
		t.Fatalf("first line %q is not the URL with a token", line)
	}
	token := strings.TrimPrefix(u.Fragment, "token=")
	if h, _, _ := net.SplitHostPort(u.Host); h != wantServeHost(t) {
		t.Fatalf("serve listens on %s, want %s", u.Host, wantServeHost(t))
	}

	call := func(host, auth, origin string) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+u.Host+"/api/Version", strings.NewReader("[]"))
		if host != "" {
			req.Host = host
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	_, port, _ := net.SplitHostPort(u.Host)
	if code, _ := call("", "", ""); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _ := call("", "Bearer wrong", ""); code != 401 {
		t.Errorf("wrong token: %d, want 401", code)
	}
	if code, _ := call("evil.example:"+port, "Bearer "+token, ""); code != 403 {
		t.Errorf("Host evil.example: %d, want 403", code)
	}
	if code, _ := call("", "Bearer "+token, "http://evil.example"); code != 403 {
		t.Errorf("foreign Origin: %d, want 403", code)
	}
	code, body := call("", "Bearer "+token, "")
	var v ui.VersionInfo
	if code != 200 || json.Unmarshal([]byte(body), &v) != nil || v.Go == "" || v.Version == "" {
		t.Fatalf("Version: %d %s", code, body)
	}

	// A second serve on the same port fails with a message naming the holder.
	err = serve(context.Background(), serveFlags{addr: u.Host}, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "port "+port+" on this computer is held by") {
		t.Fatalf("second serve on %s: %v; want the holder named", u.Host, err)
	}
}

// wantServeHost is where serve listens by default here: Porthole's own
// address on Linux (all of 127/8 is loopback), else where it can be bound.
func wantServeHost(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "linux" {
		return portmap.ServeAddr().String()
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(portmap.ServeAddr().String(), "0"))
	if err != nil {
		return "127.0.0.1"
	}
	ln.Close()
	return portmap.ServeAddr().String()
}

// Serve's page has an IP of its own, so no other local page shares its
// site, the partition key of the apps' cookies in Chromium; any other
// address is served with a warning that names the risk.
func TestServeListener(t *testing.T) {
	for _, tc := range []struct {
		name, addr string
		wantHost   string // "": wantServeHost
		warn       bool
	}{
		{"default", "", "", false},
		{"own address given", portmap.ServeAddr().String() + ":0", portmap.ServeAddr().String(), false},
		{"127.0.0.1 given", "127.0.0.1:0", "127.0.0.1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantHost == "" {
				tc.wantHost = wantServeHost(t)
			}
			if tc.wantHost != "127.0.0.1" && runtime.GOOS != "linux" && wantServeHost(t) == "127.0.0.1" {
				t.Skipf("%v cannot be bound here", portmap.ServeAddr())
			}
			var logged strings.Builder
			log := slog.New(slog.NewTextHandler(&logged, nil))
			ln, err := serveListener(context.Background(), tc.addr, log)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			host, port, _ := net.SplitHostPort(ln.Addr().String())
			if host != tc.wantHost || port == "0" {
				t.Fatalf("listening on %s, want %s with a port", ln.Addr(), tc.wantHost)
			}
			warned := strings.Contains(logged.String(), "level=WARN") && strings.Contains(logged.String(), "cookie")
			if warned != (tc.warn || host != portmap.ServeAddr().String()) {
				t.Fatalf("warned %v, want %v; log: %s", warned, tc.warn, logged.String())
			}
			if n := strings.Count(logged.String(), "\n"); n > 1 {
				t.Fatalf("logged %d lines, want at most one: %s", n, logged.String())
			}
		})
	}
}
