package forwarder

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/porthole-app/porthole/internal/testrig"
)

// testAncestors are the Porthole origins the tests allow to frame apps.
var testAncestors = []string{"wails://wails", "http://wails.localhost", "http://127.0.0.1:34115"}

const testAncestorSources = "'self' wails://wails http://wails.localhost http://127.0.0.1:34115"

func listenWeb(t testing.TB, spec WebSpec, d Dialer, opts WebOptions) *WebForward {
	t.Helper()
	f, err := ListenWeb(spec, d, opts)
	if err != nil {
		t.Fatalf("ListenWeb(%v): %v", spec, err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// webSpec targets addr (an app on the "server", i.e. loopback here).
func webSpec(t testing.TB, addr string) WebSpec {
	h, p := hostPort(t, addr)
	return WebSpec{TargetHost: h, TargetPort: p, ServerName: "gpu-test", AllowedFrameAncestors: testAncestors}
}

// webClient is a browser stand-in: keep-alive, no redirects followed.
func webClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 8, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type reqKind int

const (
	kindNavigate reqKind = iota // a page load
	kindFetch                   // fetch() asking for JSON
	kindPlain                   // no hints (curl)
)

// do sends one request the way a browser would for kind and returns the
// response with its body read.
func do(t testing.TB, c *http.Client, method, u string, kind reqKind, body string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	resp, b, err := doErr(c, method, u, kind, body, hdr)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// doErr is do for goroutines other than the test's.
func doErr(c *http.Client, method, u string, kind reqKind, body string, hdr http.Header) (*http.Response, string, error) {
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rb)
	if err != nil {
		return nil, "", err
	}
	switch kind {
	case kindNavigate:
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		req.Header.Set("Sec-Fetch-Dest", "iframe")
		req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	case kindFetch:
		req.Header.Set("Sec-Fetch-Mode", "cors")
		req.Header.Set("Sec-Fetch-Dest", "empty")
		req.Header.Set("Accept", "application/json")
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v[0]
			continue
		}
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: reading the body: %w", method, u, err)
	}
	return resp, string(b), nil
}

// newPlainBackend serves h on loopback (an app on the "server") until cleanup.
func newPlainBackend(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return ln.Addr().String()
}

func TestWebPageAndKeepAlive(t *testing.T) {
	srv := newServer(t, nil)
	app := testrig.NewWebApp(t)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: PoolOptions{Disabled: true}})
	fwd := listenWeb(t, webSpec(t, app.Addr()), s, WebOptions{})
	c := webClient(t)

	resp, body := do(t, c, "GET", fwd.URL()+"/", kindNavigate, "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "<title>"+testrig.WebAppTitle+"</title>") {
		t.Fatalf("page: %s %q", resp.Status, body)
	}
	// The page's resources, six at a time like a browser.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 6)
	errs := make(chan error, testrig.WebAppResources)
	for i := range testrig.WebAppResources {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			resp, err := c.Get(fmt.Sprintf("%s/res/%d", fwd.URL(), i))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			ct, want := testrig.WebAppResource(i)
			if err != nil || resp.StatusCode != 200 || !bytes.Equal(b, want) || resp.Header.Get("Content-Type") != ct {
				errs <- fmt.Errorf("/res/%d: %s, %d bytes, %v", i, resp.Status, len(b), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	requests := 1 + testrig.WebAppResources
	channels := srv.Stats().DirectTCPIP
	t.Logf("%d requests over %d SSH channels", requests, channels)
	if channels >= int64(requests)/2 {
		t.Fatalf("%d channels for %d requests: backend connections are not kept alive", channels, requests)
	}

	// One after the other, requests ride the same kept-alive channel.
	before := srv.Stats().DirectTCPIP
	const seq = 20
	for range seq {
		if resp, body := do(t, c, "GET", fwd.URL()+"/small", kindPlain, "", nil); resp.StatusCode != 200 || body != "small\n" {
			t.Fatalf("/small: %s %q", resp.Status, body)
		}
	}
	if opened := srv.Stats().DirectTCPIP - before; opened > seq/2 {
		t.Fatalf("%d sequential requests opened %d channels", seq, opened)
	}
	st := fwd.Stats()
	if st.TotalConns != uint64(requests+seq) || st.FailedConns != 0 || st.BytesIn == 0 || st.BytesOut == 0 || st.DialLatency.Count == 0 {
		t.Fatalf("stats %+v; want %d requests, none failed, bytes and dials counted", st, requests+seq)
	}
	if n := app.Count("/"); n != 1 {
		t.Fatalf("the app saw / %d times, want 1", n)
	}
}

func TestWebWebsocketEcho(t *testing.T) {
	srv := newServer(t, nil)
	app := testrig.NewWebApp(t)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{})
	fwd := listenWeb(t, webSpec(t, app.Addr()), s, WebOptions{})

	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial("ws://"+fwd.Addr().String()+"/ws", http.Header{"Origin": {fwd.URL()}})
	if err != nil {
		t.Fatalf("websocket through the forward: %v", err)
	}
	defer ws.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %s", resp.Status)
	}
	if xfo, csp := resp.Header.Get("X-Frame-Options"), resp.Header.Get("Content-Security-Policy"); xfo != "" || csp != "frame-ancestors "+testAncestorSources {
		t.Fatalf("handshake frame headers: XFO %q, CSP %q", xfo, csp)
	}
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	msgs := []struct {
		typ  int
		data []byte
	}{
		{websocket.TextMessage, []byte("hello")},
		{websocket.TextMessage, []byte("héllo wörld")},
		{websocket.BinaryMessage, big},
		{websocket.TextMessage, []byte("bye")},
	}
	for i, m := range msgs {
		if err := ws.WriteMessage(m.typ, m.data); err != nil {
			t.Fatalf("message %d: write: %v", i, err)
		}
		typ, got, err := ws.ReadMessage()
		if err != nil || typ != m.typ || !bytes.Equal(got, m.data) {
			t.Fatalf("message %d: echo type %d, %d bytes, %v; want type %d, %d bytes", i, typ, len(got), err, m.typ, len(m.data))
		}
	}
	var rec *testrig.RequestRecord
	for _, r := range app.Requests() {
		if r.Path == "/ws" {
			rec = &r
		}
	}
	want := "localhost:" + strconv.Itoa(app.Port())
	if rec == nil || rec.Host != want || rec.Origin != "http://"+want {
		t.Fatalf("the app saw the websocket handshake as %+v; want Host %s and Origin http://%s", rec, want, want)
	}
	if a := fwd.Stats().ActiveConns; a != 1 {
		t.Fatalf("%d active requests while the websocket is open, want 1", a)
	}
}

func TestWebRewritesRequestHeaders(t *testing.T) {
	srv := newServer(t, nil)
	app := testrig.NewWebApp(t)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{})
	fwd := listenWeb(t, webSpec(t, app.Addr()), s, WebOptions{})
	c := webClient(t)
	port := strconv.Itoa(fwd.Addr().(*net.TCPAddr).Port)
	upstream := "http://localhost:" + strconv.Itoa(app.Port())

	tests := []struct {
		name        string
		hdr         http.Header
		wantOrigin  string
		wantReferer string
	}{
		{"same origin", http.Header{"Origin": {fwd.URL()}, "Referer": {fwd.URL() + "/lab/tree?x=1#f"}},
			upstream, upstream + "/lab/tree?x=1#f"},
		{"same origin by localhost name", http.Header{"Host": {"localhost:" + port}, "Origin": {"http://localhost:" + port}, "Referer": {"http://localhost:" + port + "/"}},
			upstream, upstream + "/"},
		{"Porthole's window keeps its origin", http.Header{"Origin": {"http://wails.localhost"}, "Referer": {"http://wails.localhost/page"}},
			"http://wails.localhost", "http://wails.localhost/page"},
		{"serve keeps its origin", http.Header{"Origin": {"http://127.0.0.1:34115"}, "Referer": {"http://127.0.0.1:34115/x"}},
			"http://127.0.0.1:34115", "http://127.0.0.1:34115/x"},
		{"no origin", nil, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, c, "POST", fwd.URL()+"/headers", kindFetch, "a=1", tc.hdr)
			if resp.StatusCode != 200 {
				t.Fatalf("%s %s", resp.Status, body)
			}
			var got http.Header
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if h := got.Get("Host"); h != "localhost:"+strconv.Itoa(app.Port()) {
				t.Errorf("Host %q, want localhost:%d", h, app.Port())
			}
			if o := got.Get("Origin"); o != tc.wantOrigin {
				t.Errorf("Origin %q, want %q", o, tc.wantOrigin)
			}
			if r := got.Get("Referer"); r != tc.wantReferer {
				t.Errorf("Referer %q, want %q", r, tc.wantReferer)
			}
			if xf := got.Get("X-Forwarded-For"); xf != "" {
				t.Errorf("X-Forwarded-For %q reached the app", xf)
			}
		})
	}
}

