package agent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole-app/porthole/backend/discovery"
	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/sshconn"
	"github.com/porthole-app/porthole/internal/testrig"
)

// newLoginFunc starts a Login of one implementation; the test closes it.
type newLoginFunc func(t *testing.T, spec LoginSpec, s Secrets, p *fakePrompter) Login

// serverOnlyName resolves only on socksRig's SSH server.
const serverOnlyName = "only-on-server.test"

func asPrompter(p *fakePrompter) sshconn.Prompter {
	if p == nil {
		return nil
	}
	return p
}

// implementations are the two Logins the contract runs against.
func implementations(t *testing.T) []struct {
	name  string
	start newLoginFunc
} {
	sup, _ := testSupervisor(t, SupervisorOptions{})
	return []struct {
		name  string
		start newLoginFunc
	}{
		{"local", func(t *testing.T, spec LoginSpec, s Secrets, p *fakePrompter) Login {
			t.Helper()
			logs := &logBuffer{}
			l, err := NewLocalLogin(spec, s, asPrompter(p), logs.logger())
			if err != nil {
				t.Fatalf("NewLocalLogin: %v", err)
			}
			t.Cleanup(func() {
				_ = l.Close()
				if t.Failed() {
					t.Logf("login log:\n%s", logs.String())
				}
			})
			return l
		}},
		{"rpc", func(t *testing.T, spec LoginSpec, s Secrets, p *fakePrompter) Login {
			t.Helper()
			return startRemote(t, sup, spec, s, asPrompter(p))
		}},
	}
}

