package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/ui"
)

func TestParseServeFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    serveFlags
		wantErr string
	}{
		{"defaults", nil, serveFlags{addr: "127.0.0.1:0"}, ""},
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
	go func() { done <- serve(ctx, serveFlags{addr: "127.0.0.1:0"}, pw, nil) }()
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
	if h, _, _ := net.SplitHostPort(u.Host); h != "127.0.0.1" {
		t.Fatalf("serve listens on %s, want 127.0.0.1", u.Host)
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
