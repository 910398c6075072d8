package forwarder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// WailsFrameAncestors are the origins of Porthole's desktop window (Wails v2:
// wails://wails on Linux and macOS, http://wails.localhost on Windows): the
// desktop mode's WebSpec.AllowedFrameAncestors. `porthole serve` passes
// ServeFrameAncestors instead, never these: in the user's browser
// http://wails.localhost is any local program's page.
var WailsFrameAncestors = []string{"wails://wails", "http://wails.localhost"}

// ServeFrameAncestors are the origins of `porthole serve`'s page at origin
// ("http://127.0.0.1:PORT"): origin itself and, for a 127.0.0.1 origin,
// http://localhost:PORT, the other name serve answers to. They are the
// serve mode's WebSpec.AllowedFrameAncestors.
func ServeFrameAncestors(origin string) []string {
	out := []string{origin}
	if port, ok := strings.CutPrefix(origin, "http://127.0.0.1:"); ok {
		out = append(out, "http://localhost:"+port)
	}
	return out
}

// WebSpec is one HTTP-aware forward: a reverse proxy on BindAddress:BindPort
// here for the web app at TargetHost:TargetPort as seen from the server.
type WebSpec struct {
	// BindAddress is where to listen: "" means loopback (127.0.0.1), "*"
	// all interfaces; anything else is an address or host name.
	BindAddress string `json:"bindAddress,omitempty"`
	// BindPort is the local port; 0 picks a free one.
	BindPort   int    `json:"bindPort"`
	TargetHost string `json:"targetHost"`
	TargetPort int    `json:"targetPort"`
	// ServerName names the server in the pages Porthole shows instead of a
	// browser error ("Reconnecting to gpu1…"); default TargetHost.
	ServerName string `json:"serverName,omitempty"`
	// AllowedFrameAncestors are Porthole's origins for this forward: the
	// only origins, besides the app itself, that may show the app in a frame
	// and send it requests (see requestAllowed). The desktop window passes
	// WailsFrameAncestors, `porthole serve` only its own origins (see
	// ServeFrameAncestors); the forward adds nothing. Every other site is
	// blocked, whatever the app's own headers say. Each entry is
	// scheme://host[:port], without path.
	AllowedFrameAncestors []string `json:"allowedFrameAncestors,omitempty"`
}

func (s WebSpec) local() LocalSpec {
	return LocalSpec{BindAddress: s.BindAddress, BindPort: s.BindPort, TargetHost: s.TargetHost, TargetPort: s.TargetPort}
}

// ListenAddress is the host:port to listen on.
func (s WebSpec) ListenAddress() string { return s.local().ListenAddress() }

// String formats the spec like an -L spec ("8888:localhost:8888").
func (s WebSpec) String() string { return s.local().String() }

// Validate checks ports, hosts and the frame ancestors.
func (s WebSpec) Validate() error {
	if err := s.local().Validate(); err != nil {
		return err
	}
	for _, o := range s.AllowedFrameAncestors {
		if _, err := normalizeFrameAncestor(o); err != nil {
			return fmt.Errorf("%w: %q: allowed frame ancestor %q: %s; want an origin like wails://wails or http://127.0.0.1:8080", ErrBadSpec, s.String(), o, err)
		}
	}
	return nil
}

