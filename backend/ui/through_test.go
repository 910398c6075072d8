package ui

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/porthole-app/porthole/backend/apps"
	"github.com/porthole-app/porthole/internal/testrig"
)

// TestAppsThroughTheServer: a web app that only the server can reach by
// name (the test SSH server's Hosts: names only it resolves; this machine
// cannot) opens through the server on a stable endpoint of its own, with
// the app's Host as the server dials it, cookies, and the forward back
// after a reconnect.
func TestAppsThroughTheServer(t *testing.T) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ssh.MarshalPrivateKey(k, "through test")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "id_through")
	if err := os.WriteFile(key, pem.EncodeToMemory(b), 0o600); err != nil {
		t.Fatal(err)
	}
	const name = "grafana.porthole-test.invalid" // .invalid: never resolves here
	srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{
		AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}, AllowExec: true,
		Hosts: map[string]string{name: "127.0.0.1"},
	})
	web := testrig.NewWebApp(t)
	r := newAppsRig(t, srv, key, nil, "")
	p := r.addServer(t, "gpu box")
	pp := strconv.Itoa(web.Port())

	if _, err := r.app.OpenThrough(p.ID, "http://"+name+":"+pp+"/"); HTTPStatus(err) != 409 {
		t.Fatalf("OpenThrough before Connect = %v, want a 409", err)
	}
	r.connect(t, p.ID)

	if _, err := r.app.ParseAppURL(p.ID, "http://"+name+":"+pp+"/"); HTTPStatus(err) != 400 || !strings.Contains(err.Error(), "Open it through gpu box") {
		t.Fatalf("ParseAppURL of a foreign host = %v; want a 400 offering to open it through the server", err)
	}

	o, err := r.app.OpenThrough(p.ID, "http://"+strings.ToUpper(name)+":"+pp+"/headers")
	if err != nil {
		t.Fatalf("OpenThrough: %v", err)
	}
	ap, err := netip.ParseAddrPort(strings.TrimPrefix(o.LocalOrigin, "http://"))
	if err != nil || !ap.Addr().IsLoopback() || ap.Addr() == netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("LocalOrigin %q: want the login's own loopback address", o.LocalOrigin)
	}
	if o.RemoteHost != name || o.RemoteURL != "http://"+name+":"+pp+"/headers" || o.Title != name+":"+pp || o.LocalURL != o.LocalOrigin+"/headers" || o.Port != web.Port() {
		t.Fatalf("OpenThrough = %+v", o)
	}
	br := newBrowser(t)
	code, body, hdr := fetch(t, br, o.LocalURL)
	var got map[string][]string
	if code != 200 || json.Unmarshal([]byte(body), &got) != nil {
		t.Fatalf("GET %s = %d %q", o.LocalURL, code, body)
	}
	if h := got["Host"]; len(h) != 1 || h[0] != name+":"+pp {
		t.Errorf("the app got Host %q, want %s:%s (the name the server dialed)", h, name, pp)
	}
	if !strings.Contains(hdr.Get("Content-Security-Policy"), "frame-ancestors") {
		t.Errorf("no frame-ancestors on the app's response: %v", hdr)
	}
	code, _, _ = fetch(t, br, o.LocalURL[:strings.Index(o.LocalURL, "/headers")]+"/cookie")
	code2, body2, _ := fetch(t, br, o.LocalOrigin+"/cookie")
	var c testrig.WebAppCookieReply
	if code != 200 || code2 != 200 || json.Unmarshal([]byte(body2), &c) != nil || c.Received == "" {
		t.Errorf("the session cookie did not come back: %d %d %q", code, code2, body2)
	}

	t.Run("the server's localhost app has its own endpoint", func(t *testing.T) {
		l, err := r.app.OpenApp(p.ID, web.Port(), "/small")
		if err != nil {
			t.Fatal(err)
		}
		if l.LocalOrigin == o.LocalOrigin || l.RemoteHost != "" {
			t.Errorf("OpenApp = %+v; want another endpoint than the app through the server (%s)", l, o.LocalOrigin)
		}
	})

	t.Run("the same endpoint again", func(t *testing.T) {
		again, err := r.app.OpenThrough(p.ID, name+"."+":"+pp+"/small")
		if err != nil || again.LocalOrigin != o.LocalOrigin {
			t.Fatalf("OpenThrough again = %+v, %v; want %s", again, err, o.LocalOrigin)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, raw := range []string{
			"https://" + name + "/", "http://u@" + name + ":" + pp + "/", "http://" + name + ":0/",
			"http://a..b:80/", "ftp://" + name + "/", "http://[fe80::1%25eth0]:80/",
		} {
			if _, err := r.app.OpenThrough(p.ID, raw); HTTPStatus(err) != 400 {
				t.Errorf("OpenThrough(%q) = %v, want a 400", raw, err)
			}
		}
		if _, err := r.app.OpenThrough(apps.LocalServerID, "http://"+name+"/"); HTTPStatus(err) != 400 {
			t.Errorf("OpenThrough(local) = %v, want a 400", err)
		}
	})

	t.Run("a name the server cannot resolve: the tab says why", func(t *testing.T) {
		bad, err := r.app.OpenThrough(p.ID, "http://nowhere.porthole-test.invalid:"+pp+"/")
		if err != nil {
			t.Fatalf("OpenThrough = %v; the forward listens, the page says what failed", err)
		}
		if code, body, _ := fetch(t, newBrowser(t), bad.LocalURL); code == 200 {
			t.Errorf("GET %s = %d %q; want an error page", bad.LocalURL, code, body)
		}
	})

	t.Run("disconnect and connect: the forward listens again on its endpoint", func(t *testing.T) {
		if _, err := r.app.Disconnect(p.ID); err != nil {
			t.Fatal(err)
		}
		r.connect(t, p.ID)
		code, body, _ := fetch(t, newBrowser(t), o.LocalOrigin+"/small")
		if code != 200 || body != "small\n" {
			t.Fatalf("GET /small after reconnecting = %d %q", code, body)
		}
	})
}
