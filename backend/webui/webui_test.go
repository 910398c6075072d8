package webui

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

const waitLong = 10 * time.Second // generous: the machine is small and shared

// testServer is a Server running on a real 127.0.0.1 listener.
type testServer struct {
	s      *Server
	app    *fakeApp
	addr   string // 127.0.0.1:PORT
	base   string // http://127.0.0.1:PORT
	client *http.Client
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error // Serve's result
}

func startServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	app := &fakeApp{theme: "system"}
	if opts.Bound == nil {
		opts.Bound = app
	}
	log, logs := newTestLogger()
	opts.Logger = log
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	app.pub = s.Publish
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{
		s: s, app: app, addr: ln.Addr().String(), logs: logs, cancel: cancel, done: make(chan error, 1),
		client: &http.Client{Transport: &http.Transport{}, Timeout: waitLong},
	}
	ts.base = "http://" + ts.addr
	go func() { ts.done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ts.done:
			if err != nil {
				t.Errorf("Serve returned %v, want nil after cancel", err)
			}
		case <-time.After(waitLong):
			t.Errorf("Serve did not return within %v of cancel", waitLong)
		}
		ts.client.CloseIdleConnections()
	})
	return ts
}

// do sends a request; body "" means no body. Headers: "Key: Value".
func (ts *testServer) do(t *testing.T, method, path, body string, headers ...string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		if strings.EqualFold(k, "Host") {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func (ts *testServer) auth() string { return "Authorization: Bearer " + ts.s.Token() }

// callAPI POSTs to /api/<name> with the token.
func (ts *testServer) callAPI(t *testing.T, name, body string) (int, string) {
	t.Helper()
	st, _, b := ts.do(t, "POST", "/api/"+name, body, ts.auth())
	return st, b
}

func errorOf(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Fatalf("body %q is not {\"error\": …}: %v", body, err)
	}
	return e.Error
}

func TestNewOptions(t *testing.T) {
	cases := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{"nil bound", Options{}, true},
		{"struct value", Options{Bound: fakeApp{}}, true},
		{"nil pointer", Options{Bound: (*fakeApp)(nil)}, true},
		{"pointer to non-struct", Options{Bound: new(int)}, true},
		{"short token", Options{Bound: &fakeApp{}, Token: "short"}, true},
		{"token with bad characters", Options{Bound: &fakeApp{}, Token: "aaaaaaaaaaaaaaaa&b=c"}, true},
		{"given token", Options{Bound: &fakeApp{}, Token: "0123456789abcdef-_XYZ"}, false},
		{"random token", Options{Bound: &fakeApp{}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.opts)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidOptions) {
					t.Fatalf("New: err = %v, want ErrInvalidOptions", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if tc.opts.Token != "" && s.Token() != tc.opts.Token {
				t.Errorf("Token() = %q, want %q", s.Token(), tc.opts.Token)
			}
		})
	}
}