// normalizeFrameAncestor checks that o is a plain origin usable as a CSP
// source expression and returns it lower-cased, without a trailing slash.
func normalizeFrameAncestor(o string) (string, error) {
	if o == "" {
		return "", errors.New("is empty")
	}
	if strings.ContainsAny(o, " \t\r\n;,'\"*\\") {
		return "", errors.New("contains a space, quote, comma, semicolon, '*' or backslash")
	}
	u, err := url.Parse(o)
	if err != nil {
		return "", errors.New("is not a URL")
	}
	switch {
	case u.Scheme == "" || u.Host == "":
		return "", errors.New("needs a scheme and a host")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || strings.Contains(o, "#"):
		return "", errors.New("must not have a user, query or fragment")
	case u.Path != "" && u.Path != "/":
		return "", errors.New("must not have a path")
	}
	for i, r := range u.Scheme {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.')) {
			return "", errors.New("has a bad scheme")
		}
	}
	if p := u.Port(); p != "" {
		if _, err := parsePort(p, 1); err != nil {
			return "", fmt.Errorf("port %s", err)
		}
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// WebOptions configures a WebForward. The zero value is usable.
type WebOptions struct {
	// Guard is asked about every accepted connection; nil allows all.
	Guard Guard
	// Logger receives the forward's logs; nil discards them.
	Logger *slog.Logger
	// Listener, if set, is used instead of listening on the spec's address
	// (e.g. a listener handed over by portmap). The forward closes it.
	Listener net.Listener
	// DialTimeout bounds getting a channel for a request (including waiting
	// for a reconnect); default 20 s.
	DialTimeout time.Duration
	// NavigationTimeout bounds getting a channel for a page navigation;
	// after it the browser gets the "Reconnecting…" page, which retries by
	// itself. Default 5 s.
	NavigationTimeout time.Duration
	// IdleConnTimeout closes backend connections (SSH channels) that were
	// idle this long; default 60 s. Apps often close idle connections
	// earlier themselves (Node and uvicorn after 5 s); the proxy notices.
	IdleConnTimeout time.Duration
	// MaxIdleConns caps the idle backend connections kept; default 16.
	MaxIdleConns int
	// ClientIdleTimeout closes browser connections idle this long; default 2 min.
	ClientIdleTimeout time.Duration

	clock func() time.Time // tests: when one-time links expire; default time.Now
}

func (o WebOptions) withDefaults() WebOptions {
	if o.Logger == nil {
		o.Logger = discardLogger()
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 20 * time.Second
	}
	if o.NavigationTimeout <= 0 {
		o.NavigationTimeout = 5 * time.Second
	}
	if o.NavigationTimeout > o.DialTimeout {
		o.NavigationTimeout = o.DialTimeout
	}
	if o.IdleConnTimeout <= 0 {
		o.IdleConnTimeout = 60 * time.Second
	}
	if o.MaxIdleConns <= 0 {
		o.MaxIdleConns = 16
	}
	if o.ClientIdleTimeout <= 0 {
		o.ClientIdleTimeout = 2 * time.Minute
	}
	if o.clock == nil {
		o.clock = time.Now
	}
	return o
}

// WebForward is a running HTTP-aware forward: a reverse proxy on a local
// listener whose backend connections are channels from a Dialer (the
// Session), kept alive between requests. The listener is up before any SSH
// connection exists.
//
// It passes websockets through; rewrites Host, Origin and Referer so that
// the app sees requests as if the browser ran on the server
// (localhost:<port>), and Location, Set-Cookie and frame-blocking headers on
// the way back; retries a request on a new channel only while none of its
// bytes were written; and answers failures with a small page of its own
// (a self-retrying "Reconnecting to <server>…" page for navigations while the
// server is unreachable) or JSON for scripts.
//
// Requests must name the local endpoint in their Host header (an IP address,
// localhost or *.localhost, with the forward's port): since the app's own
// DNS-rebinding checks see localhost, the forward does them. For the same
// reason it refuses (403, a page saying why) requests that another site
// started: only the app itself, Porthole's origins (the frame ancestors)
// and the user's own navigations pass (see requestAllowed).
//
// Paths under OpenPathPrefix (/.porthole/open/) are the forward's own: its
// one-time links (OpenLink), which take the system browser to an app URL
// with a token without that URL on any command line.
//
// Stats count requests as connections: TotalConns/ActiveConns are requests
// (websockets included), FailedConns requests that got an error page or
// broke, Retries requests re-sent on a new channel before any byte was
// written, Refused connections refused by the Guard; bytes and the dial
// histogram are measured on the channels.
type WebForward struct {
	spec WebSpec
	d    Dialer
	opts WebOptions
	log  *slog.Logger
	ln   net.Listener

	srv       *http.Server
	proxy     *httputil.ReverseProxy
	transport *http.Transport

	server         string // for messages
	upstream       string // Host the app expects, e.g. "localhost:8888"
	upstreamOrigin string // "http://" + upstream
	ancestors      string // CSP frame-ancestors sources
	origins        originPolicy

	ctx       context.Context
	cancel    context.CancelFunc
	serveDone chan struct{}

	mu       sync.Mutex
	closed   bool
	handlers sync.WaitGroup
	clients  map[*webClientConn]struct{}
	backends map[*webConn]struct{}
	links    map[string]openLink // one-time links by code (OpenLink)

	everUp atomic.Bool // a dial has succeeded once
	stats  Stats
}

// ListenWeb starts a web forward: it binds the listener now (loopback unless
// the spec asks for another address) and serves until Close.
func ListenWeb(spec WebSpec, d Dialer, opts WebOptions) (*WebForward, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if d == nil {
		return nil, errors.New("web forward: no Dialer given")
	}
	opts = opts.withDefaults()
	ln := opts.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", spec.ListenAddress())
		if err != nil {
			return nil, fmt.Errorf("web forward %s: listen on %s: %w (is the port already in use?)", spec, spec.ListenAddress(), err)
		}
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); ok {
		spec.BindPort = ta.Port
	}
	srcs := []string{"'self'"}
	for _, o := range spec.AllowedFrameAncestors {
		n, _ := normalizeFrameAncestor(o) // validated above
		srcs = append(srcs, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &WebForward{
		spec:      spec,
		d:         d,
		opts:      opts,
		log:       opts.Logger.With("component", "forwarder.web", "forward", spec.String()),
		ln:        ln,
		server:    spec.ServerName,
		upstream:  upstreamAuthority(spec.TargetHost, spec.TargetPort),
		ancestors: strings.Join(srcs, " "),
		origins:   newOriginPolicy(spec.AllowedFrameAncestors),
		ctx:       ctx,
		cancel:    cancel,
		serveDone: make(chan struct{}),
		clients:   make(map[*webClientConn]struct{}),
		backends:  make(map[*webConn]struct{}),
	}
	if f.server == "" {
		f.server = spec.TargetHost
	}
	f.upstreamOrigin = "http://" + f.upstream
	f.transport = &http.Transport{
		DialContext:            f.dialContext,
		MaxIdleConns:           opts.MaxIdleConns,
		MaxIdleConnsPerHost:    opts.MaxIdleConns,
		IdleConnTimeout:        opts.IdleConnTimeout,
		DisableCompression:     true, // pass the app's encoding through untouched
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
	}
	errLog := slog.NewLogLogger(f.log.Handler(), slog.LevelDebug)
	f.proxy = &httputil.ReverseProxy{
		Rewrite:        f.rewriteRequest,
		Transport:      &webRoundTripper{f: f, next: f.transport},
		ModifyResponse: f.rewriteResponse,
		ErrorHandler:   f.proxyError,
		ErrorLog:       errLog,
		BufferPool:     webBufferPool{},
	}
	f.srv = &http.Server{
		Handler:           http.HandlerFunc(f.serveHTTP),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       opts.ClientIdleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          errLog,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	wl := &webListener{Listener: ln, f: f}
	go func() {
		defer close(f.serveDone)
		err := f.srv.Serve(wl)
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			f.log.Warn("web forward stopped serving", "err", err)
		}
	}()
	f.log.Debug("web forward listening", "addr", ln.Addr().String(), "upstream", f.upstream)
	if ps, ok := d.(PoolSeeder); ok {
		// A web forward is an app open in a tab: its page's next load
		// (often right now) opens about as many connections as a browser
		// allows per host.
		ps.SeedPool(spec.TargetHost, spec.TargetPort, BrowserConnsPerHost)
	}
	return f, nil
}

// Addr is the address the forward listens on.
func (f *WebForward) Addr() net.Addr { return f.ln.Addr() }

// URL is the forward's local base URL, e.g. "http://127.0.0.2:8888".
func (f *WebForward) URL() string { return "http://" + f.ln.Addr().String() }

// Spec is the forward's spec, with the bound port filled in.
func (f *WebForward) Spec() WebSpec { return f.spec }

// Stats returns a snapshot of the forward's counters (see WebForward for
// what they count).
func (f *WebForward) Stats() StatsSnapshot { return f.stats.Snapshot() }

// Close stops listening, ends every request, websocket and backend
// connection, and waits for the forward's handlers.
func (f *WebForward) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		<-f.serveDone
		f.handlers.Wait()
		return nil
	}
	f.closed = true
	f.links = nil
	f.mu.Unlock()
	f.cancel()
	err := f.srv.Close() // the listener and the connections it still tracks
	f.closeAllConns()    // hijacked (websocket) and backend connections
	<-f.serveDone
	f.handlers.Wait()
	f.transport.CloseIdleConnections()
	f.closeAllConns() // any that raced with the first sweep
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close web forward %s: %w", f.spec, err)
	}
	return nil
}