// TestLoginContract runs every behaviour of a Login against both
// implementations: in-process and through an agent process.
func TestLoginContract(t *testing.T) {
	r := newRig(t, testrig.SSHServerOptions{})
	socksRig := newRig(t, testrig.SSHServerOptions{Hosts: map[string]string{serverOnlyName: "127.0.0.1"}})
	kiRig := newRig(t, testrig.SSHServerOptions{KeyboardInteractive: []testrig.KIQuestion{{Prompt: "Password: ", Answer: testPassword}}})
	behaviours := []struct {
		name string
		run  func(t *testing.T, start newLoginFunc)
	}{
		{"connect with the saved password", func(t *testing.T, start newLoginFunc) {
			p := &fakePrompter{}
			l := start(t, r.spec("saved"), Secrets{Password: testPassword}, p)
			rec := record(l)
			if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			if pw, hk, ki, _ := p.counts(); pw+hk+ki != 0 {
				t.Errorf("the prompter was asked %d/%d/%d times; the saved password should have answered", pw, hk, ki)
			}
			rec.waitFor(t, "ready state", 5*time.Second, isState(forwarder.StateReady))
			rec.waitFor(t, "authenticating step", 5*time.Second, func(e Event) bool {
				return e.Kind == EventStep && e.Step.Step == sshconn.StepAuthenticating && e.Step.Name == "authenticating"
			})
			rec.waitFor(t, "connected log line", 5*time.Second, isLog("connected"))
			if !waitUntil(5*time.Second, func() bool { return l.State().State == forwarder.StateReady }) {
				t.Errorf("State() = %v, want ready", l.State())
			}
			if e, _ := rec.find(isState(forwarder.StateReady)); e.Login != "saved" {
				t.Errorf("event login = %q, want the spec ID", e.Login)
			}
		}},
		{"connect asks the prompter", func(t *testing.T, start newLoginFunc) {
			p := &fakePrompter{password: testPassword}
			l := start(t, r.spec("ask"), Secrets{}, p)
			if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			pw, _, _, infos := p.counts()
			if pw != 1 {
				t.Fatalf("password asked %d times, want 1", pw)
			}
			if p.passwords[0].Kind != sshconn.PasswordLogin || p.passwords[0].User != r.srv.User() {
				t.Errorf("prompt = %+v, want a login password for %s", p.passwords[0], r.srv.User())
			}
			if infos[0].Login != "ask" || infos[0].SavedRejected {
				t.Errorf("PromptInfo = %+v, want login ask, nothing saved rejected", infos[0])
			}
		}},
		{"a rejected saved password asks and says so", func(t *testing.T, start newLoginFunc) {
			p := &fakePrompter{password: testPassword}
			l := start(t, r.spec("rejected"), Secrets{Password: "wrong"}, p)
			if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			pw, _, _, infos := p.counts()
			if pw != 1 || !infos[0].SavedRejected {
				t.Fatalf("asked %d times with %+v; want once, saying the saved password was rejected", pw, infos)
			}
		}},
		{"no prompter: a missing password is an error", func(t *testing.T, start newLoginFunc) {
			l := start(t, r.spec("noprompter"), Secrets{Password: "wrong"}, nil)
			err := l.Connect(ctxT(t, 20*time.Second))
			if !errors.Is(err, ErrNoPrompter) {
				t.Fatalf("Connect = %v, want ErrNoPrompter", err)
			}
		}},
		{"the prompter's error is returned", func(t *testing.T, start newLoginFunc) {
			p := &fakePrompter{err: errors.New("the user canceled")}
			l := start(t, r.spec("cancel"), Secrets{}, p)
			err := l.Connect(ctxT(t, 20*time.Second))
			if err == nil || !strings.Contains(err.Error(), "the user canceled") {
				t.Fatalf("Connect = %v, want the prompter's error", err)
			}
		}},
		{"unknown host: asked, accepted once", func(t *testing.T, start newLoginFunc) {
			spec := r.spec("hostkey")
			spec.KnownHostsFiles = []string{filepath.Join(t.TempDir(), "known_hosts")}
			p := &fakePrompter{decision: sshconn.AcceptOnce}
			l := start(t, spec, Secrets{Password: testPassword}, p)
			if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			if _, hk, _, _ := p.counts(); hk != 1 || p.hostKeys[0].Fingerprint != ssh256(r) {
				t.Fatalf("host key asked %d times (%+v), want once with the server's fingerprint", hk, p.hostKeys)
			}
		}},
		{"unknown host: rejected", func(t *testing.T, start newLoginFunc) {
			spec := r.spec("hostkey-no")
			spec.KnownHostsFiles = []string{filepath.Join(t.TempDir(), "known_hosts")}
			l := start(t, spec, Secrets{Password: testPassword}, &fakePrompter{decision: sshconn.Reject})
			if err := l.Connect(ctxT(t, 20*time.Second)); !errors.Is(err, sshconn.ErrHostKeyRejected) {
				t.Fatalf("Connect = %v, want ErrHostKeyRejected", err)
			}
		}},
		{"keyboard-interactive password round answered from secrets", func(t *testing.T, start newLoginFunc) {
			spec := kiRig.spec("ki")
			spec.AuthMethods = []AuthMethod{AuthKeyboardInteractive}
			p := &fakePrompter{}
			l := start(t, spec, Secrets{Password: testPassword}, p)
			if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			if _, _, ki, _ := p.counts(); ki != 0 {
				t.Errorf("the prompter was asked %d keyboard-interactive rounds, want 0", ki)
			}
		}},
		{"forward, GET, stats and stats events", func(t *testing.T, start newLoginFunc) {
			l := start(t, r.spec("fwd"), Secrets{Password: testPassword}, nil)
			rec := record(l)
			infos, err := l.SetForwards(ctxT(t, 10*time.Second), []ForwardSpec{r.webForward("web", 0)})
			if err != nil || len(infos) != 1 || infos[0].Addr == "" || infos[0].ID != "web" {
				t.Fatalf("SetForwards = %+v, %v; want one listening forward", infos, err)
			}
			if body := mustGet(t, infos[0].Addr, "/small"); body != "small\n" {
				t.Fatalf("GET /small = %q", body)
			}
			st, err := l.Stats(ctxT(t, 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Forwards) != 1 || st.Forwards[0].Stats.TotalConns < 1 || st.Forwards[0].Stats.BytesIn == 0 {
				t.Errorf("stats = %+v, want the GET counted", st.Forwards)
			}
			if st.Session.State != forwarder.StateReady {
				t.Errorf("session state = %v, want ready", st.Session.State)
			}
			rec.waitFor(t, "stats with the connection counted", 5*time.Second, func(e Event) bool {
				return e.Kind == EventStats && len(e.Stats.Forwards) == 1 && e.Stats.Forwards[0].Stats.TotalConns >= 1
			})
			if got := l.Spec().Forwards; len(got) != 1 || got[0].ID != "web" {
				t.Errorf("Spec().Forwards = %+v", got)
			}
		}},
		{"one-time link on a web forward", func(t *testing.T, start newLoginFunc) {
			const target = "/small?token=c0ffee&x=1#top"
			l := start(t, r.spec("link", r.appForward("app", 0), r.webForward("raw", 0)), Secrets{Password: testPassword}, nil)
			logs := record(l)
			st, err := l.Stats(ctxT(t, 10*time.Second))
			if err != nil || len(st.Forwards) != 2 || st.Forwards[0].Addr == "" {
				t.Fatalf("Stats = %+v, %v", st, err)
			}
			addr := st.Forwards[0].Addr
			code, err := l.OpenLink(ctxT(t, 10*time.Second), "app", target)
			if err != nil || len(code) < 22 || strings.Contains(code, "c0ffee") {
				t.Fatalf("OpenLink = %q, %v; want a random code", code, err)
			}
			noFollow := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true},
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			link := "http://" + addr + forwarder.OpenPathPrefix + code
			for i, want := range []int{http.StatusSeeOther, http.StatusGone} {
				resp, err := noFollow.Get(link)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want || (want == http.StatusSeeOther && resp.Header.Get("Location") != target) {
					t.Fatalf("use %d: %s to %q; want %d (to %q the first time)", i+1, resp.Status, resp.Header.Get("Location"), want, target)
				}
			}
			for _, tc := range []struct {
				id, target string
				err        error
			}{
				{"nope", "/", ErrNoWebForward},
				{"raw", "/", ErrNoWebForward},
				{"app", "//evil.example/", forwarder.ErrBadOpenTarget},
				{"app", "", forwarder.ErrBadOpenTarget},
			} {
				if _, err := l.OpenLink(ctxT(t, 10*time.Second), tc.id, tc.target); !errors.Is(err, tc.err) {
					t.Errorf("OpenLink(%q, %q) = %v, want %v", tc.id, tc.target, err, tc.err)
				}
			}
			if e, found := logs.find(func(e Event) bool {
				return e.Log != nil && strings.Contains(e.String()+fmt.Sprint(e.Log.Attrs), "c0ffee")
			}); found {
				t.Errorf("a log line holds the target: %v", e)
			}
			_ = l.Close()
			if _, err := l.OpenLink(ctxT(t, 10*time.Second), "app", "/"); err == nil {
				t.Error("OpenLink after Close succeeded")
			}
		}},
		{"set forwards keeps, replaces and reports listen errors", func(t *testing.T, start newLoginFunc) {
			busy, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			l := start(t, r.spec("set", r.webForward("a", 0), r.webForward("b", 0)), Secrets{Password: testPassword}, nil)
			st, err := l.Stats(ctxT(t, 10*time.Second))
			if err != nil || len(st.Forwards) != 2 {
				t.Fatalf("Stats = %+v, %v", st, err)
			}
			addrA, addrB := st.Forwards[0].Addr, st.Forwards[1].Addr
			mustGet(t, addrA, "/small")
			// Keep b (asked again with port 0), drop a, add c on a busy port.
			infos, err := l.SetForwards(ctxT(t, 10*time.Second), []ForwardSpec{
				r.webForward("b", 0), r.webForward("c", busy.Addr().(*net.TCPAddr).Port),
			})
			if !errors.Is(err, ErrListen) {
				t.Errorf("SetForwards error = %v, want ErrListen for the busy port", err)
			}
			if len(infos) != 2 || infos[0].Addr != addrB || infos[1].Addr != "" || infos[1].Error == "" {
				t.Fatalf("infos = %+v; want b kept on %s and c failed", infos, addrB)
			}
			if infos[0].Stats.TotalConns != 0 {
				t.Errorf("b's stats = %+v, want its own (zero) counters", infos[0].Stats)
			}
			mustGet(t, addrB, "/small")
			if c, err := net.DialTimeout("tcp", addrA, time.Second); err == nil {
				c.Close()
				t.Errorf("the removed forward still listens on %s", addrA)
			}
			if _, err := l.SetForwards(ctxT(t, 10*time.Second), []ForwardSpec{r.webForward("x", 0), r.webForward("x", 0)}); !errors.Is(err, ErrBadLoginSpec) {
				t.Errorf("duplicate IDs: err = %v, want ErrBadLoginSpec", err)
			}
		}},
		{"dynamic forward: a SOCKS proxy whose names resolve on the server, counted and kept", func(t *testing.T, start newLoginFunc) {
			socks := ForwardSpec{ID: "socks", Dynamic: &forwarder.DynamicSpec{BindAddress: "127.0.0.1"}}
			l := start(t, socksRig.spec("dynfwd", socks), Secrets{Password: testPassword}, nil)
			st, err := l.Stats(ctxT(t, 10*time.Second))
			if err != nil || len(st.Forwards) != 1 {
				t.Fatalf("Stats = %+v, %v", st, err)
			}
			fi := st.Forwards[0]
			if fi.Kind != ForwardDynamic || fi.Addr == "" || fi.Spec.TargetHost != "" {
				t.Fatalf("forward info = %+v; want a listening dynamic forward", fi)
			}
			proxy := &url.URL{Scheme: "socks5h", Host: fi.Addr}
			c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxy), DisableKeepAlives: true}}
			for range 2 {
				resp, err := c.Get(fmt.Sprintf("http://%s:%d/small", serverOnlyName, socksRig.web.Port()))
				if err != nil {
					t.Fatalf("GET through SOCKS: %v", err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("GET through SOCKS: %s", resp.Status)
				}
			}
			if !waitUntil(5*time.Second, func() bool {
				st, err := l.Stats(ctxT(t, 10*time.Second))
				return err == nil && st.Forwards[0].Stats.TotalConns == 2 && st.Forwards[0].Stats.BytesIn > 0
			}) {
				st, _ := l.Stats(ctxT(t, 10*time.Second))
				t.Fatalf("stats = %+v; want 2 connections counted", st.Forwards[0].Stats)
			}
			infos, err := l.SetForwards(ctxT(t, 10*time.Second), []ForwardSpec{socks})
			if err != nil || len(infos) != 1 || infos[0].Addr != fi.Addr || infos[0].Stats.TotalConns != 2 {
				t.Fatalf("SetForwards again = %+v, %v; want the same forward on %s with its counters", infos, err, fi.Addr)
			}
		}},
		{"web forward: proxies, rewrites frame headers, is kept and replaced", func(t *testing.T, start newLoginFunc) {
			l := start(t, r.spec("webfwd", r.appForward("app", 0)), Secrets{Password: testPassword}, nil)
			st, err := l.Stats(ctxT(t, 10*time.Second))
			if err != nil || len(st.Forwards) != 1 {
				t.Fatalf("Stats = %+v, %v", st, err)
			}
			fi := st.Forwards[0]
			if fi.Kind != ForwardWeb || fi.Web == nil || fi.Web.ServerName != "rig" || fi.Spec.TargetHost != "localhost" || fi.Addr == "" {
				t.Fatalf("forward info = %+v; want a listening web forward with its spec", fi)
			}
			resp, err := http.Get("http://" + fi.Addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			body := new(bytes.Buffer)
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(body.String(), testrig.WebAppTitle) {
				t.Fatalf("GET / = %s %q", resp.Status, body.String())
			}
			if xfo := resp.Header.Get("X-Frame-Options"); xfo != "" {
				t.Errorf("X-Frame-Options %q passed through; the web forward replaces it", xfo)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'self' wails://wails") {
				t.Errorf("CSP = %q; want frame-ancestors limited to the app and Porthole", csp)
			}
			// The app saw the request as if the browser ran on the server.
			reqs := r.web.Requests()
			if last := reqs[len(reqs)-1]; last.Host != fmt.Sprintf("localhost:%d", r.web.Port()) {
				t.Errorf("the app saw Host %q, want localhost:%d", last.Host, r.web.Port())
			}
			// Asked again with port 0: kept on its port. Another ancestor list: replaced.
			infos, err := l.SetForwards(ctxT(t, 10*time.Second), []ForwardSpec{r.appForward("app", 0)})
			if err != nil || len(infos) != 1 || infos[0].Addr != fi.Addr || infos[0].Stats.TotalConns < 1 {
				t.Fatalf("SetForwards again = %+v, %v; want the same forward on %s with its counters", infos, err, fi.Addr)
			}
			port := portOf(fi.Addr)
			changed := r.appForward("app", port)
			changed.Web.AllowedFrameAncestors = append(slices.Clone(changed.Web.AllowedFrameAncestors), "http://127.0.0.1:9")
			infos, err = l.SetForwards(ctxT(t, 10*time.Second), []ForwardSpec{changed})
			if err != nil || len(infos) != 1 || infos[0].Addr != fi.Addr || infos[0].Stats.TotalConns != 0 {
				t.Fatalf("SetForwards changed = %+v, %v; want a new forward on the same %s", infos, err, fi.Addr)
			}
			resp, err = http.Get("http://" + fi.Addr + "/small")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "http://127.0.0.1:9") {
				t.Errorf("CSP after the change = %q; want the new ancestor", csp)
			}
			if got := l.Spec().Forwards; len(got) != 1 || got[0].Web == nil || len(got[0].Web.AllowedFrameAncestors) != 3 {
				t.Errorf("Spec().Forwards = %+v", got)
			}
			// A spec with both kinds is refused.
			both := r.appForward("both", 0)
			both.Local = r.webForward("both", 0).Local
			if _, err := l.SetForwards(ctxT(t, 10*time.Second), []ForwardSpec{both}); !errors.Is(err, ErrBadLoginSpec) {
				t.Errorf("local+web spec: err = %v, want ErrBadLoginSpec", err)
			}
		}},
		{"exec", func(t *testing.T, start newLoginFunc) {
			l := start(t, r.spec("exec"), Secrets{Password: testPassword}, nil)
			out, err := l.Exec(ctxT(t, 20*time.Second), "echo hello; echo noise >&2")
			if err != nil || string(out) != "hello\n" {
				t.Fatalf("Exec = %q, %v; want hello", out, err)
			}
			out, err = l.Exec(ctxT(t, 20*time.Second), "printf partial; echo broken >&2; exit 3")
			var ee *ExecError
			if !errors.As(err, &ee) || ee.Status != 3 || !strings.Contains(ee.Stderr, "broken") || string(out) != "partial" {
				t.Fatalf("Exec = %q, %v; want partial and an ExecError with status 3 and the stderr", out, err)
			}
		}},
		{"probe", func(t *testing.T, start newLoginFunc) {
			l := start(t, r.spec("probe"), Secrets{Password: testPassword}, nil)
			req := []byte("GET /small HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
			resp, err := l.Probe(ctxT(t, 20*time.Second), "127.0.0.1", r.web.Port(), req, 4096)
			if err != nil || !bytes.HasPrefix(resp, []byte("HTTP/1.1 200")) || !bytes.HasSuffix(resp, []byte("small\n")) {
				t.Fatalf("Probe = %q, %v; want the whole HTTP answer", resp, err)
			}
			resp, err = l.Probe(ctxT(t, 20*time.Second), "127.0.0.1", r.web.Port(), req, 12)
			if err != nil || string(resp) != "HTTP/1.1 200" {
				t.Fatalf("Probe limit 12 = %q, %v", resp, err)
			}
			if resp, err := l.Probe(ctxT(t, 20*time.Second), "127.0.0.1", r.web.Port(), nil, 0); err != nil || resp != nil {
				t.Fatalf("connect-only Probe = %q, %v", resp, err)
			}
			_, err = l.Probe(ctxT(t, 20*time.Second), "127.0.0.1", freePort(t), req, 4096)
			if !errors.Is(err, forwarder.ErrChannelRefused) {
				t.Fatalf("Probe of a closed port = %v, want ErrChannelRefused", err)
			}
		}},
		{"probe dialer speaks HTTP", func(t *testing.T, start newLoginFunc) {
			l := start(t, r.spec("probedialer"), Secrets{Password: testPassword}, nil)
			c, err := ProbeDialer{Login: l}.Dial(ctxT(t, 20*time.Second), "127.0.0.1", r.web.Port())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			body := new(bytes.Buffer)
			_, _ = body.ReadFrom(resp.Body)
			if resp.StatusCode != 200 || !strings.Contains(body.String(), testrig.WebAppTitle) {
				t.Fatalf("probe dialer answer: %s %q", resp.Status, body.String())
			}
			if _, err := (ProbeDialer{Login: l}).Dial(ctxT(t, 20*time.Second), "127.0.0.1", freePort(t)); !errors.Is(err, forwarder.ErrChannelRefused) {
				t.Fatalf("Dial of a closed port = %v, want ErrChannelRefused", err)
			}
			// DialLazy connects at the first Read; a closed port says so
			// there, in terms discovery knows (and across the agent's pipe).
			lc, err := ProbeDialer{Login: l}.DialLazy(ctxT(t, 20*time.Second), "127.0.0.1", freePort(t))
			if err != nil {
				t.Fatal(err)
			}
			defer lc.Close()
			_, _ = lc.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
			if _, err := lc.Read(make([]byte, 64)); !errors.Is(err, discovery.ErrNotConnected) || !errors.Is(err, ErrProbeConnect) {
				t.Fatalf("lazy Read of a closed port = %v, want discovery.ErrNotConnected and ErrProbeConnect", err)
			}
		}},
		{"disconnect keeps the forward, which reconnects", func(t *testing.T, start newLoginFunc) {
			l := start(t, r.spec("disc", r.webForward("web", 0)), Secrets{Password: testPassword}, nil)
			rec := record(l)
			st, _ := l.Stats(ctxT(t, 10*time.Second))
			addr := st.Forwards[0].Addr
			mustGet(t, addr, "/small")
			if err := l.Disconnect(ctxT(t, 10*time.Second)); err != nil {
				t.Fatalf("Disconnect: %v", err)
			}
			rec.waitFor(t, "idle after disconnect", 5*time.Second, func(e Event) bool {
				return isState(forwarder.StateIdle)(e) && e.State.Reason == "disconnected"
			})
			if s := l.State().State; s != forwarder.StateIdle {
				t.Errorf("State after Disconnect = %v, want idle", s)
			}
			mustGet(t, addr, "/small")
			if !waitUntil(5*time.Second, func() bool { return l.State().State == forwarder.StateReady }) {
				t.Errorf("State after a new connection = %v, want ready", l.State())
			}
		}},
		{"set secrets", func(t *testing.T, start newLoginFunc) {
			l := start(t, r.spec("secrets"), Secrets{}, nil)
			if err := l.SetSecrets(ctxT(t, 10*time.Second), Secrets{Password: testPassword}); err != nil {
				t.Fatal(err)
			}
			if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
				t.Fatalf("Connect with the new secrets: %v", err)
			}
		}},
		{"close", func(t *testing.T, start newLoginFunc) {
			l := start(t, r.spec("close", r.webForward("web", 0)), Secrets{Password: testPassword}, nil)
			st, _ := l.Stats(ctxT(t, 10*time.Second))
			addr := st.Forwards[0].Addr
			mustGet(t, addr, "/small")
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Errorf("second Close = %v", err)
			}
			if _, err := l.Stats(ctxT(t, 10*time.Second)); !errors.Is(err, ErrClosed) {
				t.Errorf("Stats after Close = %v, want ErrClosed", err)
			}
			if err := l.Connect(ctxT(t, 10*time.Second)); !errors.Is(err, ErrClosed) {
				t.Errorf("Connect after Close = %v, want ErrClosed", err)
			}
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Errorf("%s still listens after Close", addr)
			}
		}},
	}
	for _, impl := range implementations(t) {
		t.Run(impl.name, func(t *testing.T) {
			for _, b := range behaviours {
				t.Run(b.name, func(t *testing.T) { b.run(t, impl.start) })
			}
		})
	}
}