func TestRandomTokenAndURL(t *testing.T) {
	a, err := New(Options{Bound: &fakeApp{}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Bound: &fakeApp{}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(a.Token())
	if err != nil || len(raw) != 32 {
		t.Fatalf("token %q: want 32 bytes of base64url, got %d bytes, err %v", a.Token(), len(raw), err)
	}
	if a.Token() == b.Token() {
		t.Errorf("two servers got the same random token %q", a.Token())
	}
	if got, want := a.URL("127.0.0.1:4321"), "http://127.0.0.1:4321/#token="+a.Token(); got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
}

func TestAuth(t *testing.T) {
	ts := startServer(t, Options{})
	cases := []struct {
		name   string
		header []string
		want   int
	}{
		{"no token", nil, 401},
		{"wrong token", []string{"Authorization: Bearer " + strings.Repeat("x", 43)}, 401},
		{"token prefix", []string{"Authorization: Bearer " + ts.s.Token()[:20]}, 401},
		{"wrong scheme", []string{"Authorization: Basic " + ts.s.Token()}, 401},
		{"token without scheme", []string{"Authorization: " + ts.s.Token()}, 401},
		{"right token", []string{ts.auth()}, 200},
		{"scheme is case-insensitive", []string{"Authorization: bearer " + ts.s.Token()}, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/api/Version", "/api/Nope"} {
				st, h, body := ts.do(t, "POST", path, "", tc.header...)
				want := tc.want
				if want == 200 && path == "/api/Nope" {
					want = 404
				}
				if st != want {
					t.Fatalf("POST %s: status %d (%s), want %d", path, st, body, want)
				}
				if st == 401 {
					if got := errorOf(t, body); got != "missing or wrong token: open the URL printed by porthole serve" {
						t.Errorf("401 error = %q", got)
					}
					if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("401 without WWW-Authenticate: Bearer")
					}
				}
			}
			st, _, _ := ts.do(t, "GET", "/api/methods", "", tc.header...)
			if st != tc.want {
				t.Errorf("GET /api/methods: status %d, want %d", st, tc.want)
			}
		})
	}
}

func TestHostAndOrigin(t *testing.T) {
	ts := startServer(t, Options{Assets: fstest.MapFS{"index.html": {Data: []byte("<p>ui</p>")}}})
	port := ts.addr[strings.LastIndex(ts.addr, ":")+1:]
	cases := []struct {
		name    string
		method  string
		path    string
		headers []string
		want    int
	}{
		{"api with evil host", "POST", "/api/Version", []string{"Host: evil.example:" + port}, 403},
		{"static with evil host", "GET", "/", []string{"Host: evil.example:" + port}, 403},
		{"evil host even with token", "POST", "/api/Version", []string{"Host: evil.example:" + port, "AUTH"}, 403},
		{"right host wrong port", "POST", "/api/Version", []string{"Host: 127.0.0.1:1", "AUTH"}, 403},
		{"host without port", "GET", "/", []string{"Host: 127.0.0.1"}, 403},
		{"localhost is fine", "POST", "/api/Version", []string{"Host: localhost:" + port, "AUTH"}, 200},
		{"LOCALHOST is fine", "GET", "/", []string{"Host: LOCALHOST:" + port}, 200},
		{"evil origin", "POST", "/api/Version", []string{"Origin: http://evil.example", "AUTH"}, 403},
		{"null origin", "POST", "/api/Version", []string{"Origin: null", "AUTH"}, 403},
		{"https origin of our host", "POST", "/api/Version", []string{"Origin: https://" + ts.addr, "AUTH"}, 403},
		{"our origin", "POST", "/api/Version", []string{"Origin: http://" + ts.addr, "AUTH"}, 200},
		{"our localhost origin", "POST", "/api/Version", []string{"Origin: http://localhost:" + port, "AUTH"}, 200},
		{"no origin (curl)", "POST", "/api/Version", []string{"AUTH"}, 200},
		{"evil origin on a GET is left to the token", "GET", "/api/methods", []string{"Origin: http://evil.example", "AUTH"}, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := slices.Clone(tc.headers)
			for i, h := range hs {
				if h == "AUTH" {
					hs[i] = ts.auth()
				}
			}
			st, h, body := ts.do(t, tc.method, tc.path, "", hs...)
			if st != tc.want {
				t.Fatalf("status %d (%s), want %d", st, body, tc.want)
			}
			wantRP := "no-referrer"
			if st == 200 && tc.path == "/" {
				wantRP = "origin" // the UI page: its frames send its origin to the web forwards
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != wantRP {
				t.Errorf("security headers missing: %v", h)
			}
			if st == 403 {
				if msg := errorOf(t, body); !strings.Contains(msg, "forbidden") {
					t.Errorf("403 error %q does not say forbidden", msg)
				}
			}
		})
	}
	if !strings.Contains(ts.logs.String(), "evil.example") {
		t.Errorf("refused Host/Origin not logged")
	}
}