func (f *WebForward) closeAllConns() {
	f.mu.Lock()
	clients := make([]*webClientConn, 0, len(f.clients))
	for c := range f.clients {
		clients = append(clients, c)
	}
	backends := make([]*webConn, 0, len(f.backends))
	for c := range f.backends {
		backends = append(backends, c)
	}
	f.mu.Unlock()
	for _, c := range clients {
		_ = c.Close()
	}
	for _, c := range backends {
		_ = c.Close()
	}
}

// reqInfo travels with a request (and its outbound copy) in the context.
type reqInfo struct {
	localAuthority string // the Host the browser used, e.g. "127.0.0.2:8888"
	navigation     bool   // a top-level page load
	wantsJSON      bool   // a script asked (fetch/XHR) or JSON is accepted
	method         string
	// crossSiteFrame: the page is loaded into a frame of another site (serve's
	// page, a window's iframe): the browser asks for no HTTP login there.
	crossSiteFrame bool
	url            *url.URL // the browser's request URL (its path and query)
}

type reqInfoKey struct{}

func infoOf(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

// probeHeader marks the reconnecting page's polls: the forward answers them
// itself (204 when a channel to the app opens, 503 while unreachable).
const probeHeader = "X-Porthole-Probe"

// errorHeader names the failure on every page the forward makes itself.
const errorHeader = "X-Porthole-Error"

func (f *WebForward) serveHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		f.writeFailure(w, r, failClosed, ErrSessionClosed)
		return
	}
	f.handlers.Add(1)
	f.mu.Unlock()
	defer f.handlers.Done()

	if !f.hostAllowed(r.Host) {
		f.stats.failed.Add(1)
		err := fmt.Errorf("refused a request for host %q: only the local endpoint's address is served (DNS-rebinding protection)", r.Host)
		f.stats.setErr(err)
		f.log.Warn("refused a request for a foreign host name", "host", r.Host, "peer", r.RemoteAddr)
		f.writeFailure(w, r, failBadHost, err)
		return
	}
	if v := f.origins.requestAllowed(r.Header, r.Host); v != verdictAllowed {
		f.stats.failed.Add(1)
		err := fmt.Errorf("refused a request started by another site (%s): Origin %q, Sec-Fetch-Site %q", v, r.Header.Get("Origin"), r.Header.Get("Sec-Fetch-Site"))
		f.stats.setErr(err)
		f.log.Warn("refused a cross-site request", "verdict", v, "origin", r.Header.Get("Origin"),
			"site", r.Header.Get("Sec-Fetch-Site"), "dest", r.Header.Get("Sec-Fetch-Dest"), "method", r.Method, "path", r.URL.Path)
		f.writeFailure(w, r, failCrossSite, err)
		return
	}
	info := &reqInfo{
		localAuthority: r.Host,
		navigation:     isNavigation(r),
		wantsJSON:      wantsJSON(r),
		method:         r.Method,
		crossSiteFrame: isCrossSiteFrame(r.Header),
		url:            r.URL,
	}
	r = r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, info))
	if strings.HasPrefix(r.URL.Path, OpenPathPrefix) {
		f.serveOpenLink(w, r)
		return
	}
	if r.Header.Get(probeHeader) != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		f.probe(w, r)
		return
	}

	f.stats.total.Add(1)
	f.stats.active.Add(1)
	defer f.stats.active.Add(-1)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler && r.Context().Err() == nil {
				f.stats.failed.Add(1)
				f.stats.setErr(errors.New("the response from the app broke off while streaming"))
			}
			panic(v)
		}
	}()
	f.proxy.ServeHTTP(w, r)
}

