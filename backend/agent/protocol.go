package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sourcegraph/jsonrpc2"

	"github.com/porthole-app/porthole/backend/sshconn"
)

// ProtocolVersion is the version of the app ↔ agent protocol. The app's
// first call is hello{protocol}; an agent of another version answers with
// an error and exits.
const ProtocolVersion = 5 // 2: web forwards (ForwardSpec.Web); 3: ping; 4: openLink; 5: prewarm

// MaxMessageSize bounds one message on the pipe.
const MaxMessageSize = 32 << 20

// Protocol errors.
var (
	// ErrProtocol: a malformed or unexpected message on the pipe.
	ErrProtocol = errors.New("agent protocol error")
	// ErrProtocolMismatch: the app and the agent speak different protocol
	// versions (e.g. the binary was replaced by an update); restart Porthole.
	ErrProtocolMismatch = errors.New("agent protocol version mismatch")
)

// The methods. App → agent calls first, then agent → app.
const (
	methodHello       = "hello"       // helloParams → helloResult; must be first
	methodInit        = "init"        // initParams → forwardsResult; once, after hello
	methodConnect     = "connect"     // noParams → null
	methodDisconnect  = "disconnect"  // noParams → null
	methodSetForwards = "setForwards" // setForwardsParams → forwardsResult
	methodSetSecrets  = "setSecrets"  // secretsParams → null
	methodExec        = "exec"        // execParams → execOutcome
	methodProbe       = "probe"       // probeParams → probeResult
	methodStats       = "stats"       // noParams → Stats
	methodPing        = "ping"        // noParams → null: the Supervisor's health check
	methodOpenLink    = "openLink"    // openLinkParams → openLinkResult
	methodPrewarm     = "prewarm"     // noParams → null: a speculative, prompt-free connect in the background
	methodCancel      = "$/cancelRequest"

	methodEvent          = "event"                      // notification: Event
	methodPromptPassword = "prompt/password"            // passwordPromptParams → passwordPromptResult
	methodPromptKI       = "prompt/keyboardInteractive" // kiPromptParams → kiPromptResult
	methodPromptHostKey  = "prompt/unknownHost"         // hostKeyPromptParams → hostKeyPromptResult
)

// JSON-RPC error codes of our own (the server-error range).
const (
	codeFailed           = -32000 // the operation failed; Data is a wireError
	codeProtocolMismatch = -32001 // hello with another version; Data is helloResult
	codeNotReady         = -32002 // a call before hello/init, or a second init
)

type validator interface{ validate() error }

type noParams struct{}

func (*noParams) validate() error { return nil }

type helloParams struct {
	Protocol int `json:"protocol"`
}

func (p *helloParams) validate() error {
	if p.Protocol <= 0 {
		return errors.New("protocol must be a positive version number")
	}
	return nil
}

type helloResult struct {
	Protocol int `json:"protocol"`
	PID      int `json:"pid"`
}

type initParams struct {
	Spec        LoginSpec `json:"spec"`
	Secrets     Secrets   `json:"secrets"`
	HasPrompter bool      `json:"hasPrompter"`
}

func (p *initParams) validate() error { return p.Spec.Validate() }

type forwardsResult struct {
	Forwards []ForwardInfo `json:"forwards"`
}

type setForwardsParams struct {
	Forwards []ForwardSpec `json:"forwards"`
}

func (p *setForwardsParams) validate() error { return validateForwards(p.Forwards) }

type secretsParams struct {
	Secrets Secrets `json:"secrets"`
}

func (*secretsParams) validate() error { return nil }

type execParams struct {
	Command string `json:"command"`
	Limit   int    `json:"limit,omitempty"`
}

func (p *execParams) validate() error {
	if p.Command == "" {
		return errors.New("empty command")
	}
	if p.Limit < 0 || p.Limit > MaxExecOutput {
		return fmt.Errorf("limit %d is out of range 0-%d", p.Limit, MaxExecOutput)
	}
	return nil
}

type probeParams struct {
	Host    string        `json:"host"`
	Port    int           `json:"port"`
	Request []byte        `json:"request,omitempty"`
	Limit   int           `json:"limit,omitempty"`
	Timeout time.Duration `json:"timeoutNs,omitempty"` // answer within this (with what was read)
}

func (p *probeParams) validate() error {
	if p.Host == "" || strings.ContainsAny(p.Host, "\x00\r\n") {
		return errors.New("bad host")
	}
	if p.Port < 1 || p.Port > 65535 {
		return fmt.Errorf("port %d is out of range 1-65535", p.Port)
	}
	if p.Limit < 0 || p.Limit > MaxProbeSize {
		return fmt.Errorf("limit %d is out of range 0-%d", p.Limit, MaxProbeSize)
	}
	if p.Timeout < 0 {
		return errors.New("negative timeout")
	}
	return nil
}