func TestCall(t *testing.T) {
	ts := startServer(t, Options{})
	cases := []struct {
		name     string
		method   string
		body     string
		want     int
		wantJSON string // exact JSON result for 200
		wantErr  string // substring of the error for non-200
	}{
		{"Version", "Version", "", 200, `{"version":"1.2.3","commit":"abc","go":"go1.26"}`, ""},
		{"Version with []", "Version", "[]", 200, `{"version":"1.2.3","commit":"abc","go":"go1.26"}`, ""},
		{"Version with spaces", "Version", " [ ] \n", 200, `{"version":"1.2.3","commit":"abc","go":"go1.26"}`, ""},
		{"no result", "Ping", "", 200, `null`, ""},
		{"nil error", "Check", "[]", 200, `null`, ""},
		{"value and error", "SetTheme", `["dark"]`, 200, `{"theme":"dark"}`, ""},
		{"two ints", "Add", `[2, 40]`, 200, `42`, ""},
		{"struct param", "Configure", `[{"name":"lab","port":8888,"tags":["gpu"]}]`, 200, `{"name":"lab","port":8888,"tags":["gpu"]}`, ""},
		{"pointer param", "Maybe", `[{"name":"x"}]`, 200, `true`, ""},
		{"nil pointer param", "Maybe", `[null]`, 200, `false`, ""},
		{"any param", "Echo", `[{"a":[1,"b",null]}]`, 200, `{"a":[1,"b",null]}`, ""},
		{"variadic", "Join", `["-", ["a","b","c"]]`, 200, `"a-b-c"`, ""},
		{"variadic with null", "Join", `["-", null]`, 200, `""`, ""},

		{"too many arguments", "SetTheme", `["dark","light"]`, 400, "", "SetTheme expects 1 argument (string), got 2"},
		{"too few arguments", "Add", `[1]`, 400, "", "Add expects 2 arguments (int, int), got 1"},
		{"none expected", "Version", `[1]`, 400, "", "Version expects no arguments, got 1"},
		{"empty body for one", "SetTheme", ``, 400, "", "SetTheme expects 1 argument (string), got 0"},
		{"wrong type", "SetTheme", `[42]`, 400, "", "SetTheme argument 1: expected string, got number"},
		{"bool for int", "Add", `[1, true]`, 400, "", "Add argument 2: expected int, got boolean"},
		{"fraction for int", "Add", `[1.5, 2]`, 400, "", "Add argument 1: expected int, got number 1.5"},
		{"overflow", "Add", `[1e400, 2]`, 400, "", "Add argument 1: expected int"},
		{"null for string", "SetTheme", `[null]`, 400, "", "SetTheme argument 1: expected string, got null"},
		{"unknown field", "Configure", `[{"name":"x","prot":1}]`, 400, "", `Configure argument 1: unknown field "prot"`},
		{"wrong field type", "Configure", `[{"name":"x","port":"80"}]`, 400, "", `Configure argument 1: field "port": expected int, got string`},
		{"array for struct", "Configure", `[[1]]`, 400, "", "Configure argument 1: expected Opts, got array"},
		{"object body", "SetTheme", `{"theme":"dark"}`, 400, "", "SetTheme: arguments must be a JSON array, got object (it expects 1 argument (string))"},
		{"bare string body", "SetTheme", `"dark"`, 400, "", "SetTheme: arguments must be a JSON array, got string"},
		{"invalid JSON", "SetTheme", `["dark"`, 400, "", "SetTheme: arguments are not valid JSON"},
		{"trailing garbage", "SetTheme", `["dark"] x`, 400, "", "SetTheme: arguments are not valid JSON"},

		{"unknown method", "Nope", "", 404, "", `unknown method "Nope"`},
		{"lowercase name", "version", "", 404, "", `unknown method "version"`},
		{"skipped lifecycle hook", "Startup", "", 404, "", `unknown method "Startup"`},
		{"skipped func param", "OnEach", "", 404, "", `unknown method`},
		{"skipped context param", "WithContext", "", 404, "", `unknown method`},
		{"skipped chan result", "Stream", "", 404, "", `unknown method`},
		{"skipped three results", "Three", "", 404, "", `unknown method`},
		{"skipped two values", "TwoValues", "", 404, "", `unknown method`},
		{"unexported", "unexported", "", 404, "", `unknown method`},
		{"nested path", "Version/x", "", 404, "", `no such endpoint`},

		{"error", "Fail", "", 500, "", "disk on fire: free some space"},
		{"validation error", "SetTheme", `["blue"]`, 500, "", `theme "blue": want system, light or dark`},
		{"error with HTTPStatus, wrapped", "Conflict", "", 409, "", "save settings: settings was changed by someone else; reload and retry"},
		{"HTTPStatus out of range", "Bogus", "", 500, "", "bogus"},
		{"panic", "Boom", "", 500, "", "Boom: method panicked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, h, body := ts.do(t, "POST", "/api/"+tc.method, tc.body, ts.auth())
			if st != tc.want {
				t.Fatalf("status %d (%s), want %d", st, body, tc.want)
			}
			if ct := h.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if cc := h.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			if st == 200 {
				if got := strings.TrimSpace(body); got != tc.wantJSON {
					t.Errorf("result %s, want %s", got, tc.wantJSON)
				}
				return
			}
			if msg := errorOf(t, body); !strings.Contains(msg, tc.wantErr) {
				t.Errorf("error %q, want it to contain %q", msg, tc.wantErr)
			}
		})
	}

	t.Run("server survives a panic", func(t *testing.T) {
		for range 3 {
			if st, body := ts.callAPI(t, "Boom", ""); st != 500 {
				t.Fatalf("Boom: status %d (%s), want 500", st, body)
			}
		}
		if st, body := ts.callAPI(t, "Version", ""); st != 200 || !strings.Contains(body, "1.2.3") {
			t.Fatalf("Version after panics: %d %s", st, body)
		}
		if logs := ts.logs.String(); !strings.Contains(logs, "kaboom") || !strings.Contains(logs, "method panicked") {
			t.Errorf("panic not logged with its value; logs:\n%s", logs)
		}
	})
	t.Run("side effect happened", func(t *testing.T) {
		ts.app.mu.Lock()
		pings := ts.app.pings
		ts.app.mu.Unlock()
		if pings != 1 {
			t.Errorf("Ping ran %d times, want 1", pings)
		}
	})
	t.Run("wrong HTTP method", func(t *testing.T) {
		st, h, _ := ts.do(t, "GET", "/api/Version", "", ts.auth())
		if st != 405 || h.Get("Allow") != "POST" {
			t.Errorf("GET /api/Version: status %d Allow %q, want 405 POST", st, h.Get("Allow"))
		}
		st, _, _ = ts.do(t, "POST", "/api/events", "", ts.auth())
		if st != 405 {
			t.Errorf("POST /api/events: status %d, want 405", st)
		}
	})
	t.Run("arguments are never logged", func(t *testing.T) {
		st, _ := ts.callAPI(t, "Configure", `[{"name":"","port":1,"tags":["hunter2-secret"]}]`)
		if st != 500 {
			t.Fatalf("status %d, want 500", st)
		}
		if strings.Contains(ts.logs.String(), "hunter2") {
			t.Errorf("an argument value leaked into the log")
		}
		if strings.Contains(ts.logs.String(), ts.s.Token()) {
			t.Errorf("the token leaked into the log")
		}
	})
}