// probe answers the reconnecting page's poll: can a channel to the app be
// opened now?
func (f *WebForward) probe(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), f.opts.NavigationTimeout)
	defer cancel()
	c, err := f.dialContext(ctx, "tcp", f.upstream)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if err == nil {
		_ = c.Close()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	kind := f.classify(err)
	h.Set(errorHeader, kind.String())
	if kind == failUnreachable {
		h.Set("Retry-After", "2")
	}
	w.WriteHeader(kind.status())
}

// dialContext is the Transport's dialer: a channel from the Dialer, counted
// and tracked. The network address is ignored: every connection goes to the
// spec's target.
func (f *WebForward) dialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	timeout := f.opts.DialTimeout
	if infoOf(ctx).navigation {
		timeout = f.opts.NavigationTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := context.AfterFunc(f.ctx, cancel)
	defer stop()
	start := time.Now()
	c, err := f.d.Dial(ctx, f.spec.TargetHost, f.spec.TargetPort)
	if err != nil {
		if f.ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ErrSessionClosed, err)
		}
		return nil, &webDialError{err: err}
	}
	f.stats.observeDial(time.Since(start))
	if p, ok := c.(interface{ Pooled() bool }); ok && p.Pooled() {
		f.stats.pooled.Add(1)
	}
	f.everUp.Store(true)
	wc := &webConn{Conn: c, f: f}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		_ = c.Close()
		return nil, &webDialError{err: ErrSessionClosed}
	}
	f.backends[wc] = struct{}{}
	f.mu.Unlock()
	return wc, nil
}

