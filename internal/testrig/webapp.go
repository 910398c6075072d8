package testrig

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// WebApp routes and sizes.
const (
	// WebAppResources is how many sub-resources "/" references (/res/0 …).
	WebAppResources = 50
	// WebAppBigSize is the default body size of /big.
	WebAppBigSize = 100 << 20
	// WebAppTitle is the <title> of "/".
	WebAppTitle = "Porthole test app"
	// WebAppSessionCookie is the cookie /cookie and /persist set.
	WebAppSessionCookie = "porthole_session"
	// WebAppSessionMaxAge is how long the session cookie lives: a login that
	// outlives the browser, as apps' logins do (Jupyter's lasts 30 days).
	WebAppSessionMaxAge = 30 * 24 * 3600
	// WebAppPersistTitle is the <title> of /persist.
	WebAppPersistTitle = "Porthole remembers"
	// WebAppStorageKey is the localStorage key and IndexedDB record /persist uses.
	WebAppStorageKey = "porthole-check"
)

// WebAppOptions configures a WebApp.
type WebAppOptions struct {
	// Addr to listen on; default "127.0.0.1:0". Must be a loopback address,
	// unless InOwnNetns.
	Addr string
	// InOwnNetns: the process runs in a network namespace the test made
	// itself, so Addr may be any of its addresses (e.g. 192.0.2.10 on its
	// loopback interface, standing for a server's own LAN address).
	InOwnNetns bool
	// Logger receives one debug line per request; nil discards them.
	Logger *slog.Logger
	// OnRequest, when set, is called with each request's record as it
	// arrives (from the request's goroutine; it must not block for long).
	OnRequest func(RequestRecord)
}

// RequestRecord is what the WebApp saw of one request.
type RequestRecord struct {
	Method     string
	Path       string
	RawQuery   string
	Host       string
	Origin     string
	Referer    string
	Cookie     string // the raw Cookie header
	RemoteAddr string
	Time       time.Time
}

// WebApp is a plain net/http test web app on loopback. Routes:
//
//	/            HTML page titled WebAppTitle referencing /res/0 … /res/49
//	/res/N       small distinct CSS (even N) or JavaScript (odd N) bodies, 1–4 KiB
//	/small       a tiny text body
//	/big         100 MiB of deterministic bytes (see WebAppBigBody); ?size=N overrides
//	/ws          websocket echo
//	/cookie      sets porthole_session and echoes the cookie it received (JSON)
//	/headers     the received headers as JSON (with "Host")
//	/persist     a page that keeps a session cookie, a localStorage value and an
//	             IndexedDB record, and reports what it found to /persist/report
//	             (?ls=&lsNew=&idb=&idbNew=; the request record keeps it all)
//
// Every response carries X-Frame-Options: DENY.
type WebApp struct {
	log       *slog.Logger
	onRequest func(RequestRecord)
	ln        net.Listener
	srv       *http.Server

	mu       sync.Mutex
	closed   bool
	requests []RequestRecord
	wsConns  map[*websocket.Conn]struct{}
	handlers sync.WaitGroup // running handlers (hijacked websockets included)

	serveDone chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// StartWebApp starts the web app. ctx bounds start-up only.
func StartWebApp(ctx context.Context, opts WebAppOptions) (*WebApp, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("start web app: bad address %q: %w", addr, err)
	}
	if !isLoopbackHost(host) && !opts.InOwnNetns {
		return nil, fmt.Errorf("start web app: %q is not a loopback address: the test rig only listens on loopback", addr)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("start web app: listen on %s: %w", addr, err)
	}
	w := &WebApp{
		log:       orDiscard(opts.Logger).With("component", "testrig.webapp"),
		onRequest: opts.OnRequest,
		ln:        ln,
		wsConns:   make(map[*websocket.Conn]struct{}),
		serveDone: make(chan struct{}),
	}
	w.srv = &http.Server{
		Handler:           w.middleware(w.routes()),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(w.log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(w.serveDone)
		_ = w.srv.Serve(ln)
	}()
	w.log.Debug("web app listening", "url", w.URL())
	return w, nil
}

// NewWebApp is StartWebApp for tests: it fails the test on error and closes
// the app in t.Cleanup.
func NewWebApp(t testing.TB) *WebApp {
	t.Helper()
	w, err := StartWebApp(context.Background(), WebAppOptions{})
	if err != nil {
		t.Fatalf("testrig: %v", err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

// Addr is "127.0.0.1:port".
func (w *WebApp) Addr() string { return w.ln.Addr().String() }

// URL is "http://127.0.0.1:port" (no trailing slash).
func (w *WebApp) URL() string { return "http://" + w.Addr() }

// Port is the port the app listens on.
func (w *WebApp) Port() int { return w.ln.Addr().(*net.TCPAddr).Port }

// SetKeepAlive turns HTTP keep-alive on (default) or off; off, every
// response closes its connection.
func (w *WebApp) SetKeepAlive(on bool) { w.srv.SetKeepAlivesEnabled(on) }

// Requests returns a copy of every request seen so far, in arrival order.
func (w *WebApp) Requests() []RequestRecord {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]RequestRecord, len(w.requests))
	copy(out, w.requests)
	return out
}

// Count is how many requests had exactly this path.
func (w *WebApp) Count(path string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, r := range w.requests {
		if r.Path == path {
			n++
		}
	}
	return n
}

// Close stops the server, closes every connection including websockets,
// and waits for every handler to return.
func (w *WebApp) Close() error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		ws := make([]*websocket.Conn, 0, len(w.wsConns))
		for c := range w.wsConns {
			ws = append(ws, c)
		}
		w.mu.Unlock()
		if err := w.srv.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			w.closeErr = fmt.Errorf("close web app: %w", err)
		}
		for _, c := range ws {
			_ = c.NetConn().Close()
		}
		<-w.serveDone
		w.handlers.Wait()
	})
	return w.closeErr
}

