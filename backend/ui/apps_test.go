package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/porthole-app/porthole/backend/apps"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/porthole-app/porthole/backend/discovery"
	"github.com/porthole-app/porthole/internal/testrig"
)

func findService(list apps.AppList, port int) (apps.AppService, bool) {
	for _, s := range list.Services {
		if s.Port == port {
			return s, true
		}
	}
	return apps.AppService{}, false
}

// TestAppsOnAServer runs the whole path on one server login in an agent:
// discovery over SSH, a web forward on the stable endpoint, the app through
// it (page, cookie, websocket), URL parsing, raw forwards, and forwards that
// come back after a reconnect and after a restart of Porthole.
func TestAppsOnAServer(t *testing.T) {
	srv, key := appsServer(t)
	web := startWebAppProc(t)
	r := newAppsRig(t, srv, key, web, "")
	p := r.addServer(t, "gpu box")

	t.Run("not connected: 409, unknown server: 404", func(t *testing.T) {
		_, err := r.app.ListApps(p.ID)
		if HTTPStatus(err) != 409 || !strings.Contains(err.Error(), "Connect to gpu box first") {
			t.Fatalf("ListApps before Connect = %v (status %d)", err, HTTPStatus(err))
		}
		if _, err := r.app.OpenApp(p.ID, web.port, "/"); HTTPStatus(err) != 409 {
			t.Fatalf("OpenApp before Connect = %v", err)
		}
		if _, err := r.app.ListApps("nope"); HTTPStatus(err) != 404 {
			t.Fatalf("ListApps of an unknown server = %v", err)
		}
	})
	r.connect(t, p.ID)

	// A fake Jupyter on the web app's port, with a token: before any
	// listing the port's kind is unknown, so OpenApp looks for a token.
	const token = "s3cret-jupyter-token"
	r.app.apps.SetJupyterLookup(func(_ *discovery.Scanner, _ context.Context, port int) (discovery.JupyterServer, bool, error) {
		return discovery.JupyterServer{Port: web.port, BaseURL: "/", Token: token}, port == web.port, nil
	})
	var first apps.OpenedApp
	t.Run("OpenApp of an unlisted port: endpoint, forward, Jupyter token", func(t *testing.T) {
		o, err := r.app.OpenApp(p.ID, web.port, "/lab?x=1")
		if err != nil {
			t.Fatalf("OpenApp: %v", err)
		}
		ap, err := netip.ParseAddrPort(strings.TrimPrefix(o.LocalOrigin, "http://"))
		if err != nil || !ap.Addr().IsLoopback() || ap.Addr() == netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("LocalOrigin %q: want the app's own loopback address (127.N.A.1)", o.LocalOrigin)
		}
		if int(ap.Port()) != web.port {
			t.Errorf("local port %d, want the remote port %d (free here)", ap.Port(), web.port)
		}
		if want := o.LocalOrigin + "/lab?x=1&token=" + token; o.LocalURL != want {
			t.Errorf("LocalURL = %q, want %q", o.LocalURL, want)
		}
		if want := fmt.Sprintf("http://localhost:%d/lab?x=1", web.port); o.RemoteURL != want {
			t.Errorf("RemoteURL = %q, want %q (without the token)", o.RemoteURL, want)
		}
		if o.ServerID != p.ID || o.Port != web.port || o.Title != fmt.Sprintf("localhost:%d", web.port) || o.Notice != "" {
			t.Errorf("OpenApp = %+v", o)
		}
		first = o
	})
	r.app.apps.SetJupyterLookup(nil)

	t.Run("the app works through the endpoint: page, headers, cookie, websocket", func(t *testing.T) {
		b := newBrowser(t)
		code, body, h := fetch(t, b, first.LocalOrigin+"/")
		if code != 200 || !strings.Contains(body, testrig.WebAppTitle) {
			t.Fatalf("GET / = %d %q", code, body)
		}
		if h.Get("X-Frame-Options") != "" {
			t.Errorf("X-Frame-Options %q reached the browser", h.Get("X-Frame-Options"))
		}
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"frame-ancestors 'self'", "http://127.0.0.1:9", "http://localhost:9"} {
			if !strings.Contains(csp, want) {
				t.Errorf("CSP %q lacks %q: serve's page must be able to frame the app", csp, want)
			}
		}
		// Only the running mode's own page may frame it: in serve mode not
		// the desktop window's origins (issue 14, finding 10).
		for _, not := range []string{"wails://wails", "wails.localhost"} {
			if strings.Contains(csp, not) {
				t.Errorf("CSP %q names %q in serve mode", csp, not)
			}
		}
		_, body, _ = fetch(t, b, first.LocalOrigin+"/headers")
		var hdr map[string][]string
		_ = json.Unmarshal([]byte(body), &hdr)
		if h := hdr["Host"]; len(h) != 1 || h[0] != fmt.Sprintf("localhost:%d", web.port) {
			t.Errorf("the app saw Host %v, want localhost:%d", hdr["Host"], web.port)
		}
		var c1, c2 testrig.WebAppCookieReply
		_, body, _ = fetch(t, b, first.LocalOrigin+"/cookie")
		_ = json.Unmarshal([]byte(body), &c1)
		_, body, _ = fetch(t, b, first.LocalOrigin+"/cookie")
		_ = json.Unmarshal([]byte(body), &c2)
		if c1.Session == "" || c2.Received != c1.Session {
			t.Errorf("cookie: set %q, sent back %q; want the session kept", c1.Session, c2.Received)
		}
		ws, resp, err := websocket.DefaultDialer.Dial("ws://"+strings.TrimPrefix(first.LocalOrigin, "http://")+"/ws", http.Header{"Origin": {first.LocalOrigin}})
		if err != nil {
			t.Fatalf("websocket: %v (%v)", err, resp)
		}
		defer ws.Close()
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := ws.WriteMessage(websocket.TextMessage, []byte("ping through porthole")); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != "ping through porthole" {
			t.Fatalf("websocket echo = %q, %v", msg, err)
		}
	})

	t.Run("ListApps: the web app with its process and local URL; Porthole's own listeners hidden", func(t *testing.T) {
		list, err := r.app.ListApps(p.ID)
		if err != nil || list.Error != "" {
			t.Fatalf("ListApps = %+v, %v", list, err)
		}
		if list.ServerID != p.ID || list.ScannedAt.IsZero() || time.Since(list.ScannedAt) > time.Minute {
			t.Errorf("list header = %q %v", list.ServerID, list.ScannedAt)
		}
		s, ok := findService(list, web.port)
		if !ok {
			t.Fatalf("port %d not listed: %+v", web.port, list.Services)
		}
		if !s.IsWeb || s.Kind != discovery.KindHTTP || s.KindName != "Web app" || s.Process == nil || s.Process.Name != "testwebapp" || s.OpenPath != "/" {
			t.Errorf("service = %+v (process %+v)", s, s.Process)
		}
		if s.LocalURL != first.LocalOrigin+"/" || s.Local {
			t.Errorf("localUrl %q local %v; want the forward's %s/", s.LocalURL, s.Local, first.LocalOrigin)
		}
		ep := strings.TrimPrefix(first.LocalOrigin, "http://")
		_, sshPort, _ := net.SplitHostPort(srv.Addr())
		for _, s := range list.Services {
			if strconv.Itoa(s.Port) == sshPort || s.Kind == discovery.KindJupyterKernel {
				t.Errorf("listed %+v: a listener of Porthole's own (or a kernel)", s)
			}
			if s.Process != nil && strings.HasPrefix(filepath.Base(strings.Fields(s.Process.Cmdline + " x")[0]), "porthole") {
				t.Errorf("listed Porthole's own process: %+v", s.Process)
			}
		}
		b, _ := json.Marshal(list)
		if strings.Contains(string(b), `"port":`+strings.Split(ep, ":")[1]+`,"kind":"unknown"`) {
			t.Errorf("the forward's own endpoint is listed: %s", b)
		}
		for _, key := range []string{`"serverId"`, `"services"`, `"scannedAt"`, `"kind":"http"`, `"kindName"`, `"isWeb":true`, `"openPath"`, `"process":{"pid"`, `"local":false`, `"localUrl"`} {
			if !strings.Contains(string(b), key) {
				t.Errorf("AppList JSON lacks %s: %s", key, b)
			}
		}
		// Exactly one event carries the new list (the notifier's baseline
		// listing right after Connect may have published an older one).
		b0, _ := json.Marshal(list.Services)
		if n := r.rec.count(apps.TopicApps.Name(), func(d any) bool {
			l := d.(apps.AppList)
			bl, _ := json.Marshal(l.Services)
			return l.ServerID == p.ID && string(bl) == string(b0)
		}); n != 1 {
			t.Errorf("%d apps events with the new list; want one", n)
		}
		n := r.rec.count(apps.TopicApps.Name(), nil)
		// Other programs on this machine may come and go between scans:
		// an event is due exactly when the list changed.
		again, err := r.app.ListApps(p.ID)
		if err != nil {
			t.Fatal(err)
		}
		b1, _ := json.Marshal(list.Services)
		b2, _ := json.Marshal(again.Services)
		want := n
		if string(b1) != string(b2) {
			want++
		}
		if got := r.rec.count(apps.TopicApps.Name(), nil); got != want {
			t.Errorf("%d apps events after a rescan (changed: %v); want %d", got, want != n, want)
		}
	})

	t.Run("OpenApp again keeps the forward; the default path is the listed one", func(t *testing.T) {
		o, err := r.app.OpenApp(p.ID, web.port, "")
		if err != nil {
			t.Fatal(err)
		}
		if o.LocalOrigin != first.LocalOrigin || o.LocalURL != first.LocalOrigin+"/" || o.Title != testrig.WebAppTitle && !strings.Contains(o.Title, "test app") {
			t.Errorf("OpenApp again = %+v; want %s/ titled from discovery", o, first.LocalOrigin)
		}
		if r.app.Status().Forwards != 1 {
			t.Errorf("Status().Forwards = %d, want 1", r.app.Status().Forwards)
		}
	})

	t.Run("bad arguments are 400s", func(t *testing.T) {
		for _, tc := range []struct {
			port int
			path string
		}{{0, "/"}, {70000, "/"}, {web.port, "lab"}, {web.port, "//evil.example/"}, {web.port, "/a b"}, {web.port, "/a\\b"}} {
			if _, err := r.app.OpenApp(p.ID, tc.port, tc.path); HTTPStatus(err) != 400 {
				t.Errorf("OpenApp(%d, %q) = %v, want a 400", tc.port, tc.path, err)
			}
		}
	})

	hostname, _ := os.Hostname()
	t.Run("ParseAppURL", func(t *testing.T) {
		pp := strconv.Itoa(web.port)
		tests := []struct {
			name, raw string
			status    int    // 0: opens
			path      string // the path opened
		}{
			{"localhost with token", "http://localhost:" + pp + "/lab?token=abc", 0, "/lab?token=abc"},
			{"127.0.0.1", "http://127.0.0.1:" + pp + "/tree", 0, "/tree"},
			{"0.0.0.0", "http://0.0.0.0:" + pp + "/", 0, "/"},
			{"[::1]", "http://[::1]:" + pp + "/x#frag", 0, "/x#frag"},
			{"no scheme", "localhost:" + pp, 0, "/"},
			{"the profile's host", "http://" + p.Host + ":" + pp + "/p", 0, "/p"},
			{"the server's hostname", "http://" + hostname + ":" + pp + "/h", 0, "/h"},
			{"a foreign host", "http://example.com:" + pp + "/", 400, ""},
			{"https", "https://localhost:" + pp + "/", 400, ""},
			{"not a URL", "http://", 400, ""},
			{"ftp", "ftp://localhost:21/", 400, ""},
			{"bad port", "http://localhost:99999/", 400, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				o, err := r.app.ParseAppURL(p.ID, tt.raw)
				if tt.status != 0 {
					if HTTPStatus(err) != tt.status {
						t.Fatalf("ParseAppURL(%q) = %+v, %v; want a %d", tt.raw, o, err, tt.status)
					}
					if tt.name == "a foreign host" && !strings.Contains(err.Error(), "is not on gpu box's localhost") {
						t.Errorf("message %q does not say it is not on the server's localhost", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("ParseAppURL(%q) = %v", tt.raw, err)
				}
				if o.LocalURL != first.LocalOrigin+tt.path || o.RemoteURL != "http://localhost:"+pp+tt.path || o.Port != web.port {
					t.Errorf("ParseAppURL(%q) = %+v; want %s%s", tt.raw, o, first.LocalOrigin, tt.path)
				}
			})
		}
	})

	t.Run("ForwardPort: a raw forward on a stable endpoint", func(t *testing.T) {
		_, sshPort, _ := net.SplitHostPort(srv.Addr())
		port, _ := strconv.Atoi(sshPort)
		rf, err := r.app.ForwardPort(p.ID, port)
		if err != nil {
			t.Fatal(err)
		}
		// An address of its own in the login's block (separate cookies per
		// app, on by default): 127.N.A.1 with the web app's N.
		host, _, _ := net.SplitHostPort(rf.LocalAddr)
		appHost := strings.Split(strings.TrimPrefix(first.LocalOrigin, "http://"), ":")[0]
		if host == appHost || strings.Split(host, ".")[1] != strings.Split(appHost, ".")[1] || rf.Hint != "connect to "+rf.LocalAddr {
			t.Errorf("ForwardPort = %+v; want an address of its own in the block of %s, and a plain hint", rf, appHost)
		}
		c, err := net.DialTimeout("tcp", rf.LocalAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 8)
		if _, err := c.Read(buf); err != nil || string(buf[:7]) != "SSH-2.0" {
			t.Fatalf("through the raw forward: %q, %v; want the SSH banner", buf, err)
		}
		again, err := r.app.ForwardPort(p.ID, port)
		if err != nil || again.LocalAddr != rf.LocalAddr {
			t.Errorf("ForwardPort again = %+v, %v; want the same endpoint", again, err)
		}
		if _, err := r.app.ForwardPort(p.ID, web.port); HTTPStatus(err) != 409 {
			t.Errorf("ForwardPort of the port open in a tab = %v, want a 409", err)
		}
	})

	t.Run("an HTTPS app opens through a raw forward, TLS end to end", func(t *testing.T) {
		tlsApp := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "tls ok") }))
		tlsApp.Config.ErrorLog = log.New(io.Discard, "", 0) // the channel pool's probes
		tlsApp.StartTLS()
		defer tlsApp.Close()
		port := tlsApp.Listener.Addr().(*net.TCPAddr).Port
		// As if the last listing had found it (it runs in this test process,
		// which the listing hides as one of Porthole's own).
		r.app.apps.NoteService(p.ID, discovery.Service{Port: port, Kind: discovery.KindHTTPS, IsWeb: true, TLS: true, OpenPath: "/", DialHost: "127.0.0.1", Title: "HTTPS"})
		o, err := r.app.OpenApp(p.ID, port, "")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(o.LocalURL, "https://127.") || o.RemoteURL != fmt.Sprintf("https://localhost:%d/", port) || !strings.Contains(o.Notice, "HTTPS") {
			t.Fatalf("OpenApp of an HTTPS app = %+v", o)
		}
		c := tlsApp.Client() // trusts the test certificate, made out to 127.0.0.1 (the server's name for it)
		c.Timeout = 10 * time.Second
		c.Transport.(*http.Transport).TLSClientConfig.ServerName = "127.0.0.1"
		resp, err := c.Get(o.LocalURL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "tls ok" {
			t.Fatalf("through the forward: %q", b)
		}
	})

	t.Run("a dropped SSH connection: the app answers again, no manual action", func(t *testing.T) {
		srv.DropAll()
		b := newBrowser(t)
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, body, _ := fetch(t, b, first.LocalOrigin+"/small")
			if code == 200 && body == "small\n" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET /small after the drop = %d %q", code, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("disconnect and connect: the forwards listen again on the same endpoints", func(t *testing.T) {
		if _, err := r.app.Disconnect(p.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := r.app.ListApps(p.ID); HTTPStatus(err) != 409 {
			t.Fatalf("ListApps after Disconnect = %v, want a 409", err)
		}
		r.connect(t, p.ID)
		code, body, _ := fetch(t, newBrowser(t), first.LocalOrigin+"/small")
		if code != 200 || body != "small\n" {
			t.Fatalf("GET /small after reconnecting = %d %q", code, body)
		}
	})

	t.Run("a restart of Porthole opens the app on the same endpoint", func(t *testing.T) {
		r.quit()
		if c, err := net.DialTimeout("tcp", strings.TrimPrefix(first.LocalOrigin, "http://"), time.Second); err == nil {
			c.Close()
			t.Fatal("the forward still listens after Porthole quit")
		}
		r2 := newAppsRig(t, srv, key, web, r.home)
		r2.connect(t, p.ID)
		o, err := r2.app.OpenApp(p.ID, web.port, "/")
		if err != nil || o.LocalOrigin != first.LocalOrigin {
			t.Fatalf("OpenApp after a restart = %+v, %v; want %s again", o, err, first.LocalOrigin)
		}
	})
}