// webDialError is a failure to get a channel: the request was not written.
type webDialError struct{ err error }

func (e *webDialError) Error() string { return "opening a channel to the app: " + e.err.Error() }
func (e *webDialError) Unwrap() error { return e.err }

// webConn is a backend connection (a channel): it counts bytes, so that a
// request is retried only while none of its bytes were written.
type webConn struct {
	net.Conn
	f         *WebForward
	written   atomic.Int64
	closeOnce sync.Once
}

func (c *webConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.f.stats.bytesIn.Add(uint64(max(n, 0)))
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		if s, ok := c.Conn.(interface{ Suspect(string) }); ok {
			s.Suspect(fmt.Sprintf("reading a response from the channel failed: %v", err))
		}
	}
	return n, err
}

func (c *webConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.written.Add(int64(n))
		c.f.stats.bytesOut.Add(uint64(n))
	}
	if err != nil {
		if s, ok := c.Conn.(interface{ Suspect(string) }); ok {
			s.Suspect(fmt.Sprintf("writing a request to the channel failed: %v", err))
		}
	}
	return n, err
}

func (c *webConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.f.mu.Lock()
		delete(c.f.backends, c)
		c.f.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}

// CloseWrite half-closes the channel when it can.
func (c *webConn) CloseWrite() error { return closeWrite(c.Conn) }

// webListener wraps accepted connections so that the Guard is asked (in the
// connection's own goroutine) and Close can end hijacked connections.
type webListener struct {
	net.Listener
	f *WebForward
}