func TestWebRefusesForeignHostNames(t *testing.T) {
	srv := newServer(t, nil)
	app := testrig.NewWebApp(t)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{})
	fwd := listenWeb(t, webSpec(t, app.Addr()), s, WebOptions{})
	c := webClient(t)
	port := strconv.Itoa(fwd.Addr().(*net.TCPAddr).Port)
	for _, host := range []string{"evil.example:" + port, "127.0.0.1.nip.io:" + port, "127.0.0.1:1", "localhost"} {
		t.Run(host, func(t *testing.T) {
			resp, body := do(t, c, "GET", fwd.URL()+"/headers", kindNavigate, "", http.Header{"Host": {host}})
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get(errorHeader) != "bad-host" || !strings.Contains(body, "Request refused") {
				t.Fatalf("Host %q: %s %s %q", host, resp.Status, resp.Header.Get(errorHeader), body)
			}
		})
	}
	if n := app.Count("/headers"); n != 0 {
		t.Fatalf("the app saw %d requests for foreign host names", n)
	}
}

func TestWebResponseRewrites(t *testing.T) {
	srv := newServer(t, nil)
	var backendPort int
	backend := newPlainBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch r.URL.Path {
		case "/redirect":
			w.Header().Set("Location", q.Get("to"))
			w.WriteHeader(http.StatusFound)
		case "/refresh":
			w.Header().Set("Refresh", "0; url=http://localhost:"+strconv.Itoa(backendPort)+"/next")
		case "/cookies":
			w.Header().Add("Set-Cookie", "a=1; Path=/; Domain=localhost; HttpOnly")
			w.Header().Add("Set-Cookie", "b=2; domain=.127.0.0.1")
			w.Header().Add("Set-Cookie", "c=3; Domain=example.com")
			w.Header().Add("Set-Cookie", "d=4; Path=/")
		case "/frame":
			for _, v := range q["csp"] {
				w.Header().Add("Content-Security-Policy", v)
			}
			if v := q.Get("xfo"); v != "" {
				w.Header().Set("X-Frame-Options", v)
			}
		}
	}))
	_, backendPort = hostPort(t, backend)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{})
	fwd := listenWeb(t, webSpec(t, backend), s, WebOptions{})
	c := webClient(t)
	local := fwd.Addr().String()
	bp := strconv.Itoa(backendPort)

	t.Run("Location", func(t *testing.T) {
		tests := []struct{ to, want string }{
			{"http://localhost:" + bp + "/lab?token=abc", "http://" + local + "/lab?token=abc"},
			{"http://127.0.0.1:" + bp + "/tree", "http://" + local + "/tree"},
			{"http://[::1]:" + bp + "/", "http://" + local + "/"},
			{"http://0.0.0.0:" + bp, "http://" + local},
			{"HTTP://LOCALHOST:" + bp + "/x#y", "http://" + local + "/x#y"},
			{"//localhost:" + bp + "/x", "//" + local + "/x"},
			{"/relative?next=%2Fa", "/relative?next=%2Fa"},
			{"http://localhost:1/other-port", "http://localhost:1/other-port"},
			{"http://example.com:" + bp + "/", "http://example.com:" + bp + "/"},
			{"https://localhost:" + bp + "/", "https://localhost:" + bp + "/"},
		}
		for _, tc := range tests {
			resp, _ := do(t, c, "GET", fwd.URL()+"/redirect?to="+url.QueryEscape(tc.to), kindNavigate, "", nil)
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != tc.want {
				t.Errorf("Location %q came back as %q (%s), want %q", tc.to, resp.Header.Get("Location"), resp.Status, tc.want)
			}
		}
		resp, _ := do(t, c, "GET", fwd.URL()+"/refresh", kindNavigate, "", nil)
		if got, want := resp.Header.Get("Refresh"), "0; url=http://"+local+"/next"; got != want {
			t.Errorf("Refresh %q, want %q", got, want)
		}
	})

	t.Run("Set-Cookie", func(t *testing.T) {
		resp, _ := do(t, c, "GET", fwd.URL()+"/cookies", kindNavigate, "", nil)
		got := resp.Header.Values("Set-Cookie")
		want := []string{"a=1; Path=/; HttpOnly", "b=2", "c=3; Domain=example.com", "d=4; Path=/"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("Set-Cookie %q, want %q", got, want)
		}
		jar, _ := cookiejar.New(nil)
		u, _ := url.Parse(fwd.URL() + "/")
		jar.SetCookies(u, resp.Cookies())
		var names []string
		for _, ck := range jar.Cookies(u) {
			names = append(names, ck.Name)
		}
		if strings.Join(names, ",") != "a,b,d" {
			t.Fatalf("cookies kept for %s: %v; want a, b and d", u, names)
		}
	})

	t.Run("frame headers", func(t *testing.T) {
		tests := []struct {
			name string
			csp  []string
			xfo  string
			want []string
		}{
			{"XFO DENY", nil, "DENY", []string{"frame-ancestors " + testAncestorSources}},
			{"XFO SAMEORIGIN", nil, "SAMEORIGIN", []string{"frame-ancestors " + testAncestorSources}},
			{"no protection", nil, "", []string{"frame-ancestors " + testAncestorSources}},
			{"none", []string{"frame-ancestors 'none'"}, "DENY", []string{"frame-ancestors " + testAncestorSources}},
			{"wide list narrowed", []string{"default-src 'self'; frame-ancestors * https://other.example; img-src data:"}, "",
				[]string{"default-src 'self'; frame-ancestors " + testAncestorSources + "; img-src data:"}},
			{"other policy kept", []string{"default-src 'self'"}, "",
				[]string{"default-src 'self'", "frame-ancestors " + testAncestorSources}},
			{"two policies", []string{"script-src 'self', FRAME-ANCESTORS https://a.example"}, "",
				[]string{"script-src 'self', frame-ancestors " + testAncestorSources}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				q := url.Values{"csp": tc.csp, "xfo": {tc.xfo}}
				resp, _ := do(t, c, "GET", fwd.URL()+"/frame?"+q.Encode(), kindNavigate, "", nil)
				if xfo := resp.Header.Get("X-Frame-Options"); xfo != "" {
					t.Errorf("X-Frame-Options %q reached the browser", xfo)
				}
				got := resp.Header.Values("Content-Security-Policy")
				if strings.Join(got, "|") != strings.Join(tc.want, "|") {
					t.Fatalf("CSP %q, want %q", got, tc.want)
				}
				self := fwd.URL()
				for _, o := range []string{"wails://wails", "http://wails.localhost", "http://127.0.0.1:34115", self} {
					if !frameAllowed(got, o, self) {
						t.Errorf("%s may not frame the app; it must", o)
					}
				}
				for _, o := range []string{"https://evil.example", "http://127.0.0.1:1", "https://other.example", "https://a.example", "null"} {
					if frameAllowed(got, o, self) {
						t.Errorf("%s may frame the app; it must not", o)
					}
				}
			})
		}
	})
}