// TestTwoLoginsSameRemotePort: two servers with an app on the same remote
// port get different loopback addresses, so their cookies never mix.
func TestTwoLoginsSameRemotePort(t *testing.T) {
	srv, key := appsServer(t)
	web := startWebAppProc(t)
	r := newAppsRig(t, srv, key, web, "")
	a, b := r.addServer(t, "a"), r.addServer(t, "b")
	r.connect(t, a.ID)
	r.connect(t, b.ID)
	oa, err := r.app.OpenApp(a.ID, web.port, "/")
	if err != nil {
		t.Fatal(err)
	}
	ob, err := r.app.OpenApp(b.ID, web.port, "/")
	if err != nil {
		t.Fatal(err)
	}
	ua, _ := url.Parse(oa.LocalOrigin)
	ub, _ := url.Parse(ob.LocalOrigin)
	if ua.Hostname() == ub.Hostname() {
		t.Fatalf("both logins on %s: cookies would collide", ua.Hostname())
	}
	br := newBrowser(t)
	var ca, cb, ca2 testrig.WebAppCookieReply
	_, body, _ := fetch(t, br, oa.LocalOrigin+"/cookie")
	_ = json.Unmarshal([]byte(body), &ca)
	_, body, _ = fetch(t, br, ob.LocalOrigin+"/cookie")
	_ = json.Unmarshal([]byte(body), &cb)
	_, body, _ = fetch(t, br, oa.LocalOrigin+"/cookie")
	_ = json.Unmarshal([]byte(body), &ca2)
	if cb.Received != "" || ca2.Received != ca.Session || ca.Session == cb.Session {
		t.Fatalf("cookies mixed: a set %q, b received %q, a received %q", ca.Session, cb.Received, ca2.Received)
	}
}