func (w *WebApp) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			http.Error(rw, "shutting down", http.StatusServiceUnavailable)
			return
		}
		w.handlers.Add(1)
		rec := RequestRecord{
			Method:     r.Method,
			Path:       r.URL.Path,
			RawQuery:   r.URL.RawQuery,
			Host:       r.Host,
			Origin:     r.Header.Get("Origin"),
			Referer:    r.Header.Get("Referer"),
			Cookie:     r.Header.Get("Cookie"),
			RemoteAddr: r.RemoteAddr,
			Time:       time.Now(),
		}
		w.requests = append(w.requests, rec)
		w.mu.Unlock()
		if w.onRequest != nil {
			w.onRequest(rec)
		}
		defer w.handlers.Done()
		w.log.Debug("request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		rw.Header().Set("X-Frame-Options", "DENY")
		next.ServeHTTP(rw, r)
	})
}

func (w *WebApp) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", serveIndex)
	mux.HandleFunc("GET /res/{n}", serveResource)
	mux.HandleFunc("GET /small", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(rw, "small\n")
	})
	mux.HandleFunc("GET /big", serveBig)
	mux.HandleFunc("GET /ws", w.serveWebsocket)
	mux.HandleFunc("GET /cookie", serveCookie)
	mux.HandleFunc("/headers", serveHeaders)
	mux.HandleFunc("GET /persist", servePersist)
	w.toolRoutes(mux)
	mux.HandleFunc("GET /persist/report", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Cache-Control", "no-store")
		rw.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func serveIndex(rw http.ResponseWriter, _ *http.Request) {
	var b strings.Builder
	b.WriteString("<!doctype html>\n<html><head><meta charset=\"utf-8\">\n<title>" + html.EscapeString(WebAppTitle) + "</title>\n")
	for i := range WebAppResources {
		if i%2 == 0 {
			fmt.Fprintf(&b, "<link rel=\"stylesheet\" href=\"/res/%d\">\n", i)
		} else {
			fmt.Fprintf(&b, "<script src=\"/res/%d\"></script>\n", i)
		}
	}
	b.WriteString("</head><body><h1>" + html.EscapeString(WebAppTitle) + "</h1><p id=\"status\">loaded</p></body></html>\n")
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	_, _ = io.WriteString(rw, b.String())
}

// WebAppResource returns the content type and body of /res/n.
func WebAppResource(n int) (contentType string, body []byte) {
	size := 1024 + (n*397)%3072 // 1–4 KiB, distinct per n
	var head, line string
	if n%2 == 0 {
		contentType = "text/css; charset=utf-8"
		head = fmt.Sprintf("/* porthole test resource %d */\n.res-%d { color: #%06x; }\n", n, n, n*0x10101%0xffffff)
		line = "/* filler */\n"
	} else {
		contentType = "text/javascript; charset=utf-8"
		head = fmt.Sprintf("// porthole test resource %d\nwindow.portholeRes = (window.portholeRes || 0) + 1;\n", n)
		line = "// filler\n"
	}
	b := []byte(head)
	for len(b) < size {
		b = append(b, line...)
	}
	return contentType, b[:size]
}

func serveResource(rw http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 || n >= WebAppResources {
		http.NotFound(rw, r)
		return
	}
	ct, body := WebAppResource(n)
	rw.Header().Set("Content-Type", ct)
	rw.Header().Set("Content-Length", strconv.Itoa(len(body)))
	rw.Header().Set("Cache-Control", "no-store")
	_, _ = rw.Write(body)
}

// bigPattern is the repeating unit of /big: a prime length so that the body
// does not repeat on power-of-two boundaries.
var bigPattern = func() []byte {
	b := make([]byte, 65521)
	for i := range b {
		b[i] = byte(i*131 + i/251)
	}
	return b
}()

// WebAppBigBody returns a reader of the first size bytes /big serves, to
// verify a download.
func WebAppBigBody(size int64) io.Reader {
	return io.LimitReader(&patternReader{}, size)
}

type patternReader struct{ off int }

func (p *patternReader) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		c := copy(b[n:], bigPattern[p.off:])
		n += c
		p.off = (p.off + c) % len(bigPattern)
	}
	return n, nil
}