func ssh256(r *rig) string { return ssh.FingerprintSHA256(r.srv.HostKey()) }

// TestNoGoroutineLeak: a login that was used and closed leaves no goroutine
// behind, in either implementation.
func TestNoGoroutineLeak(t *testing.T) {
	r := newRig(t, testrig.SSHServerOptions{})
	for _, impl := range implementations(t) {
		t.Run(impl.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			func() {
				l := impl.start(t, r.spec("leak", r.webForward("web", 0)), Secrets{Password: testPassword}, nil)
				st, err := l.Stats(ctxT(t, 10*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				mustGet(t, st.Forwards[0].Addr, "/small")
				if _, err := l.Exec(ctxT(t, 20*time.Second), "true"); err != nil {
					t.Fatal(err)
				}
				if _, err := l.Probe(ctxT(t, 20*time.Second), "127.0.0.1", r.web.Port(), []byte("GET / HTTP/1.0\r\n\r\n"), 100); err != nil {
					t.Fatal(err)
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}()
			if !waitUntil(10*time.Second, func() bool { return runtime.NumGoroutine() <= before }) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:n])
			}
		})
	}
}

// TestLocalLoginRejectsBadSpecs: validation happens before anything starts.
func TestLocalLoginRejectsBadSpecs(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec LoginSpec
	}{
		{"no host", LoginSpec{ID: "x"}},
		{"bad port", LoginSpec{ID: "x", Host: "h", Port: 70000}},
		{"newline in host", LoginSpec{ID: "x", Host: "h\nProxyCommand x"}},
		{"bad auth method", LoginSpec{ID: "x", Host: "h", AuthMethods: []AuthMethod{9}}},
		{"bad forward", LoginSpec{ID: "x", Host: "h", Forwards: []ForwardSpec{{Local: forwarder.LocalSpec{BindPort: 1, TargetHost: "", TargetPort: 80}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewLocalLogin(tc.spec, Secrets{}, nil, nil); !errors.Is(err, ErrBadLoginSpec) {
				t.Fatalf("NewLocalLogin = %v, want ErrBadLoginSpec", err)
			}
			sup, _ := testSupervisor(t, SupervisorOptions{})
			if _, err := sup.Start(ctxT(t, 10*time.Second), tc.spec, Secrets{}, nil); !errors.Is(err, ErrBadLoginSpec) {
				t.Fatalf("Start = %v, want ErrBadLoginSpec", err)
			}
		})
	}
}
