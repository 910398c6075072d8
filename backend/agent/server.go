package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/sourcegraph/jsonrpc2"

	"github.com/porthole-app/porthole/backend/sshconn"
)

// Exit codes of `porthole agent` (Main).
const (
	ExitOK       = 0 // stdin closed: the app is gone or asked it to stop
	ExitError    = 1 // start-up failed (e.g. the sandbox could not be set up)
	ExitProtocol = 3 // a malformed message, or another protocol version
)

// Environment of the agent process, set by the Supervisor (nothing secret).
const (
	// EnvMarker is set to "1" in every agent's environment.
	EnvMarker = "PORTHOLE_AGENT"
	// EnvParentPID holds the app's PID; an agent whose parent is already
	// another process exits at once (the app died while starting it).
	EnvParentPID = "PORTHOLE_AGENT_PARENT"
)

// Main is `porthole agent`: it locks the process down (Linux: SIGKILL when
// the parent dies, no new privileges and a seccomp filter on every thread,
// and, once init names the login, Landlock: see the package doc), then
// serves one login over JSON-RPC on stdin/stdout until stdin closes. Its own logs go to log (the
// Supervisor reads the agent's stderr); the login's logs travel to the app
// as events. It returns the process exit code (ExitOK, ExitError,
// ExitProtocol). Nothing but protocol messages may be written to stdout.
func Main(ctx context.Context, stdin io.Reader, stdout io.Writer, log *slog.Logger) int {
	return runMain(ctx, stdin, stdout, log, serveOptions{})
}

func runMain(ctx context.Context, stdin io.Reader, stdout io.Writer, log *slog.Logger, opts serveOptions) int {
	if log == nil {
		log = discardLogger()
	}
	if err := harden(); err != nil {
		log.Error("agent: cannot set up the sandbox; exiting", "err", err)
		return ExitError
	}
	if err := lockdown(log); err != nil {
		log.Error("agent: cannot set up the sandbox; exiting", "err", err)
		return ExitError
	}
	opts.sandbox = func(spec LoginSpec) error { return applySandbox(spec, log) }
	err := serve(ctx, stdin, stdout, log, opts)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrProtocol), errors.Is(err, ErrProtocolMismatch):
		log.Error("agent: exiting after a protocol error", "err", err)
		return ExitProtocol
	default:
		log.Error("agent: exiting", "err", err)
		return ExitError
	}
}

// Serve runs the agent's side of the protocol on in/out until in ends, the
// app's messages are malformed (an error wrapping ErrProtocol), the app
// speaks another protocol version (ErrProtocolMismatch) or ctx ends. It
// closes the login it served before returning. It does not harden the
// process (Main does).
func Serve(ctx context.Context, in io.Reader, out io.Writer, log *slog.Logger) error {
	if log == nil {
		log = discardLogger()
	}
	return serve(ctx, in, out, log, serveOptions{})
}

// serveOptions are hooks for tests.
type serveOptions struct {
	// newLogin makes the login on init (default: NewLocalLogin).
	newLogin func(spec LoginSpec, s Secrets, p sshconn.Prompter, log *slog.Logger) (Login, error)
	// protocol replaces ProtocolVersion.
	protocol int
	// afterHello runs after the hello answer was written.
	afterHello func(out io.Writer)
	// afterInit runs after the init answer was written.
	afterInit func()
	// sandbox confines the process to what spec's login needs; it runs on
	// init, before the login is made (runMain sets it; Serve does not).
	sandbox func(spec LoginSpec) error
}

type phase int

const (
	phaseHello phase = iota
	phaseInit
	phaseRunning
)

type server struct {
	log    *slog.Logger
	opts   serveOptions
	out    io.Writer
	conn   *jsonrpc2.Conn
	stream *stream
	ctx    context.Context // ends when the connection closes
	cancel context.CancelFunc
	wg     sync.WaitGroup // request goroutines and the event writer
	nextID atomic.Uint64  // IDs of our calls to the app

	mu       sync.Mutex
	phase    phase
	login    Login
	unsub    func()
	pending  map[jsonrpc2.ID]context.CancelFunc
	fatalErr error // why we closed the connection ourselves
	events   []Event
	dropped  int
	closed   bool
	wake     chan struct{}
}