func TestBodyLimit(t *testing.T) {
	ts := startServer(t, Options{MaxBodyBytes: 1024})
	big := `["` + strings.Repeat("a", 2000) + `"]`
	st, body := ts.callAPI(t, "SetTheme", big)
	if st != 413 {
		t.Fatalf("status %d (%s), want 413", st, body)
	}
	if msg := errorOf(t, body); !strings.Contains(msg, "1 KiB") {
		t.Errorf("error %q does not name the limit", msg)
	}
	if st, body := ts.callAPI(t, "SetTheme", `["light"]`); st != 200 {
		t.Errorf("small body after a big one: %d %s", st, body)
	}
}

func TestMethodsEndpoint(t *testing.T) {
	ts := startServer(t, Options{})
	st, _, body := ts.do(t, "GET", "/api/methods", "", ts.auth())
	if st != 200 {
		t.Fatalf("status %d (%s)", st, body)
	}
	var infos []MethodInfo
	if err := json.Unmarshal([]byte(body), &infos); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	var names []string
	byName := map[string]MethodInfo{}
	for _, mi := range infos {
		names = append(names, mi.Name)
		byName[mi.Name] = mi
	}
	if !slices.Equal(names, wantMethods) {
		t.Errorf("methods %v, want %v", names, wantMethods)
	}
	checks := []struct {
		name   string
		params []string
		result string
		err    bool
	}{
		{"SetTheme", []string{"string"}, "Settings", true},
		{"Version", []string{}, "VersionInfo", false},
		{"Ping", []string{}, "", false},
		{"Fail", []string{}, "", true},
		{"Configure", []string{"Opts"}, "Opts", true},
		{"Maybe", []string{"*Opts"}, "bool", false},
		{"Join", []string{"string", "[]string"}, "string", false},
		{"Echo", []string{"any"}, "any", false},
	}
	for _, c := range checks {
		mi := byName[c.name]
		if !slices.Equal(mi.Params, c.params) || mi.Result != c.result || mi.Error != c.err {
			t.Errorf("%s: got %+v, want params %v result %q error %v", c.name, mi, c.params, c.result, c.err)
		}
	}
	if !strings.Contains(body, `"params":[]`) {
		t.Errorf("a method without parameters should list \"params\":[] (not null): %s", body)
	}
	if got := ts.s.Methods(); len(got) != len(wantMethods) {
		t.Errorf("Methods() has %d entries, want %d", len(got), len(wantMethods))
	}
}