// frameAllowed evaluates CSP frame-ancestors (as far as Porthole's rewritten
// headers need: origins, 'self', 'none', *) for a parent origin.
func frameAllowed(policies []string, parent, self string) bool {
	for _, header := range policies {
		for _, p := range strings.Split(header, ",") {
			for _, d := range strings.Split(p, ";") {
				fields := strings.Fields(d)
				if len(fields) == 0 || !strings.EqualFold(fields[0], "frame-ancestors") {
					continue
				}
				ok := false
				for _, src := range fields[1:] {
					switch {
					case src == "*":
						ok = ok || strings.HasPrefix(parent, "http")
					case src == "'self'":
						ok = ok || parent == self
					case src == "'none'":
					default:
						ok = ok || strings.EqualFold(src, parent)
					}
				}
				if !ok {
					return false
				}
				break // only the first frame-ancestors of a policy counts
			}
		}
	}
	return true
}

func TestWebCookieRoundTrip(t *testing.T) {
	srv := newServer(t, nil)
	app := testrig.NewWebApp(t)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{})
	fwd := listenWeb(t, webSpec(t, app.Addr()), s, WebOptions{})
	c := webClient(t)
	jar, _ := cookiejar.New(nil)
	c.Jar = jar
	var first, second testrig.WebAppCookieReply
	_, body := do(t, c, "GET", fwd.URL()+"/cookie", kindFetch, "", nil)
	if err := json.Unmarshal([]byte(body), &first); err != nil || first.Session == "" || first.Received != "" {
		t.Fatalf("first /cookie: %+v %v", first, err)
	}
	_, body = do(t, c, "GET", fwd.URL()+"/cookie", kindFetch, "", nil)
	if err := json.Unmarshal([]byte(body), &second); err != nil || second.Received != first.Session {
		t.Fatalf("second /cookie: %+v %v; want the session %q sent back", second, err, first.Session)
	}
}

