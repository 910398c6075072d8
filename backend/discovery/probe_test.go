package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// requestLog records the requests an httptest mimic received.
type requestLog struct {
	mu   sync.Mutex
	reqs []string // "PATH host=HOST close=BOOL"
}

func (l *requestLog) add(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, fmt.Sprintf("%s host=%s close=%v", r.URL.RequestURI(), r.Host, r.Close))
}

func (l *requestLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.reqs...)
}

// jupyterLabMimic answers like JupyterLab with token auth.
func jupyterLabMimic(log *requestLog) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r)
		w.Header().Set("Server", "TornadoServer/6.4.1")
		w.Header().Set("Content-Security-Policy", "frame-ancestors 'self'; report-uri /api/security/csp-report")
		switch r.URL.Path {
		case "/":
			http.Redirect(w, r, "/lab", http.StatusFound)
		case "/lab":
			http.Redirect(w, r, "/login?next=%2Flab", http.StatusFound)
		default:
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html><head><title>Jupyter Server</title></head></html>")
		}
	})
}

func grafanaMimic(log *requestLog) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r)
		if r.URL.Path == "/" {
			http.SetCookie(w, &http.Cookie{Name: "redirect_to", Value: "%2F", Path: "/", HttpOnly: true})
			http.Redirect(w, r, "/login", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		io.WriteString(w, "<!DOCTYPE html><html><head><title>Grafana</title></head><body></body></html>")
	})
}

func streamlitMimic(log *requestLog) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r)
		w.Header().Set("Server", "TornadoServer/6.4.1")
		http.SetCookie(w, &http.Cookie{Name: "_streamlit_xsrf", Value: "2|a|b|1", Path: "/"})
		io.WriteString(w, `<!doctype html><html><head><title>Streamlit</title></head><body><div id="root"></div></body></html>`)
	})
}

// tensorBoardMimic answers like TensorBoard, chunked (no Content-Length).
func tensorBoardMimic(log *requestLog) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r)
		w.Header().Set("Server", "Werkzeug/3.0.4 Python/3.11.7")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!doctype html><html><head><meta charset=\"utf-8\"><title>TensorBoard</title></head>")
		w.(http.Flusher).Flush()
		io.WriteString(w, "<body><tb-webapp></tb-webapp></body></html>")
	})
}

func TestProbeHTTPMimics(t *testing.T) {
	checkGoroutines(t)
	for _, tc := range []struct {
		name    string
		handler func(*requestLog) http.Handler
		kind    Kind
		title   string
		paths   []string // requested, in order
	}{
		{"jupyter lab", jupyterLabMimic, KindJupyterLab, "Jupyter Lab", []string{"/", "/lab"}},
		{"grafana", grafanaMimic, KindGrafana, "Grafana", []string{"/", "/login"}},
		{"streamlit", streamlitMimic, KindStreamlit, "Streamlit", []string{"/"}},
		{"tensorboard", tensorBoardMimic, KindTensorBoard, "TensorBoard", []string{"/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := &requestLog{}
			port := serve(t, tc.handler(log))
			d := newTestDialer()
			p := prober{dial: d, timeout: 5 * time.Second}
			r := p.probe(context.Background(), []string{"127.0.0.1"}, port)
			if r.proto != ProtoHTTP || r.err != nil || r.host != "127.0.0.1" {
				t.Fatalf("probe = %v host %q err %v", r.proto, r.host, r.err)
			}
			id := identify(port, nil, &r, "")
			if id.kind != tc.kind || id.title != tc.title {
				t.Errorf("identified as %v %q, want %v %q", id.kind, id.title, tc.kind, tc.title)
			}
			reqs := log.get()
			if len(reqs) != len(tc.paths) {
				t.Fatalf("requests %q, want paths %q (one request, at most one redirect)", reqs, tc.paths)
			}
			for i, p := range tc.paths {
				want := fmt.Sprintf("%s host=localhost:%d close=true", p, port)
				if reqs[i] != want {
					t.Errorf("request %d = %q, want %q", i, reqs[i], want)
				}
			}
			if d.peak() != 1 {
				t.Errorf("%d connections open at once; the redirect must reuse nothing and overlap nothing", d.peak())
			}
		})
	}
}

func TestProbeNonHTTP(t *testing.T) {
	checkGoroutines(t)
	sshPort := rawServer(t, func(c net.Conn) {
		io.WriteString(c, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
		io.Copy(io.Discard, c)
	})
	silentPort := rawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) }) // reads, never answers
	closerPort := rawServer(t, func(c net.Conn) {})                         // closes at once
	garbagePort := rawServer(t, func(c net.Conn) {
		c.Write([]byte{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0xfe})
		io.Copy(io.Discard, c)
	})
	bigPort := rawServer(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n")
		chunk := strings.Repeat("x", 4096)
		for i := 0; i < 1024; i++ { // 4 MiB, no title, no length
			if _, err := io.WriteString(c, chunk); err != nil {
				return
			}
		}
	})
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	const timeout = 300 * time.Millisecond
	for _, tc := range []struct {
		name       string
		port       int
		proto      Protocol
		kind       Kind
		err        bool
		noDeadline bool
	}{
		{"ssh banner", sshPort, ProtoSSH, KindSSH, false, false},
		{"silent", silentPort, ProtoSilent, KindNotHTTP, false, false},
		{"silent, conn without deadlines", silentPort, ProtoSilent, KindNotHTTP, false, true},
		{"closes at once", closerPort, ProtoSilent, KindNotHTTP, false, false},
		{"garbage", garbagePort, ProtoOther, KindNotHTTP, false, false},
		{"endless body", bigPort, ProtoHTTP, KindHTTP, false, false},
		{"nothing listens", closedPort, ProtoNone, KindUnknown, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDialer()
			d.noDeadlines = tc.noDeadline
			p := prober{dial: d, timeout: timeout}
			start := time.Now()
			r := p.probe(context.Background(), []string{"127.0.0.1"}, tc.port)
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("probe took %v; the timeout is %v", el, timeout)
			}
			if r.proto != tc.proto || (r.err != nil) != tc.err {
				t.Errorf("probe = %v, err %v; want %v (error %v)", r.proto, r.err, tc.proto, tc.err)
			}
			if k := identify(tc.port, nil, &r, "").kind; k != tc.kind {
				t.Errorf("kind = %v, want %v", k, tc.kind)
			}
			if r.first != nil && len(r.first.body) > maxProbeRead {
				t.Errorf("read %d bytes; the cap is %d", len(r.first.body), maxProbeRead)
			}
		})
	}
}