func serveBig(rw http.ResponseWriter, r *http.Request) {
	size := int64(WebAppBigSize)
	if s := r.URL.Query().Get("size"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			http.Error(rw, "size must be a non-negative integer", http.StatusBadRequest)
			return
		}
		size = n
	}
	rw.Header().Set("Content-Type", "application/octet-stream")
	rw.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	off := 0
	for size > 0 {
		chunk := bigPattern[off:]
		if int64(len(chunk)) > size {
			chunk = chunk[:size]
		}
		if _, err := rw.Write(chunk); err != nil {
			return
		}
		size -= int64(len(chunk))
		off = (off + len(chunk)) % len(bigPattern)
	}
}

var wsUpgrader = websocket.Upgrader{
	// Any origin: tests drive the app through proxies that may rewrite Host;
	// the Origin is recorded in Requests for tests to check.
	CheckOrigin: func(*http.Request) bool { return true },
}

func (w *WebApp) serveWebsocket(rw http.ResponseWriter, r *http.Request) {
	// Upgrade writes its own response: repeat the headers set so far.
	c, err := wsUpgrader.Upgrade(rw, r, http.Header{"X-Frame-Options": {"DENY"}})
	if err != nil {
		return // Upgrade has answered with an error
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		_ = c.Close()
		return
	}
	w.wsConns[c] = struct{}{}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.wsConns, c)
		w.mu.Unlock()
		_ = c.Close()
	}()
	for {
		typ, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(typ, msg); err != nil {
			return
		}
	}
}

// WebAppCookieReply is the JSON body of /cookie.
type WebAppCookieReply struct {
	Received string `json:"received"` // porthole_session value received, "" if none
	Session  string `json:"session"`  // porthole_session value set by this response
	Cookie   string `json:"cookie"`   // the raw Cookie header received
}

func serveCookie(rw http.ResponseWriter, r *http.Request) {
	reply := WebAppCookieReply{Cookie: r.Header.Get("Cookie")}
	if c, err := r.Cookie(WebAppSessionCookie); err == nil {
		reply.Received = c.Value
	}
	// Keep a session the browser already has; start one otherwise.
	reply.Session = reply.Received
	if reply.Session == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		reply.Session = hex.EncodeToString(b)
	}
	setSessionCookie(rw, reply.Session)
	writeJSON(rw, reply)
}