func TestStatic(t *testing.T) {
	assets := fstest.MapFS{
		"index.html":          {Data: []byte("<!doctype html><p>porthole</p>")},
		"assets/app-1234.js":  {Data: []byte("console.log('hi')")},
		"assets/app-1234.css": {Data: []byte("body{}")},
		"docs/index.html":     {Data: []byte("<p>docs</p>")},
	}
	ts := startServer(t, Options{Assets: assets})
	cases := []struct {
		name     string
		path     string
		want     int
		wantBody string
		wantType string
	}{
		{"root", "/", 200, "porthole", "text/html"},
		{"index.html", "/index.html", 200, "porthole", "text/html"},
		{"js", "/assets/app-1234.js", 200, "console.log", "javascript"},
		{"css", "/assets/app-1234.css", 200, "body{}", "text/css"},
		{"spa route", "/servers/lab/apps", 200, "porthole", "text/html"},
		{"directory index", "/docs/", 200, "docs", "text/html"},
		{"missing asset", "/assets/missing.js", 404, "no such file", "application/json"},
		{"dot-dot stays inside the assets", "/../../etc/passwd", 200, "porthole", "text/html"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, h, body := ts.do(t, "GET", tc.path, "")
			if st != tc.want {
				t.Fatalf("status %d (%s), want %d", st, body, tc.want)
			}
			if !strings.Contains(body, tc.wantBody) {
				t.Errorf("body %q, want it to contain %q", body, tc.wantBody)
			}
			if !strings.Contains(h.Get("Content-Type"), tc.wantType) {
				t.Errorf("Content-Type %q, want %q", h.Get("Content-Type"), tc.wantType)
			}
			if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("frame protection missing: %v", h)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "origin" {
				t.Errorf("security headers missing: %v", h)
			}
		})
	}
	t.Run("POST to static", func(t *testing.T) {
		if st, _, _ := ts.do(t, "POST", "/", "x"); st != 405 {
			t.Errorf("status %d, want 405", st)
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		if st, _, body := ts.do(t, "HEAD", "/", ""); st != 200 || body != "" {
			t.Errorf("HEAD /: status %d body %q", st, body)
		}
	})
}