type probeResult struct {
	Response []byte     `json:"response,omitempty"`
	Err      *wireError `json:"err,omitempty"` // the probe's error, with the bytes read so far
}

// maxOpenLinkTarget bounds OpenLink's target on the pipe (the forward
// has its own, smaller bound).
const maxOpenLinkTarget = 64 << 10

// openLinkParams carry a one-time link's target, which may hold a secret
// (a Jupyter token): validate's errors never quote it, and nothing logs it.
type openLinkParams struct {
	Forward string `json:"forward"`
	Target  string `json:"target"`
}

func (p *openLinkParams) validate() error {
	switch {
	case p.Forward == "":
		return errors.New("no forward named")
	case p.Target == "":
		return errors.New("empty target")
	case len(p.Target) > maxOpenLinkTarget:
		return fmt.Errorf("the target is longer than %d bytes", maxOpenLinkTarget)
	}
	return nil
}

type openLinkResult struct {
	Code string `json:"code"`
}

type cancelParams struct {
	ID jsonrpc2.ID `json:"id"`
}

func (*cancelParams) validate() error { return nil }

// eventParams is one event; a state event's error crosses as a wireError
// too, so that errors.Is keeps working in the app (ErrDropsAfterLogin).
type eventParams struct {
	Event
	StateErr *wireError `json:"stateErr,omitempty"`
}

func newEventParams(e Event) eventParams {
	p := eventParams{Event: e}
	if e.State != nil {
		p.StateErr = toWire(e.State.Err)
	}
	return p
}

// event is the Event with its state's error rebuilt.
func (p *eventParams) event() Event {
	e := p.Event
	if e.State != nil && p.StateErr != nil {
		st := *e.State
		st.Err = p.StateErr.toError()
		e.State = &st
	}
	return e
}

func (p *eventParams) validate() error {
	e := p.Event
	set := 0
	for _, ok := range []bool{e.State != nil, e.Stats != nil, e.Log != nil, e.Step != nil, e.Agent != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("event %s carries %d payloads, want 1", e.Kind, set)
	}
	return nil
}

type passwordPromptParams struct {
	Prompt sshconn.PasswordPrompt `json:"prompt"`
	Info   PromptInfo             `json:"info"`
}

func (p *passwordPromptParams) validate() error {
	if p.Prompt.Kind != sshconn.PasswordLogin && p.Prompt.Kind != sshconn.PasswordKeyPassphrase {
		return fmt.Errorf("unknown password kind %d", int(p.Prompt.Kind))
	}
	return nil
}

type passwordPromptResult struct {
	Secret string `json:"secret"`
}

type kiPromptParams struct {
	Prompt sshconn.KIPrompt `json:"prompt"`
	Info   PromptInfo       `json:"info"`
}

func (p *kiPromptParams) validate() error {
	if len(p.Prompt.Questions) > 64 {
		return fmt.Errorf("%d questions, at most 64", len(p.Prompt.Questions))
	}
	return nil
}

type kiPromptResult struct {
	Answers []string `json:"answers"`
}

type hostKeyPromptParams struct {
	Prompt sshconn.HostKeyPrompt `json:"prompt"`
	Info   PromptInfo            `json:"info"`
}

func (*hostKeyPromptParams) validate() error { return nil }

type hostKeyPromptResult struct {
	Decision sshconn.HostKeyDecision `json:"decision"`
}

// paramTypes maps every method to its parameters (both directions).
var paramTypes = map[string]func() validator{
	methodHello:          func() validator { return new(helloParams) },
	methodInit:           func() validator { return new(initParams) },
	methodConnect:        func() validator { return new(noParams) },
	methodDisconnect:     func() validator { return new(noParams) },
	methodSetForwards:    func() validator { return new(setForwardsParams) },
	methodSetSecrets:     func() validator { return new(secretsParams) },
	methodExec:           func() validator { return new(execParams) },
	methodProbe:          func() validator { return new(probeParams) },
	methodStats:          func() validator { return new(noParams) },
	methodPing:           func() validator { return new(noParams) },
	methodOpenLink:       func() validator { return new(openLinkParams) },
	methodPrewarm:        func() validator { return new(noParams) },
	methodCancel:         func() validator { return new(cancelParams) },
	methodEvent:          func() validator { return new(eventParams) },
	methodPromptPassword: func() validator { return new(passwordPromptParams) },
	methodPromptKI:       func() validator { return new(kiPromptParams) },
	methodPromptHostKey:  func() validator { return new(hostKeyPromptParams) },
}

var (
	errUnknownMethod = errors.New("unknown method")
	errBadParams     = errors.New("invalid params")
)

