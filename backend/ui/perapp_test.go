package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/porthole-app/porthole/backend/apps"
	"github.com/porthole-app/porthole/internal/testrig"
)

// cookieRound asks an app's /cookie with browser b and returns the reply.
func cookieRound(t *testing.T, b *http.Client, origin string) testrig.WebAppCookieReply {
	t.Helper()
	var r testrig.WebAppCookieReply
	_, body, _ := fetch(t, b, origin+"/cookie")
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("%s/cookie: %v (%q)", origin, err, body)
	}
	return r
}

func hostOf(t *testing.T, origin string) string {
	t.Helper()
	u, err := url.Parse(origin)
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname()
}

// TestTwoAppsOneServerCookiesApart (issue 15): two apps of one server
// (ports A and B) open on addresses of their own, so a cookie that A sets
// never reaches B through a cookie jar that, like a browser's, keeps
// cookies per host and ignores ports (RFC 6265). With "separate cookies per
// app" off, new apps share the server's address, and the same jar carries
// A's cookie to them: the clash the setting avoids. The endpoints made
// before keep their addresses either way.
func TestTwoAppsOneServerCookiesApart(t *testing.T) {
	srv, key := appsServer(t)
	webA, webB := startWebAppProc(t), startWebAppProc(t)
	r := newAppsRig(t, srv, key, webA, "")
	p := r.addServer(t, "gpu box")
	r.connect(t, p.ID)
	if !r.app.settings.Get().Defaults.CookiesPerApp {
		t.Fatal("separate cookies per app is off by default")
	}
	oa, err := r.app.OpenApp(p.ID, webA.port, "/")
	if err != nil {
		t.Fatal(err)
	}
	ob, err := r.app.OpenApp(p.ID, webB.port, "/")
	if err != nil {
		t.Fatal(err)
	}
	if hostOf(t, oa.LocalOrigin) == hostOf(t, ob.LocalOrigin) {
		t.Fatalf("both apps of one server on %s: their cookies would mix", hostOf(t, oa.LocalOrigin))
	}
	jar := newBrowser(t)
	ca := cookieRound(t, jar, oa.LocalOrigin)
	cb := cookieRound(t, jar, ob.LocalOrigin)
	ca2 := cookieRound(t, jar, oa.LocalOrigin)
	if ca.Session == "" || cb.Received != "" || strings.Contains(cb.Cookie, ca.Session) || ca2.Received != ca.Session || cb.Session == ca.Session {
		t.Fatalf("cookies mixed: A set %q; B received %q (Cookie %q); A got back %q", ca.Session, cb.Received, cb.Cookie, ca2.Received)
	}

	// Off: a third and fourth app (two more ports of the same apps, opened
	// through the same forward kind) share the login's address.
	s := r.app.settings.Get().Defaults
	s.CookiesPerApp = false
	if _, err := r.app.SetServerDefaults(s); err != nil {
		t.Fatal(err)
	}
	webC, webD := startWebAppProc(t), startWebAppProc(t)
	oc, err := r.app.OpenApp(p.ID, webC.port, "/")
	if err != nil {
		t.Fatal(err)
	}
	od, err := r.app.OpenApp(p.ID, webD.port, "/")
	if err != nil {
		t.Fatal(err)
	}
	if hc, hd := hostOf(t, oc.LocalOrigin), hostOf(t, od.LocalOrigin); hc != hd || hc == "127.0.0.1" || hc == hostOf(t, oa.LocalOrigin) {
		t.Fatalf("per-app off: C on %s, D on %s; want both on the server's own address", hc, hd)
	}
	if oc.Notice != "" || !strings.Contains(od.Notice, "shares the address "+hostOf(t, oc.LocalOrigin)) || !strings.Contains(od.Notice, fmt.Sprintf("port %d", webC.port)) {
		t.Errorf("per-app off: notices C %q, D %q; want D's to name C's port and the shared address", oc.Notice, od.Notice)
	}
	if oa.Notice != "" || ob.Notice != "" {
		t.Errorf("apps on their own addresses: notices %q, %q; want none", oa.Notice, ob.Notice)
	}
	jar2 := newBrowser(t)
	cc := cookieRound(t, jar2, oc.LocalOrigin)
	if cd := cookieRound(t, jar2, od.LocalOrigin); cd.Received != cc.Session {
		t.Fatalf("per-app off: D received %q, want C's %q (one host, one cookie jar entry)", cd.Received, cc.Session)
	}
	// A and B keep their addresses (their logins survive the switch).
	for _, c := range []struct {
		port int
		was  apps.OpenedApp
	}{{webA.port, oa}, {webB.port, ob}} {
		again, err := r.app.OpenApp(p.ID, c.port, "/")
		if err != nil || again.LocalOrigin != c.was.LocalOrigin {
			t.Fatalf("port %d after the switch: %+v, %v; want still on %s", c.port, again, err, c.was.LocalOrigin)
		}
	}
}