// flakyDialer fails the first dial in the way fail says, then dials through
// d.
type flakyDialer struct {
	d     Dialer
	fail  func(ctx context.Context, host string, port int) (net.Conn, error)
	calls atomic.Int64
}

func (fd *flakyDialer) Dial(ctx context.Context, host string, port int) (net.Conn, error) {
	if fd.calls.Add(1) == 1 {
		return fd.fail(ctx, host, port)
	}
	return fd.d.Dial(ctx, host, port)
}

func TestWebRetriesUnwrittenRequests(t *testing.T) {
	tests := []struct {
		name   string
		method string
		// fail makes the first channel fail before the request is written.
		fail func(t *testing.T, srv *testrig.SSHServer, s *Session) func(context.Context, string, int) (net.Conn, error)
	}{
		{"dial failed", "POST", func(t *testing.T, _ *testrig.SSHServer, _ *Session) func(context.Context, string, int) (net.Conn, error) {
			return func(context.Context, string, int) (net.Conn, error) {
				return nil, errors.New("test: opening the channel failed")
			}
		}},
		{"channel died before the request was written", "POST", func(t *testing.T, srv *testrig.SSHServer, s *Session) func(context.Context, string, int) (net.Conn, error) {
			return func(ctx context.Context, host string, port int) (net.Conn, error) {
				c, err := s.Dial(ctx, host, port)
				if err != nil {
					return nil, err
				}
				srv.DropAll() // the SSH connection dies under the fresh channel
				if _, err := c.Read(make([]byte, 1)); err == nil {
					t.Error("the channel survived DropAll")
				}
				return c, nil
			}
		}},
		{"GET on a channel that died", "GET", func(t *testing.T, srv *testrig.SSHServer, s *Session) func(context.Context, string, int) (net.Conn, error) {
			return func(ctx context.Context, host string, port int) (net.Conn, error) {
				c, err := s.Dial(ctx, host, port)
				if err != nil {
					return nil, err
				}
				srv.DropAll()
				_, _ = c.Read(make([]byte, 1))
				return c, nil
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, nil)
			app := testrig.NewWebApp(t)
			s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: PoolOptions{Disabled: true}})
			fd := &flakyDialer{d: s}
			fd.fail = tc.fail(t, srv, s)
			fwd := listenWeb(t, webSpec(t, app.Addr()), fd, WebOptions{})
			body := ""
			if tc.method == "POST" {
				body = "comment=" + strings.Repeat("x", 100<<10) // more than a copy buffer
			}
			resp, got := do(t, webClient(t), tc.method, fwd.URL()+"/headers", kindFetch, body, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("%s %s", resp.Status, got)
			}
			if n := app.Count("/headers"); n != 1 {
				t.Fatalf("the app saw the request %d times, want exactly 1", n)
			}
			if rec := app.Requests()[0]; rec.Method != tc.method {
				t.Fatalf("the app saw %s, want %s", rec.Method, tc.method)
			}
			if st := fwd.Stats(); st.Retries != 1 || st.FailedConns != 0 {
				t.Fatalf("stats %+v; want exactly 1 retry and no failure", st)
			}
			if n := fd.calls.Load(); n != 2 {
				t.Fatalf("%d dials, want 2", n)
			}
		})
	}
}