func TestStaticWithoutAssets(t *testing.T) {
	ts := startServer(t, Options{})
	if st, _, body := ts.do(t, "GET", "/", ""); st != 404 || !strings.Contains(body, "no UI assets") {
		t.Errorf("GET / without assets: %d %s", st, body)
	}
}

// sseClient reads an event stream into a channel of events (raw JSON kept).
type sseEvent struct {
	Topic string          `json:"topic"`
	Data  json.RawMessage `json:"data"`
}

type sseStream struct {
	resp   *http.Response
	events chan sseEvent
	ended  chan error // the stream's end (io.EOF or an error)
	lines  chan string
}

func openStream(t *testing.T, ts *testServer) *sseStream {
	t.Helper()
	req, err := http.NewRequest("GET", ts.base+"/api/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ts.s.Token())
	client := &http.Client{Transport: &http.Transport{}} // no Timeout: the stream is endless
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET /api/events: %v", err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET /api/events: status %d (%s)", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	st := &sseStream{resp: resp, events: make(chan sseEvent, 1000), ended: make(chan error, 1), lines: make(chan string, 1000)}
	go func() {
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				st.ended <- err
				return
			}
			line = strings.TrimSuffix(line, "\n")
			select {
			case st.lines <- line:
			default:
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var ev sseEvent
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					st.ended <- fmt.Errorf("bad event %q: %w", data, err)
					return
				}
				st.events <- ev
			}
		}
	}()
	t.Cleanup(func() {
		resp.Body.Close()
		client.CloseIdleConnections()
	})
	return st
}

func (st *sseStream) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev := <-st.events:
		return ev
	case err := <-st.ended:
		t.Fatalf("stream ended before the next event: %v", err)
	case <-time.After(waitLong):
		t.Fatalf("no event within %v", waitLong)
	}
	return sseEvent{}
}

func TestEventsSnapshotThenLive(t *testing.T) {
	var ts *testServer
	snapshot := func() []Event {
		return []Event{
			{Topic: "app.status", Data: map[string]any{"mode": "serve"}},
			{Topic: "settings", Data: Settings{Theme: "system"}},
		}
	}
	ts = startServer(t, Options{Snapshot: snapshot})
	st := openStream(t, ts)
	if ev := st.next(t); ev.Topic != "app.status" || string(ev.Data) != `{"mode":"serve"}` {
		t.Errorf("first event %s %s, want the snapshot's app.status", ev.Topic, ev.Data)
	}
	if ev := st.next(t); ev.Topic != "settings" || string(ev.Data) != `{"theme":"system"}` {
		t.Errorf("second event %s %s, want the snapshot's settings", ev.Topic, ev.Data)
	}
	// A method that publishes: the event reaches the stream.
	if code, body := ts.callAPI(t, "SetTheme", `["dark"]`); code != 200 {
		t.Fatalf("SetTheme: %d %s", code, body)
	}
	if ev := st.next(t); ev.Topic != "settings" || string(ev.Data) != `{"theme":"dark"}` {
		t.Errorf("live event %s %s, want settings dark", ev.Topic, ev.Data)
	}
	ts.s.Publish("app.status", map[string]int{"servers": 3})
	if ev := st.next(t); ev.Topic != "app.status" || string(ev.Data) != `{"servers":3}` {
		t.Errorf("live event %s %s", ev.Topic, ev.Data)
	}
	// An event that cannot be encoded is dropped, the stream goes on.
	ts.s.Publish("bad", func() {})
	ts.s.Publish("good", 1)
	if ev := st.next(t); ev.Topic != "good" {
		t.Errorf("after an unencodable event got %s, want good", ev.Topic)
	}
}