// TestAppsOnThisComputer: "local" lists this computer's apps and opens
// them directly, without forwards.
func TestAppsOnThisComputer(t *testing.T) {
	srv, key := appsServer(t)
	web := startWebAppProc(t)
	r := newAppsRig(t, srv, key, web, "")
	_, sshPort, _ := net.SplitHostPort(srv.Addr())
	list, err := r.app.ListApps(apps.LocalServerID)
	if err != nil || list.ServerID != apps.LocalServerID {
		t.Fatalf("ListApps(local) = %+v, %v", list, err)
	}
	s, ok := findService(list, web.port)
	if !ok {
		t.Fatalf("the web app (port %d) is not listed: %+v", web.port, list.Services)
	}
	if !s.Local || !s.IsWeb || s.LocalURL != fmt.Sprintf("http://127.0.0.1:%d/", web.port) {
		t.Errorf("service = %+v", s)
	}
	if _, ok := findService(list, atoi(sshPort)); ok {
		t.Errorf("this test's own listener (a Porthole process) is listed")
	}
	o, err := r.app.OpenApp(apps.LocalServerID, web.port, "/x?y=1")
	if err != nil || o.LocalURL != fmt.Sprintf("http://127.0.0.1:%d/x?y=1", web.port) || o.Notice != "" {
		t.Fatalf("OpenApp(local) = %+v, %v", o, err)
	}
	if r.app.Status().Forwards != 0 {
		t.Errorf("a local app got a forward")
	}
	if _, err := r.app.ParseAppURL(apps.LocalServerID, "http://example.org/"); HTTPStatus(err) != 400 {
		t.Errorf("ParseAppURL(local, foreign) = %v, want a 400", err)
	}
	rf, err := r.app.ForwardPort(apps.LocalServerID, 5432)
	if err != nil || rf.LocalAddr != "127.0.0.1:5432" || rf.Hint != "psql -h 127.0.0.1 -p 5432" {
		t.Errorf("ForwardPort(local) = %+v, %v", rf, err)
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