// A backend that reads a request, counts it, and never answers.
type silentBackend struct {
	got atomic.Int64
}

func (b *silentBackend) handle(c net.Conn) {
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, req.Body)
	b.got.Add(1)
	_, _ = io.Copy(io.Discard, br)
}

func TestWebNoRetryAfterWrite(t *testing.T) {
	srv := newServer(t, nil)
	sb := &silentBackend{}
	backend := newRawBackend(t, sb.handle)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: PoolOptions{Disabled: true}})
	fwd := listenWeb(t, webSpec(t, backend.Addr()), s, WebOptions{})
	c := webClient(t)

	tests := []struct {
		name  string
		kind  reqKind
		check func(t *testing.T, resp *http.Response, body string)
	}{
		{"form post from a page", kindNavigate, func(t *testing.T, resp *http.Response, body string) {
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
				!strings.Contains(body, "The connection to gpu-test broke") || !strings.Contains(body, "did not send it again") {
				t.Fatalf("error page %q", body)
			}
		}},
		{"fetch", kindFetch, func(t *testing.T, resp *http.Response, body string) {
			var e struct{ Error, Kind string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Kind != "broken" || !strings.Contains(e.Error, "did not send it again") {
				t.Fatalf("JSON error %q (%v)", body, err)
			}
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			type result struct {
				resp *http.Response
				body string
				err  error
			}
			done := make(chan result, 1)
			go func() {
				resp, body, err := doErr(c, "POST", fwd.URL()+"/submit", tc.kind, "order=42", nil)
				done <- result{resp, body, err}
			}()
			waitFor(t, 10*time.Second, "the app to get the request", func() bool { return sb.got.Load() == int64(i+1) })
			srv.DropAll() // the SSH connection dies before the app answers
			var r result
			deadline := time.After(30 * time.Second)
		wait:
			for {
				select {
				case r = <-done:
					break wait
				case <-deadline:
					t.Fatal("no answer after the connection broke")
				case <-time.After(10 * time.Millisecond):
					if n := sb.got.Load(); n > int64(i+1) {
						t.Fatalf("the app got the request %d times: a written request was sent again", n-int64(i))
					}
				}
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.resp.StatusCode != http.StatusBadGateway || r.resp.Header.Get(errorHeader) != "broken" {
				t.Fatalf("%s %s %q", r.resp.Status, r.resp.Header.Get(errorHeader), r.body)
			}
			tc.check(t, r.resp, r.body)
			time.Sleep(300 * time.Millisecond) // a wrong retry would arrive by now
			if n := sb.got.Load(); n != int64(i+1) {
				t.Fatalf("the app got the request %d times: a written request was sent again", n-int64(i))
			}
			if st := fwd.Stats(); st.Retries != 0 || st.FailedConns != uint64(i+1) || st.LastError == "" {
				t.Fatalf("stats %+v; want no retry and the failure counted", st)
			}
		})
	}
}

func TestWebReconnectingPage(t *testing.T) {
	srv := newServer(t, nil)
	relay := testrig.NewRelay(t, srv.Addr())
	app := testrig.NewWebApp(t)
	s := newSession(t, relay.Addr(), clientConfig(srv), SessionOptions{
		Backoff: Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		Pool:    PoolOptions{Disabled: true},
	})
	fwd := listenWeb(t, webSpec(t, app.Addr()), s, WebOptions{NavigationTimeout: time.Second, DialTimeout: 3 * time.Second})
	c := webClient(t)
	probe := func() int {
		resp, _ := do(t, c, "HEAD", fwd.URL()+"/lab", kindPlain, "", http.Header{probeHeader: {"1"}})
		return resp.StatusCode
	}

	if resp, body := do(t, c, "GET", fwd.URL()+"/", kindNavigate, "", nil); resp.StatusCode != 200 || !strings.Contains(body, testrig.WebAppTitle) {
		t.Fatalf("before: %s %q", resp.Status, body)
	}
	if code := probe(); code != http.StatusNoContent {
		t.Fatalf("probe while up: %d, want 204", code)
	}

	// The server becomes unreachable: existing flows are reset, new ones fail.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	_ = dead.Close()
	relay.SetTarget(deadAddr)
	relay.CutFlows()

	resp, body := do(t, c, "GET", fwd.URL()+"/", kindNavigate, "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get(errorHeader) != "unreachable" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("navigation while down: %s %q Retry-After %q", resp.Status, resp.Header.Get(errorHeader), resp.Header.Get("Retry-After"))
	}
	for _, want := range []string{"Reconnecting to gpu-test…", probeHeader, `http-equiv="refresh"`, "location.reload()"} {
		if !strings.Contains(body, want) {
			t.Errorf("the reconnecting page lacks %q:\n%s", want, body)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors "+testAncestorSources) {
		t.Errorf("the reconnecting page's CSP %q does not let Porthole frame it", csp)
	}

	resp, body = do(t, c, "GET", fwd.URL()+"/small", kindFetch, "", nil)
	var e struct{ Error, Kind, Server string }
	if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &e) != nil || e.Kind != "unreachable" || e.Server != "gpu-test" || e.Error == "" {
		t.Fatalf("fetch while down: %s %q", resp.Status, body)
	}
	resp, body = do(t, c, "POST", fwd.URL()+"/headers", kindNavigate, "a=1", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "was not sent") || strings.Contains(body, probeHeader) {
		t.Fatalf("form post while down: %s %q; want an error page saying it was not sent (no auto-retry)", resp.Status, body)
	}
	if code := probe(); code != http.StatusServiceUnavailable {
		t.Fatalf("probe while down: %d, want 503", code)
	}

	// The server is back: the page's probe sees it, the reload gets the app.
	relay.SetTarget(srv.Addr())
	waitFor(t, 30*time.Second, "the probe to see the server again", func() bool { return probe() == http.StatusNoContent })
	if resp, body := do(t, c, "GET", fwd.URL()+"/", kindNavigate, "", nil); resp.StatusCode != 200 || !strings.Contains(body, testrig.WebAppTitle) {
		t.Fatalf("after: %s %q", resp.Status, body)
	}
	if n := app.Count("/headers"); n != 0 {
		t.Fatalf("the app got %d POSTs sent while it was unreachable", n)
	}
}

func TestWebErrorPages(t *testing.T) {
	srv := newServer(t, nil)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{})
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	_ = closed.Close()
	fwd := listenWeb(t, webSpec(t, addr), s, WebOptions{})
	c := webClient(t)
	_, port := hostPort(t, addr)
	app := "localhost:" + strconv.Itoa(port)

	tests := []struct {
		name   string
		kind   reqKind
		hdr    http.Header
		isJSON bool
	}{
		{"page", kindNavigate, nil, false},
		{"fetch", kindFetch, nil, true},
		{"XHR", kindPlain, http.Header{"X-Requested-With": {"XMLHttpRequest"}}, true},
		{"plain", kindPlain, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, c, "GET", fwd.URL()+"/", tc.kind, "", tc.hdr)
			if resp.StatusCode != http.StatusBadGateway || resp.Header.Get(errorHeader) != "not-listening" {
				t.Fatalf("%s %q", resp.Status, resp.Header.Get(errorHeader))
			}
			if tc.isJSON {
				var e map[string]string
				if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e["error"], "no program accepts connections on "+app) {
					t.Fatalf("JSON %q (%v)", body, err)
				}
				return
			}
			for _, want := range []string{"<title>Nothing answers on " + app + " on gpu-test</title>", "Start the app on gpu-test", "location.reload()"} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q:\n%s", want, body)
				}
			}
			if len(body) > 8<<10 {
				t.Errorf("error page is %d bytes; keep it small", len(body))
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors "+testAncestorSources) {
				t.Errorf("page CSP %q", csp)
			}
		})
	}
	if st := fwd.Stats(); st.FailedConns != uint64(len(tests)) || !strings.Contains(st.LastError, "refused") {
		t.Fatalf("stats %+v", st)
	}
}