// An event published while the snapshot is being taken arrives after it, never lost.
func TestEventsPublishDuringSnapshot(t *testing.T) {
	var s *Server
	ready := make(chan struct{})
	snapshot := func() []Event {
		<-ready
		s.Publish("settings", Settings{Theme: "light"}) // a change racing the snapshot
		return []Event{{Topic: "settings", Data: Settings{Theme: "dark"}}}
	}
	ts := startServer(t, Options{Snapshot: snapshot})
	s = ts.s
	close(ready)
	st := openStream(t, ts)
	first, second := st.next(t), st.next(t)
	if string(first.Data) != `{"theme":"dark"}` || string(second.Data) != `{"theme":"light"}` {
		t.Errorf("got %s then %s, want the snapshot (dark) then the racing event (light)", first.Data, second.Data)
	}
}

func TestEventsKeepAlive(t *testing.T) {
	ts := startServer(t, Options{KeepAlive: 50 * time.Millisecond})
	st := openStream(t, ts)
	deadline := time.After(waitLong)
	for {
		select {
		case line := <-st.lines:
			if line == ": keep-alive" {
				return
			}
		case <-deadline:
			t.Fatalf("no keep-alive comment within %v", waitLong)
		}
	}
}

func TestEventsSnapshotPanics(t *testing.T) {
	ts := startServer(t, Options{Snapshot: func() []Event { panic("no state") }})
	st, _, body := ts.do(t, "GET", "/api/events", "", ts.auth())
	if st != 500 {
		t.Fatalf("status %d (%s), want 500", st, body)
	}
	if code, _ := ts.callAPI(t, "Version", ""); code != 200 {
		t.Errorf("server unusable after a snapshot panic: %d", code)
	}
	if ts.s.hub.count() != 0 {
		t.Errorf("subscriber left behind after a failed snapshot")
	}
}

// A client that never reads must neither block Publish nor stay subscribed.
func TestEventsSlowSubscriber(t *testing.T) {
	ts := startServer(t, Options{EventBuffer: 4})
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() }) // runs before the server's cleanup (LIFO)
	fmt.Fprintf(conn, "GET /api/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", ts.addr, ts.s.Token())
	waitFor(t, "the subscriber to register", func() bool { return ts.s.hub.count() == 1 })

	fast := openStream(t, ts)
	waitFor(t, "the second subscriber", func() bool { return ts.s.hub.count() == 2 })

	big := strings.Repeat("x", 256<<10)
	const n = 100 // 25 MiB: far more than the socket buffers hold
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			ts.s.Publish("big", map[string]any{"i": i, "pad": big})
		}
	}()
	// The fast reader keeps up meanwhile (or, if this machine is very slow, is
	// dropped too); either way Publish must finish.
	go func() {
		for {
			select {
			case <-fast.events:
			case <-done:
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(4 * waitLong):
		t.Fatalf("Publish blocked on a subscriber that does not read")
	}
	waitFor(t, "the slow subscriber to be dropped", func() bool { return ts.s.hub.count() <= 1 })
	if !strings.Contains(ts.logs.String(), "fell behind") {
		t.Errorf("dropping a slow subscriber was not logged")
	}
}

func TestHubDropsFullSubscriber(t *testing.T) {
	log, _ := newTestLogger()
	h := newHub(2, log)
	slow, fast := h.subscribe(), h.subscribe()
	for i := range 3 {
		h.publish([]byte{byte('a' + i)})
		<-fast.ch
	}
	var got []string
	for msg := range slow.ch { // closed after the buffered messages: dropped
		got = append(got, string(msg))
	}
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("slow subscriber got %v, want [a b] then close", got)
	}
	if h.count() != 1 {
		t.Errorf("count %d, want 1 (fast still subscribed)", h.count())
	}
	h.unsubscribe(slow) // already gone: no double close
	h.close()
	if _, ok := <-fast.ch; ok {
		t.Errorf("fast subscriber's channel still open after close")
	}
	late := h.subscribe()
	if _, ok := <-late.ch; ok {
		t.Errorf("subscriber of a closed hub got an open channel")
	}
	h.publish([]byte("x")) // no panic, no one to deliver to
}