// decodeParams decodes and checks the params of a request or notification
// into the method's type. Unknown fields are refused: both ends are the same
// binary, so a surprise means a bug or a corrupted stream.
func decodeParams(method string, raw *json.RawMessage) (validator, error) {
	newP, ok := paramTypes[method]
	if !ok {
		return nil, fmt.Errorf("%w %q", errUnknownMethod, truncate(method, 64))
	}
	p := newP()
	if raw != nil && !bytes.Equal(bytes.TrimSpace(*raw), []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(*raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(p); err != nil {
			return nil, fmt.Errorf("%w for %s: %v", errBadParams, method, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("%w for %s: trailing data", errBadParams, method)
		}
	}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("%w for %s: %w", errBadParams, method, err)
	}
	return p, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// codec frames messages like the Language Server Protocol
// ("Content-Length: N\r\n\r\n" + N bytes of JSON): it writes with
// jsonrpc2.VSCodeObjectCodec and reads the same format more strictly than
// it does, so that garbage is an error instead of a stream out of step: a
// size limit, a complete body per frame, and nothing after its JSON value.
type codec struct{}

func (codec) WriteObject(w io.Writer, obj any) error {
	return jsonrpc2.VSCodeObjectCodec{}.WriteObject(w, obj)
}

func (codec) ReadObject(r *bufio.Reader, v any) error {
	body, err := readFrame(r)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: malformed message: %v", ErrProtocol, err)
	}
	return nil
}

const (
	maxHeaderLine  = 1024
	maxHeaderLines = 8
)

// readFrame reads one frame's body. A clean end of stream before a frame is
// io.EOF; everything else that is not a well-formed frame wraps ErrProtocol.
func readFrame(r *bufio.Reader) ([]byte, error) {
	length := -1
	for n := 0; ; n++ {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if n == 0 && len(line) == 0 && errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				return nil, fmt.Errorf("%w: malformed message: a header line is too long", ErrProtocol)
			}
			return nil, fmt.Errorf("%w: malformed message: the stream ended inside a header (%v)", ErrProtocol, err)
		}
		if len(line) > maxHeaderLine {
			return nil, fmt.Errorf("%w: malformed message: a header line is too long", ErrProtocol)
		}
		if n >= maxHeaderLines {
			return nil, fmt.Errorf("%w: malformed message: too many header lines", ErrProtocol)
		}
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return nil, fmt.Errorf("%w: malformed message: a header line does not end in \\r\\n: %q", ErrProtocol, truncate(string(line), 40))
		}
		text := string(line[:len(line)-2])
		if text == "" {
			break
		}
		name, value, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fmt.Errorf("%w: malformed message: %q is not a header", ErrProtocol, truncate(text, 40))
		}
		if strings.EqualFold(strings.TrimSpace(name), "Content-Length") {
			if length >= 0 {
				return nil, fmt.Errorf("%w: malformed message: two Content-Length headers", ErrProtocol)
			}
			n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 32)
			if err != nil || n == 0 || n > MaxMessageSize {
				return nil, fmt.Errorf("%w: malformed message: bad Content-Length %q (1 to %d)", ErrProtocol, truncate(value, 20), MaxMessageSize)
			}
			length = int(n)
		}
	}
	if length < 0 {
		return nil, fmt.Errorf("%w: malformed message: no Content-Length header", ErrProtocol)
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("%w: malformed message: the stream ended inside a %d-byte message (%v)", ErrProtocol, length, err)
	}
	return body, nil
}

// pipe joins the two halves of a pipe into the ReadWriteCloser jsonrpc2
// wants; Close closes both.
type pipe struct {
	r io.Reader
	w io.Writer
}

func (p pipe) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p pipe) Write(b []byte) (int, error) { return p.w.Write(b) }

func (p pipe) Close() error {
	var errs []error
	if c, ok := p.w.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	if c, ok := p.r.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// stream is the jsonrpc2 object stream over a pipe; it remembers why reading
// stopped, to tell a peer that went away from one that sent garbage.
type stream struct {
	jsonrpc2.ObjectStream
	mu      sync.Mutex
	readErr error
	closed  bool
}

func newStream(rwc io.ReadWriteCloser) *stream {
	return &stream{ObjectStream: jsonrpc2.NewBufferedStream(rwc, codec{})}
}

func (s *stream) ReadObject(v any) error {
	err := s.ObjectStream.ReadObject(v)
	if err != nil {
		s.mu.Lock()
		if s.readErr == nil && !s.closed {
			s.readErr = err
		}
		s.mu.Unlock()
	}
	return err
}

func (s *stream) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return s.ObjectStream.Close()
}

// protocolError is the reason reading stopped when it was a malformed
// message (nil for a clean end or a local Close).
func (s *stream) protocolError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readErr != nil && errors.Is(s.readErr, ErrProtocol) {
		return s.readErr
	}
	return nil
}

// rpcLogger adapts jsonrpc2's Printf logging to slog.
type rpcLogger struct{ log *slog.Logger }

func (l rpcLogger) Printf(format string, v ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	l.log.Debug(msg)
}