func TestWebGuardRefuses(t *testing.T) {
	var dials atomic.Int64
	dialer := DialerFunc(func(context.Context, string, int) (net.Conn, error) {
		dials.Add(1)
		return nil, errors.New("must not dial")
	})
	fwd := listenWeb(t, WebSpec{TargetHost: "127.0.0.1", TargetPort: 9}, dialer, WebOptions{Guard: &denyAll{}})
	c, err := net.Dial("tcp", fwd.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+fwd.Addr().String()+"\r\n\r\n")
	if n, err := c.Read(make([]byte, 64)); err == nil || n != 0 {
		t.Fatalf("a refused connection got %d bytes, err %v; want it closed without an answer", n, err)
	}
	waitFor(t, 5*time.Second, "the refusal to be counted", func() bool { return fwd.Stats().Refused == 1 })
	if st := fwd.Stats(); dials.Load() != 0 || st.TotalConns != 0 || !strings.Contains(st.LastError, "denied by test guard") {
		t.Fatalf("dials %d, stats %+v", dials.Load(), st)
	}
}

func TestWebBigDownloadStreams(t *testing.T) {
	srv := newServer(t, nil)
	app := testrig.NewWebApp(t)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{})
	fwd := listenWeb(t, webSpec(t, app.Addr()), s, WebOptions{})
	c := webClient(t)

	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	base := m.HeapAlloc
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapAlloc > peak.Load() {
					peak.Store(m.HeapAlloc)
				}
			}
		}
	}()

	const size = testrig.WebAppBigSize
	start := time.Now()
	resp, err := c.Get(fwd.URL() + "/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != size {
		t.Fatalf("Content-Length %d, want %d", resp.ContentLength, size)
	}
	want := testrig.WebAppBigBody(size)
	got, exp := make([]byte, 64<<10), make([]byte, 64<<10)
	var total int64
	for {
		n, err := io.ReadFull(resp.Body, got)
		if n > 0 {
			if _, err := io.ReadFull(want, exp[:n]); err != nil {
				t.Fatalf("body longer than %d bytes", size)
			}
			if !bytes.Equal(got[:n], exp[:n]) {
				t.Fatalf("body differs near byte %d", total)
			}
			total += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", total, err)
		}
	}
	close(stop)
	<-sampled
	if total != size {
		t.Fatalf("got %d bytes, want %d", total, size)
	}
	grew := int64(peak.Load()) - int64(base)
	t.Logf("%d MiB in %v; heap peaked %d MiB above the start", size>>20, time.Since(start).Round(time.Millisecond), grew>>20)
	if grew > 40<<20 {
		t.Fatalf("the heap grew by %d MiB during a %d MiB download: the response is being buffered", grew>>20, size>>20)
	}
	if st := fwd.Stats(); st.BytesIn < size {
		t.Fatalf("BytesIn %d < %d", st.BytesIn, size)
	}
}

