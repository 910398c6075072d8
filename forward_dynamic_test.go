package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole-app/porthole/backend/sshconn"
	"github.com/porthole-app/porthole/internal/testrig"
)

// serverOnlyName resolves only on the test SSH server, never here.
const serverOnlyName = "only-on-server.test"

// inProcessServerArgs starts testrig's in-process SSH server, which resolves
// serverOnlyName to 127.0.0.1, and returns forward args for it (key file,
// known_hosts) with the given forwards.
func inProcessServerArgs(t *testing.T, locals, dynamics []string) forwardArgs {
	t.Helper()
	home := fakeHome(t)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(home, "id_ed25519")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{
		AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()},
		Hosts:          map[string]string{serverOnlyName: "127.0.0.1"},
	})
	knownHosts := filepath.Join(home, "known_hosts")
	if err := sshconn.AppendKnownHost(knownHosts, srv.Addr(), srv.HostKey(), false); err != nil {
		t.Fatal(err)
	}
	host, port := splitAddr(t, srv.Addr())
	return forwardArgs{
		Locals:      locals,
		Dynamics:    dynamics,
		Identities:  []string{keyPath},
		Port:        port,
		Options:     map[string]string{"userknownhostsfile": knownHosts, "stricthostkeychecking": "yes"},
		Destination: srv.User() + "@" + host,
	}
}

func splitAddr(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if _, err := fmt.Sscan(p, &n); err != nil {
		t.Fatal(err)
	}
	return h, n
}

// curlVia fetches url through a SOCKS proxy with curl (proxyFlag is
// --socks5-hostname or --socks4a: the name goes to the proxy unresolved).
func curlVia(t *testing.T, proxyFlag, proxy, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", "--silent", "--show-error", "--fail", "--max-time", "20", "--noproxy", "", proxyFlag, proxy, url)
	cmd.Env = append(os.Environ(), "ALL_PROXY=", "all_proxy=", "HTTP_PROXY=", "http_proxy=")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("curl %s %s %s: %v: %s", proxyFlag, proxy, url, err, stderr)
	}
	return string(out)
}

// TestForwardDynamic: `porthole forward -L … -D 127.0.0.1:0` — curl through
// the SOCKS proxy (SOCKS5 with the name sent to the proxy, and SOCKS4a)
// reaches a name only the server can resolve; a client speaking garbage is
// closed and disturbs neither forward.
func TestForwardDynamic(t *testing.T) {
	app := testrig.NewWebApp(t)
	a := inProcessServerArgs(t, []string{fmt.Sprintf("127.0.0.1:0:127.0.0.1:%d", app.Port())}, []string{"127.0.0.1:0"})
	addrs := startForward(t, a)
	if len(addrs) != 2 {
		t.Fatalf("ready with %d addresses, want 2 (-L then -D)", len(addrs))
	}
	local, proxy := addrs[0].String(), addrs[1].String()
	target := fmt.Sprintf("http://%s:%d/small", serverOnlyName, app.Port())
	haveCurl := true
	if _, err := exec.LookPath("curl"); err != nil {
		haveCurl = false
	}
	get := func(t *testing.T, socks4a bool) string {
		if haveCurl {
			flag := "--socks5-hostname"
			if socks4a {
				flag = "--socks4a"
			}
			return curlVia(t, flag, proxy, target)
		}
		if socks4a {
			t.Skip("curl is not installed; Go's client speaks no SOCKS4a")
		}
		tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "socks5h", Host: proxy}), DisableKeepAlives: true}
		resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get(target)
		if err != nil {
			t.Fatalf("GET %s through SOCKS5: %v", target, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	t.Run("socks5 hostname", func(t *testing.T) {
		before := app.Count("/small")
		if body := get(t, false); body == "" {
			t.Fatal("empty body through the SOCKS5 proxy")
		}
		if app.Count("/small") != before+1 {
			t.Fatal("the request did not reach the web app")
		}
	})
	t.Run("socks4a", func(t *testing.T) {
		before := app.Count("/small")
		if body := get(t, true); body == "" {
			t.Fatal("empty body through the SOCKS4a proxy")
		}
		if app.Count("/small") != before+1 {
			t.Fatal("the request did not reach the web app")
		}
	})
	t.Run("garbage client", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", proxy, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET http://"+serverOnlyName+"/ HTTP/1.1\r\nHost: "+serverOnlyName+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil || len(b) != 0 {
			t.Fatalf("an HTTP request to the SOCKS port got % x, %v; want the connection closed without a reply", b, err)
		}
		before := app.Count("/small")
		getBody(t, "http://"+local+"/small")
		if get(t, false) == "" || app.Count("/small") != before+2 {
			t.Fatal("the forwards did not keep working after the garbage client")
		}
	})
}

func TestForwardDynamicBadSpec(t *testing.T) {
	for _, spec := range []string{"socks", "1:2:3", "70000", "[1080]"} {
		if err := runForward([]string{"-D", spec, "host"}); !errors.Is(err, errUsage) {
			t.Errorf("runForward -D %q = %v, want a usage error", spec, err)
		}
	}
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	a := forwardArgs{Dynamics: []string{held.Addr().String()}, Options: map[string]string{}, Destination: "127.0.0.1"}
	fakeHome(t)
	err = forward(context.Background(), a, nil, nil, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "-D "+held.Addr().String()) || !strings.Contains(err.Error(), "is held by") {
		t.Fatalf("err = %v; want the -D spec and the port's holder named", err)
	}
}