func TestServeStopsWithOpenStream(t *testing.T) {
	ts := startServer(t, Options{Snapshot: func() []Event { return []Event{{Topic: "app.status", Data: 1}} }})
	st := openStream(t, ts)
	st.next(t)
	ts.cancel()
	select {
	case err := <-ts.done:
		if err != nil {
			t.Errorf("Serve: %v, want nil", err)
		}
		ts.done <- nil // for the cleanup
	case <-time.After(waitLong):
		t.Fatalf("Serve did not return within %v with an open event stream", waitLong)
	}
	select {
	case err := <-st.ended:
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Logf("stream ended with %v", err)
		}
	case <-time.After(waitLong):
		t.Fatalf("event stream still open after Serve returned")
	}
	if _, err := net.DialTimeout("tcp", ts.addr, waitLong); err == nil {
		t.Errorf("listener still accepting after Serve returned")
	}
}

type fakeListener struct{ addr net.Addr }

func (l fakeListener) Accept() (net.Conn, error) { return nil, errors.New("fake") }
func (l fakeListener) Close() error              { return nil }
func (l fakeListener) Addr() net.Addr            { return l.addr }

func TestServeRefusesNonLoopback(t *testing.T) {
	s, err := New(Options{Bound: &fakeApp{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"0.0.0.0:8080", "192.0.2.1:80", "[::]:80"} {
		addr, err := net.ResolveTCPAddr("tcp", a)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Serve(context.Background(), fakeListener{addr}); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("Serve on %s: %v, want ErrNotLoopback", a, err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWithStatus(t *testing.T) {
	base := errors.New("theme \"blue\": want system, light or dark")
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"plain", base, 500},
		{"400", WithStatus(base, 400), 400},
		{"wrapped 422", fmt.Errorf("set theme: %w", WithStatus(base, 422)), 422},
		{"out of range", WithStatus(base, 302), 500},
		{"bridge error", badArgs("x"), 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := httpStatus(tc.err); got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}
	if WithStatus(nil, 400) != nil {
		t.Errorf("WithStatus(nil) is not nil")
	}
	if e := WithStatus(base, 400); e.Error() != base.Error() || !errors.Is(e, base) {
		t.Errorf("WithStatus changed the message or the chain: %v", e)
	}
}

// TestServeRefusesOtherUsers: a connection from another local user's socket
// is closed without an answer, while this user's gets one.
func TestServeRefusesOtherUsers(t *testing.T) {
	other := otherUser(t)
	ts := startServer(t, Options{})
	_, port, _ := net.SplitHostPort(ts.addr)
	script := "exec 3<>/dev/tcp/127.0.0.1/" + port + " || exit 3\n" +
		"printf 'GET /api/methods HTTP/1.0\\r\\nHost: " + ts.addr + "\\r\\n\\r\\n' >&3\n" +
		"cat <&3"
	out, err := runAs(t, nil, script)
	if err != nil || !strings.HasPrefix(out, "HTTP/1.0 401") {
		t.Fatalf("this user's request: %v, %q; want a 401 answer", err, out)
	}
	out, err = runAs(t, other, script)
	if strings.Contains(out, "HTTP/") {
		t.Fatalf("another user's request was answered: %q", out)
	}
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() != 3) {
		t.Fatalf("another user could not even connect (%v: %q); the test proves nothing", err, out)
	}
	waitFor(t, "the refusal to be logged", func() bool { return strings.Contains(ts.logs.String(), "another OS user") })
}