func TestWebCloseEndsEverything(t *testing.T) {
	srv := newServer(t, nil)
	app := testrig.NewWebApp(t)
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: PoolOptions{Disabled: true}})
	// Connect the Session first: its goroutines are not the forward's.
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	baseline := steadyGoroutines()
	fwd, err := ListenWeb(webSpec(t, app.Addr()), s, WebOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for range 3 {
		resp, err := c.Get(fwd.URL() + "/small")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.Dial("ws://"+fwd.Addr().String()+"/ws", http.Header{"Origin": {fwd.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := fwd.Close(); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("the websocket survived Close")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the websocket hung after Close")
	}
	if _, err := c.Get(fwd.URL() + "/small"); err == nil {
		t.Fatal("the forward still answers after Close")
	}
	_ = ws.Close()
	tr.CloseIdleConnections()
	if err := fwd.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	settleGoroutines(t, baseline)
	waitFor(t, 10*time.Second, "every channel to be closed", func() bool { return s.State().OpenConns == 0 })
}

func TestListenWebErrors(t *testing.T) {
	d := DialerFunc(func(context.Context, string, int) (net.Conn, error) { return nil, errors.New("unused") })
	tests := []struct {
		name string
		spec WebSpec
	}{
		{"no target host", WebSpec{TargetPort: 80}},
		{"bad port", WebSpec{TargetHost: "localhost", TargetPort: 70000}},
		{"ancestor with path", WebSpec{TargetHost: "localhost", TargetPort: 80, AllowedFrameAncestors: []string{"http://a.example/x"}}},
		{"ancestor that injects", WebSpec{TargetHost: "localhost", TargetPort: 80, AllowedFrameAncestors: []string{"http://a.example; script-src *"}}},
		{"ancestor keyword", WebSpec{TargetHost: "localhost", TargetPort: 80, AllowedFrameAncestors: []string{"'self'"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ListenWeb(tc.spec, d, WebOptions{})
			if err == nil {
				_ = f.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrBadSpec) {
				t.Fatalf("error %v does not wrap ErrBadSpec", err)
			}
		})
	}
	if _, err := ListenWeb(WebSpec{TargetHost: "localhost", TargetPort: 80}, nil, WebOptions{}); err == nil {
		t.Fatal("no error without a Dialer")
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, p := hostPort(t, busy.Addr().String())
	if _, err := ListenWeb(WebSpec{BindPort: p, TargetHost: "localhost", TargetPort: 80}, d, WebOptions{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("listening on a busy port: %v", err)
	}
}