func serve(ctx context.Context, in io.Reader, out io.Writer, log *slog.Logger, opts serveOptions) error {
	if opts.newLogin == nil {
		opts.newLogin = func(spec LoginSpec, s Secrets, p sshconn.Prompter, log *slog.Logger) (Login, error) {
			return NewLocalLogin(spec, s, p, log)
		}
	}
	if opts.protocol == 0 {
		opts.protocol = ProtocolVersion
	}
	s := &server{log: log, opts: opts, out: out, pending: map[jsonrpc2.ID]context.CancelFunc{}, wake: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer s.cancel()
	s.stream = newStream(pipe{r: in, w: out})
	s.conn = jsonrpc2.NewConn(s.ctx, s.stream, s, jsonrpc2.SetLogger(rpcLogger{log}))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.writeEvents()
	}()

	select {
	case <-s.conn.DisconnectNotify():
	case <-ctx.Done():
		_ = s.conn.Close()
	}
	s.mu.Lock()
	s.closed = true
	login, unsub := s.login, s.unsub
	for _, c := range s.pending {
		c()
	}
	fatal := s.fatalErr
	s.mu.Unlock()
	s.cancel()
	s.signal()
	if unsub != nil {
		unsub()
	}
	if login != nil {
		_ = login.Close()
	}
	s.wg.Wait()

	if fatal != nil {
		return fatal
	}
	if err := s.stream.protocolError(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// fail closes the connection because of a protocol violation. It takes the
// connection from Handle: s.conn may not be set yet when the first message
// arrives.
func (s *server) fail(conn *jsonrpc2.Conn, err error) {
	s.mu.Lock()
	if s.fatalErr == nil {
		s.fatalErr = err
	}
	s.mu.Unlock()
	s.log.Error("agent: closing the connection", "err", err)
	_ = conn.Close()
}

// Handle implements jsonrpc2.Handler. It runs on the connection's reading
// goroutine: everything slow goes to a goroutine of its own.
func (s *server) Handle(ctx context.Context, conn *jsonrpc2.Conn, req *jsonrpc2.Request) {
	p, err := decodeParams(req.Method, req.Params)
	if req.Notif {
		switch {
		case err != nil:
			s.log.Warn("agent: ignoring a bad notification", "method", truncate(req.Method, 64), "err", err)
		case req.Method == methodCancel:
			s.mu.Lock()
			if c := s.pending[p.(*cancelParams).ID]; c != nil {
				c()
			}
			s.mu.Unlock()
		default:
			s.log.Warn("agent: ignoring an unexpected notification", "method", req.Method)
		}
		return
	}
	if err != nil {
		code := int64(jsonrpc2.CodeInvalidParams)
		if errors.Is(err, errUnknownMethod) {
			code = jsonrpc2.CodeMethodNotFound
		}
		s.log.Warn("agent: refusing a call", "method", truncate(req.Method, 64), "err", err)
		_ = conn.ReplyWithError(ctx, req.ID, &jsonrpc2.Error{Code: code, Message: err.Error()})
		return
	}

	s.mu.Lock()
	ph := s.phase
	s.mu.Unlock()
	switch {
	case req.Method == methodHello && ph == phaseHello:
		s.hello(conn, req, p.(*helloParams))
		return
	case req.Method == methodInit && ph == phaseInit:
		s.init(conn, req, p.(*initParams))
		return
	case ph != phaseRunning || req.Method == methodHello || req.Method == methodInit ||
		req.Method == methodEvent || req.Method == methodCancel:
		msg := fmt.Sprintf("%s is not expected now: the protocol is hello, then init, then calls", req.Method)
		_ = conn.ReplyWithError(ctx, req.ID, &jsonrpc2.Error{Code: codeNotReady, Message: msg})
		s.fail(conn, fmt.Errorf("%w: %s", ErrProtocol, msg))
		return
	}

	rctx, cancel := context.WithCancel(s.ctx)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		return
	}
	s.pending[req.ID] = cancel
	s.wg.Add(1)
	login := s.login
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.pending, req.ID)
			s.mu.Unlock()
			cancel()
		}()
		res, err := s.call(rctx, login, req.Method, p)
		if err != nil {
			_ = conn.ReplyWithError(rctx, req.ID, toRPCError(err))
			return
		}
		if err := conn.Reply(rctx, req.ID, res); err != nil && !errors.Is(err, jsonrpc2.ErrClosed) {
			s.log.Warn("agent: cannot send a reply", "method", req.Method, "err", err)
		}
	}()
}

