// Package webui serves Porthole's UI to the user's own browser (`porthole serve`).
//
// The same App whose methods the Wails window binds is handed to New as `any`;
// every exported method of it becomes callable as POST /api/<Method> through one
// generic reflection bridge, so both UIs share one method set. Events reach the
// browser as server-sent events on GET /api/events (a snapshot first, then live
// Publish calls). See docs/API.md for the wire protocol.
//
// Security model: the listener is loopback only; every /api/ request carries a
// random bearer token (from the URL fragment, which browsers never send); the Host
// header must name the bound address (DNS rebinding); state-changing requests
// with a foreign Origin are refused (CSRF); the UI may not be framed.
//
// The listener is guarded like every other Porthole listener: connections
// from sockets of another OS user are closed unanswered (backend/guard), so
// another local user can neither redeem a launch code nor use the token.
//
// This package imports neither Wails nor any package of Porthole's but
// backend/guard (which imports none).
package webui

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/porthole-app/porthole/backend/guard"
)

// Event is one message on the event stream: a topic ("settings", "app.status"…)
// and its JSON-encodable payload.
type Event struct {
	Topic string `json:"topic"`
	Data  any    `json:"data"`
}

// Options configure a Server. Bound is required; everything else has a default.
type Options struct {
	// Bound is the App: a non-nil pointer to a struct. Every exported method
	// with a supported shape is callable as POST /api/<Method>.
	Bound any
	// Assets is the built frontend (index.html at its root). Nil serves no UI
	// (404 for every non-/api path), which is handy for API-only tests.
	Assets fs.FS
	// Snapshot returns the current state; its events are sent first to every new
	// event subscriber. Nil means no snapshot.
	Snapshot func() []Event
	// Token is the bearer token /api/ requests must carry. Empty means a fresh
	// random one (32 bytes, base64url). A given token must be at least 16
	// characters of the base64url alphabet (it is put into a URL unescaped).
	Token string
	// Status maps a method's error to an HTTP status (400–599; anything
	// else, or nil Status, means: the error's own HTTPStatus() if it has
	// one, else 500). The App's facade is the one place that knows its
	// errors.
	Status func(error) int
	// Logger receives request and failure logs (never arguments, results or the
	// token). Nil discards.
	Logger *slog.Logger
	// Guard is asked about every accepted connection before anything is read
	// from it; a refused connection is closed without an answer. Nil means
	// guard.NewSameUser: only this OS user's (and root's) sockets.
	Guard Guard

	// KeepAlive is the interval of the comment lines that keep idle event
	// streams open. Zero means 15 s.
	KeepAlive time.Duration
	// EventBuffer is how many events may wait for one subscriber before it is
	// disconnected as too slow. Zero means 256.
	EventBuffer int
	// MaxBodyBytes limits request bodies. Zero means 1 MiB.
	MaxBodyBytes int64
}

// Guard decides whether an accepted connection may be served
// (*guard.SameUser is one).
type Guard interface {
	Allow(net.Conn) error
}

// Defaults of Options and of the http.Server that Serve runs.
const (
	DefaultKeepAlive    = 15 * time.Second
	DefaultEventBuffer  = 256
	DefaultMaxBodyBytes = 1 << 20

	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second
	idleTimeout       = 2 * time.Minute
	writeTimeout      = 30 * time.Second // per write of a response, set by the handlers
	shutdownGrace     = 5 * time.Second
	maxHeaderBytes    = 64 << 10
	tokenBytes        = 32
	minTokenLen       = 16
)

// Sentinel errors. Errors returned by the bridge wrap one of these (check with
// errors.Is); errors returned by a bound method are passed through unchanged.
var (
	// ErrInvalidOptions: New was given unusable Options.
	ErrInvalidOptions = errors.New("webui: invalid options")
	// ErrNotLoopback: Serve was given a listener that is not on a loopback address.
	ErrNotLoopback = errors.New("webui: refusing to serve on a non-loopback address")
	// ErrUnknownMethod: no callable method of that name (HTTP 404).
	ErrUnknownMethod = errors.New("unknown method")
	// ErrBadArguments: the arguments do not fit the method's parameters (HTTP 400).
	ErrBadArguments = errors.New("bad arguments")
	// ErrMethodPanicked: the method panicked; the panic was logged (HTTP 500).
	ErrMethodPanicked = errors.New("method panicked")
	// ErrUnauthorized: missing or wrong bearer token (HTTP 401).
	ErrUnauthorized = errors.New("missing or wrong token: open the URL printed by porthole serve")
	// ErrForbiddenHost: the Host header is not the bound loopback address (HTTP 403).
	ErrForbiddenHost = errors.New("forbidden Host header")
	// ErrForbiddenOrigin: a state-changing request came from a foreign Origin (HTTP 403).
	ErrForbiddenOrigin = errors.New("forbidden Origin")
)

// Server is the HTTP face of the bound App. Create it with New; it is safe for
// concurrent use. Serve runs it (once); Handler gives its http.Handler.
type Server struct {
	status    func(error) int // Options.Status
	bound     reflect.Value
	methods   map[string]*method
	infos     []MethodInfo
	assets    fs.FS
	snapshot  func() []Event
	token     string
	log       *slog.Logger
	keepAlive time.Duration
	maxBody   int64
	hub       *hub
	launch    launchCodes
	guard     Guard
}

