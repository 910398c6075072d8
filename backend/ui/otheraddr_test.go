package ui

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/apps"
	"github.com/porthole-app/porthole/backend/discovery"
	"github.com/porthole-app/porthole/internal/testrig"
)

// TestAppsOnlyOnIPv6Loopback (issue 15): an app bound only to [::1] on the
// server is listed (reached at ::1, not 127.0.0.1) and opens in a tab.
func TestAppsOnlyOnIPv6Loopback(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		_ = ln.Close()
	}
	srv, key := appsServer(t)
	web := startWebAppProc(t, "-addr", "[::1]:0")
	if !strings.HasPrefix(web.url, "http://[::1]:") {
		t.Fatalf("the web app is on %s, want [::1]", web.url)
	}
	r := newAppsRig(t, srv, key, web, "")
	p := r.addServer(t, "v6 box")
	r.connect(t, p.ID)
	// Opened before any listing (a tab restored at start, a typed URL):
	// one listing finds where the port listens.
	o, err := r.app.OpenApp(p.ID, web.port, "/")
	if err != nil {
		t.Fatalf("OpenApp: %v", err)
	}
	code, body, _ := fetch(t, newBrowser(t), o.LocalOrigin+"/")
	if code != 200 || !strings.Contains(body, testrig.WebAppTitle) {
		t.Fatalf("GET %s/ = %d %.200q", o.LocalOrigin, code, body)
	}
	list := listUntil(t, r, p.ID, web.port)
	s, ok := findService(list, web.port)
	if !ok || !s.IsWeb || s.Kind != discovery.KindHTTP || s.LocalURL != o.LocalOrigin+"/" {
		t.Fatalf("the [::1]-only app is not listed as an open web app: %+v (ok %v; all %+v)", s, ok, list.Services)
	}
}

// listUntil lists the server's apps until port is among them: on a loaded
// machine a listing may time out, and ListApps then answers the list from
// before with its error. At most 12 tries.
func listUntil(t *testing.T, r *appsRig, id string, port int) apps.AppList {
	t.Helper()
	var list apps.AppList
	for range 12 {
		var err error
		if list, err = r.app.ListApps(id); err != nil {
			t.Fatal(err)
		}
		if _, ok := findService(list, port); ok {
			return list
		}
		t.Logf("port %d not listed yet (%s); listing again", port, list.Error)
		time.Sleep(time.Second)
	}
	return list
}

// The server's own non-loopback address, in a network namespace the test
// makes (TEST-NET-1, on its loopback interface: no traffic leaves it).
const (
	netnsEnv = "PORTHOLE_TEST_IN_NETNS"
	ownAddr  = "192.0.2.10"
)

// TestAppsOnlyOnServersOwnAddress (issue 15): an app bound only to the
// server's own non-loopback address (not 127.0.0.1, not 0.0.0.0) is
// listed and opens: the forward dials that address, since "localhost"
// would be refused. The test runs itself again inside a network namespace
// of its own (root and ip(8) needed), where that address exists.
func TestAppsOnlyOnServersOwnAddress(t *testing.T) {
	if os.Getenv(netnsEnv) == "" {
		runInOwnNetns(t, "TestAppsOnlyOnServersOwnAddress")
		return
	}
	early := startWebAppProc(t, "-addr", ownAddr+":0", "-own-netns")
	web := startWebAppProc(t, "-addr", ownAddr+":0", "-own-netns")
	for _, w := range []*webAppProc{early, web} {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(w.port)), time.Second); err == nil {
			_ = c.Close()
			t.Fatalf("the app answers on 127.0.0.1:%d too: the test would prove nothing", w.port)
		}
	}
	srv, key := appsServer(t, ownAddr)
	r := newAppsRig(t, srv, key, web, "")
	p := r.addServer(t, "lan box")
	r.connect(t, p.ID)
	b := newBrowser(t)
	open := func(port int) {
		t.Helper()
		o, err := r.app.OpenApp(p.ID, port, "/")
		if err != nil {
			t.Fatalf("OpenApp(%d): %v", port, err)
		}
		code, body, _ := fetch(t, b, o.LocalOrigin+"/")
		if code != 200 || !strings.Contains(body, testrig.WebAppTitle) {
			t.Fatalf("GET %s/ = %d %.200q", o.LocalOrigin, code, body)
		}
	}
	open(early.port) // before any listing: one listing finds the address
	listUntil(t, r, p.ID, early.port)
	list := listUntil(t, r, p.ID, web.port)
	for _, w := range []*webAppProc{early, web} {
		if s, ok := findService(list, w.port); !ok || !s.IsWeb {
			t.Fatalf("the app on %s:%d is not listed as a web app: %+v (ok %v; all %+v)", ownAddr, w.port, s, ok, list.Services)
		}
	}
	open(web.port) // from the listing
}

// runInOwnNetns runs test name of this binary again inside a new network
// namespace whose loopback interface also holds ownAddr, and fails if it
// fails there. It skips where namespaces cannot be made (not root, no ip).
func runInOwnNetns(t *testing.T, name string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) to make a network namespace")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns := fmt.Sprintf("porthole-ui-test-%d", os.Getpid())
	ip := func(args ...string) error {
		out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := ip("netns", "add", ns); err != nil {
		t.Skipf("cannot make a network namespace: %v", err)
	}
	t.Cleanup(func() {
		out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput()
		if err != nil {
			t.Errorf("removing the namespace %s: %v: %s", ns, err, out)
		}
	})
	for _, c := range [][]string{{"link", "set", "lo", "up"}, {"addr", "add", ownAddr + "/32", "dev", "lo"}} {
		if err := ip(append([]string{"netns", "exec", ns, "ip"}, c...)...); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, os.Args[0], "-test.run=^"+name+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in namespace %s:\n%s", ns, out)
	if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("the test failed in its network namespace: %v", err)
	}
}