func TestProbeFallsBackToNextHost(t *testing.T) {
	checkGoroutines(t)
	port := serve(t, streamlitMimic(&requestLog{}))
	d := newTestDialer()
	d.refuseHosts["::1"] = true
	p := prober{dial: d, timeout: 5 * time.Second}
	r := p.probe(context.Background(), []string{"::1", "127.0.0.1"}, port)
	if r.proto != ProtoHTTP || r.host != "127.0.0.1" || d.count(port) != 2 {
		t.Errorf("probe = %v via %q after %d dials; want HTTP via 127.0.0.1 after 2", r.proto, r.host, d.count(port))
	}
	if r := p.probe(context.Background(), nil, port); r.proto != ProtoNone || r.err == nil {
		t.Errorf("probe with no hosts = %v %v", r.proto, r.err)
	}
}

func TestProbeCancelled(t *testing.T) {
	checkGoroutines(t)
	silentPort := rawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	d := newTestDialer()
	d.noDeadlines = true // only the cancel can end the read
	p := prober{dial: d, timeout: time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	r := p.probe(ctx, []string{"127.0.0.1"}, silentPort)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("cancelled probe took %v", el)
	}
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("probe error = %v, want context.Canceled", r.err)
	}
}

// lazyDialer is a LazyDialer over testDialer: DialLazy connects at the
// first Read (after the request was written), like agent.ProbeDialer.
type lazyDialer struct {
	*testDialer
	lazy int // DialLazy calls
}

func (d *lazyDialer) DialLazy(ctx context.Context, host string, port int) (net.Conn, error) {
	d.mu.Lock()
	d.lazy++
	d.mu.Unlock()
	return &lazyConn{ctx: ctx, d: d.testDialer, host: host, port: port}, nil
}

type lazyConn struct {
	ctx      context.Context
	d        *testDialer
	host     string
	port     int
	req      []byte
	conn     net.Conn
	deadline time.Time
}

func (c *lazyConn) Write(b []byte) (int, error) { c.req = append(c.req, b...); return len(b), nil }

func (c *lazyConn) Read(b []byte) (int, error) {
	if c.conn == nil {
		conn, err := c.d.Dial(c.ctx, c.host, c.port)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", ErrNotConnected, err)
		}
		c.conn = conn
		_ = conn.SetDeadline(c.deadline)
		if _, err := conn.Write(c.req); err != nil {
			return 0, err
		}
	}
	return c.conn.Read(b)
}

func (c *lazyConn) Close() error {
	if c.conn != nil {
		return c.conn.Close()
	}
	return nil
}
func (c *lazyConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *lazyConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *lazyConn) SetDeadline(t time.Time) error      { c.deadline = t; return nil }
func (c *lazyConn) SetReadDeadline(t time.Time) error  { c.deadline = t; return nil }
func (c *lazyConn) SetWriteDeadline(t time.Time) error { return nil }

// With a LazyDialer, one probe of a port is one connection per host tried
// (the request goes with the connect, no separate connect check); a host
// that does not connect is skipped, and a port no host connects to is
// ProtoNone (probed again at the next Scan), not Silent.
func TestProbeLazyDialerOneConnection(t *testing.T) {
	checkGoroutines(t)
	port := serve(t, streamlitMimic(&requestLog{}))
	d := &lazyDialer{testDialer: newTestDialer()}
	d.refuseHosts["::1"] = true
	p := prober{dial: d, timeout: 5 * time.Second}
	r := p.probe(context.Background(), []string{"::1", "127.0.0.1"}, port)
	if r.proto != ProtoHTTP || r.host != "127.0.0.1" || d.count(port) != 2 || d.lazy != 2 {
		t.Errorf("probe = %v via %q after %d dials (%d lazy); want HTTP via 127.0.0.1 after 2, both lazy", r.proto, r.host, d.count(port), d.lazy)
	}
	d.refuseHosts["127.0.0.1"] = true
	if r := p.probe(context.Background(), []string{"::1", "127.0.0.1"}, port); r.proto != ProtoNone || !errors.Is(r.err, ErrNotConnected) {
		t.Errorf("probe of a port no host connects to = %v, %v; want ProtoNone with ErrNotConnected", r.proto, r.err)
	}
}