// setSessionCookie sets the session cookie the way web apps set their
// logins: HttpOnly, SameSite=Lax, for 30 days.
func setSessionCookie(rw http.ResponseWriter, value string) {
	http.SetCookie(rw, &http.Cookie{
		Name:     WebAppSessionCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   WebAppSessionMaxAge,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

// servePersist is a page that checks what the browser kept: the session
// cookie (set here when the request has none), a localStorage value and an
// IndexedDB record (made on the first visit, read on the next). Its script
// reports to /persist/report?ls=…&lsNew=…&idb=…&idbNew=…, and shows it.
func servePersist(rw http.ResponseWriter, r *http.Request) {
	session := ""
	if c, err := r.Cookie(WebAppSessionCookie); err == nil {
		session = c.Value
	}
	cookieState := "kept from last time"
	if session == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		session = hex.EncodeToString(b)
		setSessionCookie(rw, session)
		cookieState = "new"
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-store")
	_, _ = fmt.Fprintf(rw, persistPage, html.EscapeString(WebAppPersistTitle), html.EscapeString(WebAppPersistTitle),
		html.EscapeString(session[:8]), cookieState, WebAppStorageKey)
}

const persistPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>%s</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;padding:32px 40px;background:#f7f7f5;color:#1d2330}
h1{font-size:22px;margin:0 0 4px} p.sub{color:#5b6170;margin:0 0 20px}
table{border-collapse:collapse;background:#fff;border:1px solid #e1e2e6;border-radius:8px}
td{padding:10px 16px;border-top:1px solid #eceef1} tr:first-child td{border-top:0}
td:first-child{color:#5b6170} code{font:13px ui-monospace,monospace}
.kept{color:#17803d;font-weight:600} .new{color:#b45309;font-weight:600}
</style></head>
<body><h1>%s</h1><p class="sub">A page on the server's localhost, through Porthole. What did the browser keep?</p>
<table>
<tr><td>Session cookie</td><td><code>%s…</code></td><td class="cookie">%s</td></tr>
<tr><td>localStorage</td><td><code id="ls">…</code></td><td id="lsState"></td></tr>
<tr><td>IndexedDB</td><td><code id="idb">…</code></td><td id="idbState"></td></tr>
</table>
<script>
(async () => {
  const key = %q
  const mark = (id, fresh) => { const e = document.getElementById(id); e.textContent = fresh ? 'new' : 'kept from last time'; e.className = fresh ? 'new' : 'kept' }
  document.querySelectorAll('td.cookie').forEach((e) => { e.className = e.textContent === 'new' ? 'new' : 'kept' })
  let ls = localStorage.getItem(key)
  const lsNew = !ls
  if (lsNew) { ls = Math.random().toString(36).slice(2, 12); localStorage.setItem(key, ls) }
  let idb = '', idbNew = false
  try {
    const db = await new Promise((ok, fail) => {
      const r = indexedDB.open(key, 1)
      r.onupgradeneeded = () => r.result.createObjectStore('kv')
      r.onsuccess = () => ok(r.result)
      r.onerror = () => fail(r.error)
    })
    idb = await new Promise((ok, fail) => {
      const g = db.transaction('kv').objectStore('kv').get(key)
      g.onsuccess = () => ok(g.result || '')
      g.onerror = () => fail(g.error)
    })
    if (!idb) {
      idbNew = true
      idb = Math.random().toString(36).slice(2, 12)
      await new Promise((ok, fail) => {
        const tx = db.transaction('kv', 'readwrite')
        tx.objectStore('kv').put(idb, key)
        tx.oncomplete = ok
        tx.onerror = () => fail(tx.error)
      })
    }
  } catch (e) { idb = 'error: ' + e }
  document.getElementById('ls').textContent = ls
  document.getElementById('idb').textContent = idb
  mark('lsState', lsNew)
  mark('idbState', idbNew)
  await fetch('/persist/report?' + new URLSearchParams({ ls, lsNew: String(lsNew), idb, idbNew: String(idbNew) }))
})()
</script></body></html>
`

func serveHeaders(rw http.ResponseWriter, r *http.Request) {
	h := r.Header.Clone()
	h.Set("Host", r.Host)
	writeJSON(rw, h)
}

func writeJSON(rw http.ResponseWriter, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	_, _ = rw.Write(append(b, '\n'))
}