func (s *server) hello(conn *jsonrpc2.Conn, req *jsonrpc2.Request, p *helloParams) {
	res := helloResult{Protocol: s.opts.protocol, PID: os.Getpid()}
	if p.Protocol != s.opts.protocol {
		e := &jsonrpc2.Error{Code: codeProtocolMismatch,
			Message: fmt.Sprintf("the app speaks protocol %d and this agent %d; the agent binary was probably replaced by an update: restart Porthole", p.Protocol, s.opts.protocol)}
		e.SetError(res)
		_ = conn.ReplyWithError(s.ctx, req.ID, e)
		s.fail(conn, fmt.Errorf("%w: %s", ErrProtocolMismatch, e.Message))
		return
	}
	s.mu.Lock()
	s.phase = phaseInit
	s.mu.Unlock()
	_ = conn.Reply(s.ctx, req.ID, res)
	if s.opts.afterHello != nil {
		s.opts.afterHello(s.out)
	}
}

func (s *server) init(conn *jsonrpc2.Conn, req *jsonrpc2.Request, p *initParams) {
	var prompter sshconn.Prompter
	if p.HasPrompter {
		prompter = &remotePrompter{s: s, conn: conn}
	}
	if s.opts.sandbox != nil {
		if err := s.opts.sandbox(p.Spec); err != nil {
			err = fmt.Errorf("the agent for %s cannot set up its sandbox: %w", p.Spec.DisplayName(), err)
			_ = conn.ReplyWithError(s.ctx, req.ID, toRPCError(err))
			s.fail(conn, err)
			return
		}
	}
	// The login's logs travel to the app as events (which logs them); the
	// agent's own log is for the agent.
	login, err := s.opts.newLogin(p.Spec, p.Secrets, prompter, discardLogger())
	if err != nil {
		_ = conn.ReplyWithError(s.ctx, req.ID, toRPCError(err))
		return
	}
	st, err := login.Stats(s.ctx)
	if err != nil {
		_ = login.Close()
		_ = conn.ReplyWithError(s.ctx, req.ID, toRPCError(err))
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = login.Close()
		return
	}
	s.login = login
	s.phase = phaseRunning
	s.unsub = login.Subscribe(s.queueEvent)
	s.mu.Unlock()
	s.log.Debug("agent: serving", "login", p.Spec.DisplayName(), "forwards", len(st.Forwards))
	_ = conn.Reply(s.ctx, req.ID, forwardsResult{Forwards: st.Forwards})
	if s.opts.afterInit != nil {
		s.opts.afterInit()
	}
}

// call runs one method on the login.
func (s *server) call(ctx context.Context, l Login, method string, p validator) (any, error) {
	switch method {
	case methodConnect:
		return nil, l.Connect(ctx)
	case methodDisconnect:
		return nil, l.Disconnect(ctx)
	case methodSetForwards:
		infos, err := l.SetForwards(ctx, p.(*setForwardsParams).Forwards)
		if err != nil && infos == nil {
			return nil, err
		}
		return forwardsResult{Forwards: infos}, nil // bind errors are in the infos
	case methodSetSecrets:
		return nil, l.SetSecrets(ctx, p.(*secretsParams).Secrets)
	case methodExec:
		ep := p.(*execParams)
		if ll, ok := l.(*LocalLogin); ok {
			return ll.exec(ctx, ep.Command, ep.Limit)
		}
		out, err := l.Exec(ctx, ep.Command)
		var ee *ExecError
		if errors.As(err, &ee) {
			return execOutcome{Stdout: out, Status: ee.Status, Signal: ee.Signal, Stderr: ee.Stderr}, nil
		}
		return execOutcome{Stdout: out}, err
	case methodProbe:
		pp := p.(*probeParams)
		if pp.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, pp.Timeout)
			defer cancel()
		}
		b, err := l.Probe(ctx, pp.Host, pp.Port, pp.Request, pp.Limit)
		return probeResult{Response: b, Err: toWire(err)}, nil
	case methodStats:
		return l.Stats(ctx)
	case methodPing:
		return nil, nil // the answer is the point: this agent reads, runs and writes
	case methodPrewarm:
		if w, ok := l.(Prewarmer); ok {
			return nil, w.Prewarm(ctx)
		}
		return nil, nil
	case methodOpenLink:
		op := p.(*openLinkParams)
		code, err := l.OpenLink(ctx, op.Forward, op.Target)
		if err != nil {
			return nil, err
		}
		return openLinkResult{Code: code}, nil
	}
	return nil, fmt.Errorf("%w: %s is not an agent method", ErrProtocol, method)
}