func (l *webListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	wc := &webClientConn{Conn: c, f: l.f}
	l.f.mu.Lock()
	if l.f.closed {
		l.f.mu.Unlock()
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.f.clients[wc] = struct{}{}
	l.f.mu.Unlock()
	return wc, nil
}

// webClientConn is an accepted connection. Its first Read asks the Guard; a
// refused connection reads a "read" net.OpError, which the HTTP server
// closes without answering.
type webClientConn struct {
	net.Conn
	f         *WebForward
	guardOnce sync.Once
	refused   error
	closeOnce sync.Once
}

func (c *webClientConn) Read(b []byte) (int, error) {
	c.guardOnce.Do(c.check)
	if c.refused != nil {
		return 0, c.refused
	}
	return c.Conn.Read(b)
}

func (c *webClientConn) check() {
	g := c.f.opts.Guard
	if g == nil {
		return
	}
	if err := g.Allow(c.Conn); err != nil {
		c.f.stats.refused.Add(1)
		c.f.stats.setErr(err)
		c.f.log.Warn("connection refused by guard", "peer", c.Conn.RemoteAddr().String(), "err", err)
		c.refused = &net.OpError{Op: "read", Net: "tcp", Source: c.Conn.LocalAddr(), Addr: c.Conn.RemoteAddr(), Err: err}
		_ = c.Conn.Close()
	}
}

func (c *webClientConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.f.mu.Lock()
		delete(c.f.clients, c)
		c.f.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}

// upstreamAuthority is the Host the app expects: localhost:<port> for an app
// on the server's loopback (or all interfaces), else the target itself.
func upstreamAuthority(host string, port int) string {
	if isServerLocalName(host) {
		host = "localhost"
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// isServerLocalName reports whether host names the server's own loopback (or
// unspecified) address: localhost, *.localhost, 127.0.0.0/8, ::1, 0.0.0.0, ::.
func isServerLocalName(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || hasSuffixFold(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	return a.IsLoopback() || a.IsUnspecified()
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// hostAllowed reports whether a request's Host names this forward without a
// DNS name that an attacker could point here: an IP literal, localhost or
// *.localhost, with the forward's port.
func (f *WebForward) hostAllowed(hostport string) bool {
	host, port, ok := splitAuthority(hostport)
	if !ok || port != f.spec.BindPort {
		return false
	}
	if strings.EqualFold(host, "localhost") || hasSuffixFold(host, ".localhost") {
		return true
	}
	_, err := netip.ParseAddr(host)
	return err == nil && (!strings.Contains(host, ":") || strings.HasPrefix(hostport, "["))
}

// splitAuthority splits "host[:port]" (IPv6 in brackets); the port defaults
// to 80. It returns the host without brackets.
func splitAuthority(a string) (host string, port int, ok bool) {
	if a == "" {
		return "", 0, false
	}
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		// No port: a bare name or a bracketed IPv6 address.
		if strings.HasPrefix(a, "[") && strings.HasSuffix(a, "]") {
			h = a[1 : len(a)-1]
		} else if strings.ContainsAny(a, ":[]") {
			return "", 0, false
		} else {
			h = a
		}
		p = "80"
	}
	if h == "" || strings.ContainsAny(h, "/@ \t") {
		return "", 0, false
	}
	n, err := parsePort(p, 1)
	if err != nil {
		return "", 0, false
	}
	return h, n, true
}

// sameAuthority compares two host[:port] values (case-insensitively, with
// the default port filled in).
func sameAuthority(a, b string) bool {
	ha, pa, ok1 := splitAuthority(a)
	hb, pb, ok2 := splitAuthority(b)
	return ok1 && ok2 && pa == pb && strings.EqualFold(ha, hb)
}

// isNavigation: a top-level page load (Sec-Fetch-Mode: navigate, or an old
// client accepting HTML).
func isNavigation(r *http.Request) bool {
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m == "navigate"
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// isCrossSiteFrame: a page load into a frame that is not the app's own:
// another site framed it (cross-site), or the browser itself loaded the
// frame (none: a frame reload, or automation) — not the app's own pages
// (same-origin, same-site), where a browser does ask for a login.
func isCrossSiteFrame(h http.Header) bool {
	d, site := h.Get("Sec-Fetch-Dest"), h.Get("Sec-Fetch-Site")
	return h.Get("Sec-Fetch-Mode") == "navigate" && (d == "iframe" || d == "frame") && (site == "cross-site" || site == "none")
}

// wantsJSON: a script asked (fetch or XHR) or the client prefers JSON.
func wantsJSON(r *http.Request) bool {
	if strings.EqualFold(r.Header.Get("X-Requested-With"), "XMLHttpRequest") {
		return true
	}
	accept := r.Header.Get("Accept")
	if strings.Contains(accept, "text/html") {
		return false
	}
	if strings.Contains(accept, "json") {
		return true
	}
	if r.Header.Get("Sec-Fetch-Dest") == "empty" {
		return true // fetch() or XMLHttpRequest
	}
	return false
}