// New builds the method table of opts.Bound (once, by reflection) and returns
// the Server. It fails with ErrInvalidOptions for a nil or non-pointer-to-struct
// Bound or an unusable Token.
func New(opts Options) (*Server, error) {
	if opts.Bound == nil {
		return nil, fmt.Errorf("%w: Bound is nil: pass the App (a pointer to a struct)", ErrInvalidOptions)
	}
	bv := reflect.ValueOf(opts.Bound)
	if bv.Kind() != reflect.Pointer || bv.IsNil() || bv.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("%w: Bound must be a non-nil pointer to a struct, got %T", ErrInvalidOptions, opts.Bound)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "webui")

	token := opts.Token
	if token == "" {
		b := make([]byte, tokenBytes)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("webui: generate token: %w", err)
		}
		token = base64.RawURLEncoding.EncodeToString(b)
	} else if err := checkToken(token); err != nil {
		return nil, err
	}

	s := &Server{
		bound:     bv,
		assets:    opts.Assets,
		snapshot:  opts.Snapshot,
		status:    opts.Status,
		token:     token,
		log:       log,
		keepAlive: opts.KeepAlive,
		maxBody:   opts.MaxBodyBytes,
		guard:     opts.Guard,
	}
	if s.guard == nil {
		s.guard = guard.NewSameUser(log)
	}
	if s.keepAlive <= 0 {
		s.keepAlive = DefaultKeepAlive
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	buf := opts.EventBuffer
	if buf <= 0 {
		buf = DefaultEventBuffer
	}
	s.hub = newHub(buf, log)
	s.methods, s.infos = buildMethods(bv, log)
	return s, nil
}

func checkToken(tok string) error {
	if len(tok) < minTokenLen {
		return fmt.Errorf("%w: Token is %d characters, need at least %d (or leave it empty for a random one)", ErrInvalidOptions, len(tok), minTokenLen)
	}
	for _, c := range tok {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: Token may contain only A-Z a-z 0-9 - _ (base64url)", ErrInvalidOptions)
		}
	}
	return nil
}

// Token returns the bearer token /api/ requests must carry.
func (s *Server) Token() string { return s.token }

// URL returns the address to open in a browser: "http://ADDR/#token=TOKEN",
// where addr is the address the listener bound ("127.80.72.1:PORT").
func (s *Server) URL(addr string) string {
	return "http://" + addr + "/#token=" + s.token
}

// Methods lists the callable methods, sorted by name (what GET /api/methods returns).
func (s *Server) Methods() []MethodInfo {
	out := make([]MethodInfo, len(s.infos))
	for i, mi := range s.infos {
		mi.Params = append([]string(nil), mi.Params...)
		out[i] = mi
	}
	return out
}

// Serve answers HTTP on ln until ctx is done, then shuts down gracefully: event
// streams are ended, in-flight calls get up to 5 s to finish, and Serve returns
// nil. ln must be on a loopback address (ErrNotLoopback otherwise) and is closed
// by Serve. A Server serves once: after Serve returns its event hub is closed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	addr := ln.Addr().String()
	if !isLoopbackAddr(addr) {
		_ = ln.Close()
		return fmt.Errorf("%w: %s: listen on a loopback address (127.x.x.x)", ErrNotLoopback, addr)
	}
	// Requests live in baseCtx, canceled at shutdown so event streams and
	// anything watching r.Context() end promptly.
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler:           s.Handler(addr),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		// No WriteTimeout: a method may legitimately block for long (waiting for
		// a password prompt) and event streams are endless. Handlers set a write
		// deadline before each write instead.
		MaxHeaderBytes: maxHeaderBytes,
		BaseContext:    func(net.Listener) context.Context { return baseCtx },
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(&guardedListener{Listener: ln, s: s}) }()
	s.log.Info("serving", "addr", addr)

	defer s.clearLaunchCodes()
	select {
	case err := <-errc:
		s.hub.close()
		return fmt.Errorf("webui: serve on %s: %w", addr, err)
	case <-ctx.Done():
	}
	s.hub.close()
	cancelBase()
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		s.log.Warn("requests still running at shutdown; closing their connections", "err", err)
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("webui: serve on %s: %w", addr, err)
	}
	s.log.Info("stopped", "addr", addr)
	return nil
}

func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// guardedListener hands out connections that ask the Server's Guard on their
// first Read (in the connection's own goroutine, so a slow lookup delays no
// other connection). A refused connection reads a "read" error, on which the
// HTTP server closes it without answering.
type guardedListener struct {
	net.Listener
	s *Server
}

func (l *guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardedConn{Conn: c, s: l.s}, nil
}

type guardedConn struct {
	net.Conn
	s       *Server
	once    sync.Once
	refused error
}

func (c *guardedConn) Read(b []byte) (int, error) {
	c.once.Do(func() {
		if err := c.s.guard.Allow(c.Conn); err != nil {
			c.s.log.Warn("refused a connection", "peer", c.Conn.RemoteAddr().String(), "err", err)
			c.refused = &net.OpError{Op: "read", Net: "tcp", Source: c.Conn.LocalAddr(), Addr: c.Conn.RemoteAddr(), Err: err}
			_ = c.Conn.Close()
		}
	})
	if c.refused != nil {
		return 0, c.refused
	}
	return c.Conn.Read(b)
}