// queueEvent queues a login event for the app. It never blocks: when the
// app does not read, events beyond maxQueuedEvents are dropped.
func (s *server) queueEvent(e Event) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if len(s.events) >= maxQueuedEvents {
		s.dropped++
		s.mu.Unlock()
		return
	}
	s.events = append(s.events, e)
	s.mu.Unlock()
	s.signal()
}

func (s *server) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// writeEvents sends queued events as notifications, in order.
func (s *server) writeEvents() {
	for {
		s.mu.Lock()
		batch, dropped, closed := s.events, s.dropped, s.closed
		s.events, s.dropped = nil, 0
		s.mu.Unlock()
		if closed {
			return
		}
		if dropped > 0 {
			s.log.Warn("agent: the app does not read; events dropped", "dropped", dropped)
		}
		for _, e := range batch {
			if err := s.conn.Notify(s.ctx, methodEvent, newEventParams(e)); err != nil {
				if !errors.Is(err, jsonrpc2.ErrClosed) {
					s.log.Warn("agent: cannot send an event", "err", err)
				}
				break
			}
		}
		if len(batch) == 0 {
			select {
			case <-s.wake:
			case <-s.ctx.Done():
			}
		}
	}
}

// callApp calls the app, canceling the call there when ctx ends first.
func (s *server) callApp(ctx context.Context, conn *jsonrpc2.Conn, method string, params, result any) error {
	id := jsonrpc2.ID{Num: s.nextID.Add(1)}
	err := conn.Call(ctx, method, params, result, jsonrpc2.PickID(id))
	if err != nil && ctx.Err() != nil {
		_ = conn.Notify(s.ctx, methodCancel, cancelParams{ID: id})
		return ctx.Err()
	}
	if errors.Is(err, jsonrpc2.ErrClosed) {
		return fmt.Errorf("asking the app: %w: the connection to the app is closed", context.Canceled)
	}
	if err != nil {
		return fromRPCError(method, err)
	}
	return nil
}

// remotePrompter asks the app's Prompter through the pipe.
type remotePrompter struct {
	s    *server
	conn *jsonrpc2.Conn
}

func promptInfo(ctx context.Context) PromptInfo {
	pi, _ := PromptInfoFrom(ctx)
	return pi
}

func (p *remotePrompter) Password(ctx context.Context, req sshconn.PasswordPrompt) (string, error) {
	var r passwordPromptResult
	if err := p.s.callApp(ctx, p.conn, methodPromptPassword, passwordPromptParams{Prompt: req, Info: promptInfo(ctx)}, &r); err != nil {
		return "", err
	}
	return r.Secret, nil
}

func (p *remotePrompter) KeyboardInteractive(ctx context.Context, req sshconn.KIPrompt) ([]string, error) {
	var r kiPromptResult
	if err := p.s.callApp(ctx, p.conn, methodPromptKI, kiPromptParams{Prompt: req, Info: promptInfo(ctx)}, &r); err != nil {
		return nil, err
	}
	if len(r.Answers) != len(req.Questions) {
		return nil, fmt.Errorf("%w: %d answers to %d questions", ErrProtocol, len(r.Answers), len(req.Questions))
	}
	return r.Answers, nil
}

func (p *remotePrompter) UnknownHost(ctx context.Context, req sshconn.HostKeyPrompt) (sshconn.HostKeyDecision, error) {
	var r hostKeyPromptResult
	if err := p.s.callApp(ctx, p.conn, methodPromptHostKey, hostKeyPromptParams{Prompt: req, Info: promptInfo(ctx)}, &r); err != nil {
		return sshconn.Reject, err
	}
	switch r.Decision {
	case sshconn.AcceptOnce, sshconn.AcceptAndSave:
		return r.Decision, nil
	}
	return sshconn.Reject, nil
}
