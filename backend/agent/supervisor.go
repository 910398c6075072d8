package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sourcegraph/jsonrpc2"

	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/sshconn"
)

// SupervisorOptions configure a Supervisor. The zero value is usable.
type SupervisorOptions struct {
	// Exe is the agent binary; "" runs this program again (on Linux
	// /proc/self/exe, which survives an update of the file on disk).
	Exe string
	// Args are the agent's arguments; nil means ["agent"].
	Args []string
	// Env is added to the agent's minimal environment (e.g. a test
	// switch). Never put secrets here: they go over the pipe.
	Env []string
	// Logger receives the Supervisor's logs, the agents' stderr and the
	// logins' log lines (which are also published as EventLog); nil
	// discards them.
	Logger *slog.Logger

	// CallTimeout bounds every call to an agent (Connect gets the login's
	// connect timeout on top); default 10 s.
	CallTimeout time.Duration
	// StartTimeout bounds the start of an agent, from exec to the answer
	// to init; default 10 s.
	StartTimeout time.Duration
	// StopTimeout is how long an agent may take to exit after its stdin
	// closed before it is killed; default 2 s.
	StopTimeout time.Duration
	// RestartBackoff spaces restarts after crashes; the first restart is
	// immediate. Default: 250 ms doubling up to 5 s.
	RestartBackoff forwarder.Backoff
	// MaxCrashes within CrashWindow stop the agent for good (the login is
	// Failed); defaults 5 and 1 min.
	MaxCrashes  int
	CrashWindow time.Duration

	// HealthInterval is how often the Supervisor pings each agent over
	// its pipe; default 2 s, negative turns the health check off.
	HealthInterval time.Duration
	// HealthTimeout is how long one ping may wait for its answer;
	// default HealthInterval.
	HealthTimeout time.Duration
	// HealthMisses pings in a row without an answer make an agent hung
	// (e.g. stopped with SIGSTOP, or deadlocked): it is killed and
	// restarted like a crashed one. Default 5 (with the other defaults:
	// an agent silent for 10 s).
	HealthMisses int

	protocol int // tests: the version to speak (0 = ProtocolVersion)
}

func (o SupervisorOptions) withDefaults() SupervisorOptions {
	if o.Args == nil {
		o.Args = []string{"agent"}
	}
	if o.Logger == nil {
		o.Logger = discardLogger()
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 10 * time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 2 * time.Second
	}
	if o.RestartBackoff.Initial <= 0 {
		o.RestartBackoff.Initial = 250 * time.Millisecond
	}
	if o.RestartBackoff.Max <= 0 {
		o.RestartBackoff.Max = 5 * time.Second
	}
	if o.MaxCrashes <= 0 {
		o.MaxCrashes = 5
	}
	if o.CrashWindow <= 0 {
		o.CrashWindow = time.Minute
	}
	if o.HealthInterval == 0 {
		o.HealthInterval = 2 * time.Second
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = max(o.HealthInterval, time.Millisecond)
	}
	if o.HealthMisses <= 0 {
		o.HealthMisses = 5
	}
	if o.protocol == 0 {
		o.protocol = ProtocolVersion
	}
	return o
}

// Supervisor runs one `porthole agent` process per login (Start) and
// restarts the ones that crash. Its methods are safe for concurrent use;
// one login's crash or hang never blocks another's calls.
type Supervisor struct {
	opts  SupervisorOptions
	log   *slog.Logger
	group *procGroup

	mu     sync.Mutex
	logins map[*RemoteLogin]struct{}
	closed bool
}

// NewSupervisor returns a Supervisor; it starts nothing until Start.
func NewSupervisor(opts SupervisorOptions) *Supervisor {
	opts = opts.withDefaults()
	s := &Supervisor{opts: opts, log: opts.Logger.With("component", "agent.supervisor"), logins: map[*RemoteLogin]struct{}{}}
	g, err := newProcGroup()
	if err != nil {
		s.log.Warn("cannot group the agent processes; an agent may outlive the app if it is killed", "err", err)
	}
	s.group = g
	return s
}

// Close stops every agent and waits for them.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	s.closed = true
	logins := make([]*RemoteLogin, 0, len(s.logins))
	for l := range s.logins {
		logins = append(logins, l)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range logins {
		wg.Go(func() { _ = l.Close() })
	}
	wg.Wait()
	return s.group.close()
}

// AgentStatus is where a RemoteLogin's agent process stands.
type AgentStatus int

const (
	StatusRunning    AgentStatus = iota + 1 // an agent serves the login
	StatusRestarting                        // the agent crashed; a new one is starting
	StatusFailed                            // it crashed too often and was stopped
	StatusClosed                            // Close stopped it
)

var agentStatusNames = [...]string{
	StatusRunning:    "running",
	StatusRestarting: "restarting",
	StatusFailed:     "failed",
	StatusClosed:     "closed",
}

func (s AgentStatus) String() string {
	if s > 0 && int(s) < len(agentStatusNames) {
		return agentStatusNames[s]
	}
	return fmt.Sprintf("AgentStatus(%d)", int(s))
}

// MarshalText writes the status's name.
func (s AgentStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ProcessInfo describes a RemoteLogin's agent process.
type ProcessInfo struct {
	Status AgentStatus `json:"status"`
	PID    int         `json:"pid,omitempty"` // 0 while restarting
	// Started is when the current process was exec'd.
	Started time.Time `json:"started"`
	// ReadyIn is how long it took from exec to its answer to init.
	ReadyIn  time.Duration `json:"readyInNs"`
	Restarts int           `json:"restarts"`
	Error    string        `json:"error,omitempty"` // why it was stopped (StatusFailed)
}

// RemoteLogin is a Login served by a `porthole agent` process. It survives
// agent crashes: the Supervisor restarts the agent with the same spec,
// secrets and forwards (on the same local ports), calls made meanwhile wait
// for it (within their deadline), and subscriptions carry over.
type RemoteLogin struct {
	sup      *Supervisor
	log      *slog.Logger
	prompter sshconn.Prompter
	hub      *hub

	ctx           context.Context // canceled by Close
	cancel        context.CancelFunc
	wg            sync.WaitGroup // calls, prompt handlers, process watchers
	superviseDone chan struct{}
	closeDone     chan struct{}

	mu            sync.Mutex
	spec          LoginSpec
	secrets       Secrets
	status        AgentStatus
	failErr       error
	proc          *agentProc
	changed       chan struct{} // closed (and replaced) when status or proc changes
	crashes       []time.Time
	restarts      int
	wantConnected bool
	lastState     forwarder.StateInfo
	closing       bool
}

var _ Login = (*RemoteLogin)(nil)

// Start runs a new agent for spec, hands it spec and secrets over its pipe
// and waits until it is ready (its forwards listen). ctx bounds the start
// only. prompter answers what secrets cannot (nil: nobody).
func (s *Supervisor) Start(ctx context.Context, spec LoginSpec, secrets Secrets, prompter sshconn.Prompter) (*RemoteLogin, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%w: the supervisor is closed", ErrClosed)
	}
	spec = spec.clone()
	l := &RemoteLogin{
		sup: s, prompter: prompter, hub: newHub(), spec: spec, secrets: secrets,
		log:           s.opts.Logger.With("login", spec.DisplayName()),
		superviseDone: make(chan struct{}),
		closeDone:     make(chan struct{}),
		changed:       make(chan struct{}),
		lastState:     forwarder.StateInfo{State: forwarder.StateIdle, Since: time.Now()},
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	sctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	p, err := l.startProc(sctx)
	cancel()
	if err != nil {
		l.cancel()
		l.wg.Wait()
		l.hub.close()
		return nil, err
	}
	l.mu.Lock()
	l.proc, l.status = p, StatusRunning
	l.mu.Unlock()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		close(l.superviseDone)
		l.stopProc(p)
		l.cancel()
		l.wg.Wait()
		l.hub.close()
		return nil, fmt.Errorf("%w: the supervisor is closed", ErrClosed)
	}
	s.logins[l] = struct{}{}
	s.mu.Unlock()
	go l.supervise(p)
	l.log.Info("agent started", "pid", p.pid, "ready_in", p.readyIn.Round(time.Millisecond).String())
	l.publish(Event{Kind: EventAgent, Agent: &AgentEvent{Kind: AgentStarted, PID: p.pid, Message: "agent started"}})
	return l, nil
}

func (l *RemoteLogin) publish(e Event) {
	e.Login = l.spec.ID
	l.hub.publish(e)
}

// notifyLocked wakes everyone waiting for a status or process change.
func (l *RemoteLogin) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// spawn runs f in a goroutine owned by the login, unless it is closing.
func (l *RemoteLogin) spawn(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return false
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
	return true
}

// agentProc is one agent process and the connection to it.
type agentProc struct {
	l          *RemoteLogin
	cmd        *exec.Cmd
	pid        int
	started    time.Time
	readyIn    time.Duration
	conn       *jsonrpc2.Conn
	stream     *stream
	exited     chan struct{} // closed when the process has been waited for
	waitErr    error
	stderrDone chan struct{}
	ctx        context.Context // ends when the connection closes (prompt handlers)
	cancel     context.CancelFunc
	nextID     atomic.Uint64

	mu      sync.Mutex
	tail    []string // last stderr lines
	prompts map[jsonrpc2.ID]context.CancelFunc
	silent  time.Duration // > 0: the health check killed it after this long without an answer
}

const stderrTailLines = 8

// startProc execs an agent, says hello and sends init.
func (l *RemoteLogin) startProc(ctx context.Context) (*agentProc, error) {
	o := l.sup.opts
	exe := o.Exe
	if exe == "" {
		var err error
		if exe, err = selfExe(); err != nil {
			return nil, fmt.Errorf("start the agent: find this program: %w", err)
		}
	}
	argv0 := exe
	if exe == "/proc/self/exe" {
		if e, err := os.Executable(); err == nil {
			argv0 = e
		}
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start the agent: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("start the agent: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		for _, f := range []*os.File{inR, inW, outR, outW} {
			f.Close()
		}
		return nil, fmt.Errorf("start the agent: %w", err)
	}
	cmd := exec.Command(exe, o.Args...)
	cmd.Args[0] = argv0
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	l.mu.Lock()
	cmd.Env = defaultAgentEnv(l.spec, o.Env)
	l.mu.Unlock()
	cmd.SysProcAttr = sysProcAttr()
	started := time.Now()
	err = cmd.Start()
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("start the agent %s: %w", exe, err)
	}
	if err := l.sup.group.afterStart(cmd); err != nil {
		l.log.Warn("cannot tie the agent to the app; it may outlive the app if the app is killed", "err", err)
	}
	p := &agentProc{
		l: l, cmd: cmd, pid: cmd.Process.Pid, started: started,
		exited: make(chan struct{}), stderrDone: make(chan struct{}),
		prompts: map[jsonrpc2.ID]context.CancelFunc{},
	}
	p.ctx, p.cancel = context.WithCancel(l.ctx)
	p.stream = newStream(pipe{r: outR, w: inW})
	p.conn = jsonrpc2.NewConn(context.Background(), p.stream, &appHandler{p: p}, jsonrpc2.SetLogger(rpcLogger{l.log}))
	watch := func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}
	readStderr := func() {
		defer close(p.stderrDone)
		defer errR.Close()
		p.readStderr(errR)
	}
	onClose := func() {
		select {
		case <-p.conn.DisconnectNotify():
		case <-p.exited:
			// The pipe ends with the process once its last words are
			// read; a grandchild holding it must not keep it open longer.
			t := time.NewTimer(time.Second)
			select {
			case <-p.conn.DisconnectNotify():
			case <-t.C:
				_ = p.conn.Close()
			}
			t.Stop()
		}
		p.cancel()
	}
	for _, f := range []func(){watch, readStderr, onClose} {
		if !l.spawn(f) {
			go f() // Close is waiting for the start to fail; these end with the process
		}
	}

	fail := func(err error) (*agentProc, error) {
		l.stopProc(p)
		return nil, l.startError(p, err)
	}
	var hr helloResult
	if err := p.call(ctx, methodHello, helloParams{Protocol: o.protocol}, &hr); err != nil {
		return fail(err)
	}
	if hr.Protocol != o.protocol {
		return fail(fmt.Errorf("%w: the agent speaks protocol %d, the app %d", ErrProtocolMismatch, hr.Protocol, o.protocol))
	}
	l.mu.Lock()
	spec, secrets := l.spec.clone(), l.secrets
	l.mu.Unlock()
	if spec.HomeDir == "" {
		// The agent has no $HOME: "~" is the app's home directory.
		spec.HomeDir, _ = os.UserHomeDir()
	}
	var ir forwardsResult
	if err := p.call(ctx, methodInit, initParams{Spec: spec, Secrets: secrets, HasPrompter: l.prompter != nil}, &ir); err != nil {
		return fail(err)
	}
	p.readyIn = time.Since(started)
	l.pinPorts(ir.Forwards)
	for _, f := range ir.Forwards {
		if f.Error != "" {
			l.log.Warn("forward not listening", "forward", f.ID, "err", f.Error)
		}
	}
	return p, nil
}

// startError explains why an agent did not start.
func (l *RemoteLogin) startError(p *agentProc, err error) error {
	if perr := p.stream.protocolError(); perr != nil {
		l.log.Error("the agent sent a malformed message; it was stopped", "pid", p.pid, "err", perr)
		return fmt.Errorf("start the agent for %s: %w", l.spec.DisplayName(), perr)
	}
	err = l.mapCallError(err)
	exit := describeExit(p)
	switch {
	case errors.Is(err, ErrProtocolMismatch):
		l.log.Error("the agent speaks another protocol version; it exited", "pid", p.pid, "exit", exit, "err", err)
	case errors.Is(err, ErrAgentGone):
		err = fmt.Errorf("%w during start-up (%s)%s", ErrAgentGone, exit, p.stderrSuffix())
		l.log.Error("the agent did not start", "pid", p.pid, "err", err)
	default:
		l.log.Error("the agent did not start", "pid", p.pid, "exit", exit, "err", err)
	}
	return fmt.Errorf("start the agent for %s: %w", l.spec.DisplayName(), err)
}

func describeExit(p *agentProc) string {
	select {
	case <-p.exited:
	default:
		return "still running"
	}
	if p.waitErr == nil {
		return "exit status 0"
	}
	return p.waitErr.Error()
}

func (p *agentProc) stderrSuffix() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.tail) == 0 {
		return ""
	}
	return ": " + strings.Join(p.tail, " | ")
}

// maxStderrLine caps one line of the agent's stderr as logged and kept;
// the rest of a longer line is read and dropped (a reader that stopped
// would leave the agent to die of SIGPIPE, or block, on its next write).
const maxStderrLine = 8 << 10

// readStderr logs what the agent writes to stderr (its own logs, or a
// panic's stack) and keeps the last lines for crash messages. It reads
// until the pipe ends, however long a line is.
func (p *agentProc) readStderr(f io.Reader) {
	br := bufio.NewReaderSize(f, 4096)
	for {
		b, dropped, err := readCappedLine(br, maxStderrLine)
		if err == nil || len(b) > 0 || dropped > 0 {
			line := string(b)
			if dropped > 0 {
				line += "…"
				p.l.log.Warn("agent stderr", "pid", p.pid, "line", line, "truncated_bytes", dropped)
			} else {
				p.l.log.Warn("agent stderr", "pid", p.pid, "line", line)
			}
			p.mu.Lock()
			p.tail = append(p.tail, truncate(line, 512))
			if len(p.tail) > stderrTailLines {
				p.tail = p.tail[1:]
			}
			p.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// readCappedLine reads one line and returns it without its line ending,
// keeping at most limit bytes; dropped counts the bytes beyond. err is
// the read error at the end of an unterminated last line (io.EOF).
func readCappedLine(br *bufio.Reader, limit int) (line []byte, dropped int, err error) {
	for {
		frag, err := br.ReadSlice('\n')
		eol := err == nil
		if eol {
			frag = frag[:len(frag)-1]
		}
		take := min(max(limit-len(line), 0), len(frag))
		line = append(line, frag[:take]...)
		dropped += len(frag) - take
		switch {
		case eol:
			if dropped == 0 && len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
			return line, dropped, nil
		case errors.Is(err, bufio.ErrBufferFull):
		default:
			return line, dropped, err
		}
	}
}

func (p *agentProc) dead() bool {
	select {
	case <-p.conn.DisconnectNotify():
		return true
	default:
		return false
	}
}

// call makes one call, returning when ctx ends even if the agent does not
// read its stdin (a stopped or hung process): the goroutine that writes is
// left to finish when the pipe moves again or the agent is killed.
func (p *agentProc) call(ctx context.Context, method string, params, result any) error {
	id := jsonrpc2.ID{Num: p.nextID.Add(1)}
	type res struct {
		raw json.RawMessage
		err error
	}
	done := make(chan res, 1)
	do := func() {
		var raw json.RawMessage
		err := p.conn.Call(ctx, method, params, &raw, jsonrpc2.PickID(id))
		if err != nil && ctx.Err() != nil && !errors.Is(err, jsonrpc2.ErrClosed) {
			_ = p.conn.Notify(context.Background(), methodCancel, cancelParams{ID: id})
		}
		done <- res{raw, err}
	}
	if !p.l.spawn(do) {
		go do() // the login is closing; the connection closes with it
	}
	select {
	case r := <-done:
		var rpcErr *jsonrpc2.Error
		if r.err != nil && ctx.Err() == nil && !errors.Is(r.err, jsonrpc2.ErrClosed) && !errors.As(r.err, &rpcErr) {
			// Writing to the agent failed (EPIPE: it is gone): the
			// stream is unusable, so close it; the crash shows at once.
			_ = p.conn.Close()
			return fmt.Errorf("%w: %v", errTransport, r.err)
		}
		if r.err != nil {
			return r.err
		}
		if result != nil && len(r.raw) > 0 {
			if err := json.Unmarshal(r.raw, result); err != nil {
				return fmt.Errorf("%w: the answer to %s: %v", ErrProtocol, method, err)
			}
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopProc closes the agent's stdin, gives it StopTimeout to exit, kills
// its process group otherwise, and waits for it.
func (l *RemoteLogin) stopProc(p *agentProc) {
	_ = p.conn.Close()
	t := time.NewTimer(l.sup.opts.StopTimeout)
	select {
	case <-p.exited:
		t.Stop()
	case <-t.C:
		l.log.Warn("the agent did not exit after its stdin closed; killing it", "pid", p.pid)
		if err := killTree(p.cmd.Process); err != nil {
			l.log.Warn("cannot kill the agent", "pid", p.pid, "err", err)
		}
		<-p.exited
	}
	<-p.stderrDone
}

// supervise waits for the agent to end and restarts it after a crash.
func (l *RemoteLogin) supervise(p *agentProc) {
	defer close(l.superviseDone)
	for {
		health := p
		l.spawn(func() { l.checkHealth(health) })
		// The connection ends when the agent exits (EOF on its stdout, or
		// a second later), sends garbage, or Close closes it.
		select {
		case <-p.conn.DisconnectNotify():
		case <-l.ctx.Done():
		}
		if l.ctx.Err() != nil {
			l.stopProc(p)
			return
		}
		perr := p.stream.protocolError()
		l.stopProc(p)
		if l.ctx.Err() != nil {
			return
		}
		why := describeExit(p)
		if perr != nil {
			why = fmt.Sprintf("it sent a malformed message (%v); %s", perr, why)
		}
		why += p.stderrSuffix()
		np := l.restart(p, why, p.silentFor())
		if np == nil {
			return
		}
		p = np
	}
}

// checkHealth pings p every HealthInterval until its connection ends; after
// HealthMisses unanswered pings in a row it kills p, and supervise
// restarts it as after a crash.
func (l *RemoteLogin) checkHealth(p *agentProc) {
	o := l.sup.opts
	if o.HealthInterval < 0 {
		return
	}
	lastAnswer, misses := time.Now(), 0
	t := time.NewTimer(o.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-p.conn.DisconnectNotify():
			return
		case <-l.ctx.Done():
			return
		}
		sent := time.Now()
		ctx, cancel := context.WithTimeout(l.ctx, o.HealthTimeout)
		err := p.call(ctx, methodPing, nil, nil)
		timedOut := ctx.Err() != nil
		cancel()
		var rpcErr *jsonrpc2.Error
		switch {
		case l.ctx.Err() != nil || p.dead():
			return
		case err == nil || errors.As(err, &rpcErr):
			lastAnswer, misses = time.Now(), 0 // any answer shows life
		case timedOut:
			misses++
			l.log.Debug("the agent did not answer a health ping", "pid", p.pid, "misses", misses, "silent", time.Since(lastAnswer).Round(time.Millisecond).String())
		default:
			return // the pipe broke: supervise sees the crash
		}
		if misses >= o.HealthMisses {
			silent := time.Since(lastAnswer)
			p.mu.Lock()
			p.silent = silent
			p.mu.Unlock()
			l.log.Warn("the agent stopped answering; killing it", "pid", p.pid, "silent", silent.Round(time.Millisecond).String(), "misses", misses)
			if err := killTree(p.cmd.Process); err != nil {
				l.log.Warn("cannot kill the hung agent", "pid", p.pid, "err", err)
			}
			return
		}
		t.Reset(max(o.HealthInterval-time.Since(sent), 0))
	}
}

func (p *agentProc) silentFor() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.silent
}

// stoppedAnswering says how long an agent was silent, in whole seconds
// when it was at least one.
func stoppedAnswering(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("the agent stopped answering for %d s", int(d.Round(time.Second)/time.Second))
	}
	return fmt.Sprintf("the agent stopped answering for %s", d.Round(time.Millisecond))
}

// restart records a crash and starts a new agent, with backoff; nil when
// the login is closing or failed. silent > 0: the health check killed the
// agent after it was silent that long, which is what the events say.
func (l *RemoteLogin) restart(old *agentProc, why string, silent time.Duration) *agentProc {
	o := l.sup.opts
	msg := fmt.Sprintf("the agent (PID %d) crashed: %s", old.pid, why)
	restarted, reconnecting, idle := "restarted after a crash", "restarting the agent after a crash", "the agent was restarted after a crash"
	if silent > 0 {
		hung := stoppedAnswering(silent)
		why = hung
		msg = fmt.Sprintf("%s (PID %d); it was killed", hung, old.pid)
		restarted = hung + "; restarted"
		reconnecting, idle = "restarting the agent: "+hung, "the agent was restarted: "+hung
	}
	l.log.Warn("agent crashed", "pid", old.pid, "why", why)
	n, prev := l.noteCrash()
	l.publish(Event{Kind: EventAgent, Agent: &AgentEvent{Kind: AgentCrashed, PID: old.pid, Message: msg, Restarts: l.restartCount()}})
	if n >= o.MaxCrashes {
		l.fail(fmt.Sprintf("the agent crashed %d times within %s; it was stopped (last: %s). Connect the server again to retry", n, o.CrashWindow, why), prev)
		return nil
	}
	l.publishState(forwarder.Event{State: forwarder.StateReconnecting, Prev: prev, Reason: reconnecting})
	delay := time.Duration(0)
	if n > 1 {
		delay = o.RestartBackoff.Delay(n-1, nil)
	}
	for {
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.ctx.Done():
				t.Stop()
				return nil
			}
		}
		sctx, cancel := context.WithTimeout(l.ctx, o.StartTimeout)
		np, err := l.startProc(sctx)
		cancel()
		if l.ctx.Err() != nil {
			if np != nil {
				l.stopProc(np)
			}
			return nil
		}
		if err == nil {
			l.mu.Lock()
			l.proc, l.status = np, StatusRunning
			l.restarts++
			restarts, want := l.restarts, l.wantConnected
			l.notifyLocked()
			l.mu.Unlock()
			l.log.Warn(restarted, "pid", np.pid, "ready_in", np.readyIn.Round(time.Millisecond).String(), "restarts", restarts)
			now := time.Now()
			l.publish(Event{Kind: EventLog, Time: now, Log: &LogLine{Time: now, Level: slog.LevelWarn, Message: restarted,
				Attrs: []LogAttr{{Key: "login", Value: l.spec.DisplayName()}, {Key: "pid", Value: itoa(np.pid)}, {Key: "crash", Value: why}}}})
			l.publish(Event{Kind: EventAgent, Agent: &AgentEvent{Kind: AgentRestarted, PID: np.pid, Message: restarted, Restarts: restarts}})
			if want {
				l.spawn(l.reconnect)
			} else {
				l.publishState(forwarder.Event{State: forwarder.StateIdle, Prev: forwarder.StateReconnecting, Reason: idle})
			}
			return np
		}
		if errors.Is(err, ErrProtocolMismatch) {
			l.fail(fmt.Sprintf("the restarted agent speaks another protocol version (%v); restart Porthole", err), forwarder.StateReconnecting)
			return nil
		}
		n, _ = l.noteCrash()
		if n >= o.MaxCrashes {
			l.fail(fmt.Sprintf("the agent crashed %d times within %s; it was stopped (last: %v). Connect the server again to retry", n, o.CrashWindow, err), forwarder.StateReconnecting)
			return nil
		}
		delay = o.RestartBackoff.Delay(n-1, nil)
	}
}

// noteCrash records a crash; it returns how many happened within the
// window and the state before.
func (l *RemoteLogin) noteCrash() (int, forwarder.State) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	keep := l.crashes[:0]
	for _, t := range l.crashes {
		if now.Sub(t) < l.sup.opts.CrashWindow {
			keep = append(keep, t)
		}
	}
	l.crashes = append(keep, now)
	if l.status == StatusRunning {
		l.status, l.proc = StatusRestarting, nil
		l.notifyLocked()
	}
	return len(l.crashes), l.lastState.State
}

func (l *RemoteLogin) restartCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.restarts
}

// reconnect connects a restarted agent that was connected before.
func (l *RemoteLogin) reconnect() {
	if err := l.call(l.ctx, methodConnect, nil, nil, l.connectTimeout()); err != nil && l.ctx.Err() == nil {
		l.log.Warn("could not reconnect after restarting the agent", "err", err)
	}
}

// fail stops the login for good.
func (l *RemoteLogin) fail(msg string, prev forwarder.State) {
	l.mu.Lock()
	l.status, l.proc = StatusFailed, nil
	l.failErr = fmt.Errorf("%w: %s: %s", ErrAgentFailed, l.spec.DisplayName(), msg)
	restarts := l.restarts
	l.notifyLocked()
	l.mu.Unlock()
	l.log.Error("agent stopped", "why", msg)
	now := time.Now()
	l.publish(Event{Kind: EventLog, Time: now, Log: &LogLine{Time: now, Level: slog.LevelError, Message: "agent stopped: " + msg}})
	l.publish(Event{Kind: EventAgent, Agent: &AgentEvent{Kind: AgentFailed, Message: msg, Restarts: restarts}})
	l.publishState(forwarder.Event{State: forwarder.StateFailed, Prev: prev, Reason: "the agent was stopped", Err: errors.New(msg)})
}

// publishState records and publishes a state the Supervisor decides.
func (l *RemoteLogin) publishState(e forwarder.Event) {
	e.Session = l.spec.DisplayName()
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Err != nil {
		e.Error = e.Err.Error()
	}
	l.mu.Lock()
	l.lastState = forwarder.StateInfo{State: e.State, Reason: e.Reason, Error: e.Error, Since: e.Time}
	l.mu.Unlock()
	l.publish(Event{Kind: EventState, Time: e.Time, State: &e})
}

// waitProc returns the running agent, waiting (within ctx) while one
// restarts. It never returns not: the agent a call just failed on, whose
// death the Supervisor may not have noticed yet.
func (l *RemoteLogin) waitProc(ctx context.Context, method string, not *agentProc) (*agentProc, error) {
	for {
		l.mu.Lock()
		if l.closing {
			l.mu.Unlock()
			return nil, fmt.Errorf("%w: %s", ErrClosed, l.spec.DisplayName())
		}
		switch l.status {
		case StatusFailed:
			err := l.failErr
			l.mu.Unlock()
			return nil, err
		case StatusRunning:
			if p := l.proc; !p.dead() && p != not {
				l.mu.Unlock()
				return p, nil
			}
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %s: %s could not be sent in time: %w", ErrAgentRestarting, l.spec.DisplayName(), method, ctx.Err())
		}
	}
}

// call calls method on the agent within timeout (CallTimeout if ≤ 0),
// waiting for a restarting agent, and once more on a new agent if the
// agent died during the call (every method is idempotent).
func (l *RemoteLogin) call(parent context.Context, method string, params, result any, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = l.sup.opts.CallTimeout
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var failed *agentProc
	for attempt := 0; ; attempt++ {
		p, err := l.waitProc(ctx, method, failed)
		if err != nil {
			return err
		}
		err = p.call(ctx, method, params, result)
		if err == nil {
			return nil
		}
		if (errors.Is(err, jsonrpc2.ErrClosed) || errors.Is(err, errTransport)) && ctx.Err() == nil && attempt == 0 {
			failed = p // the retry waits for the next agent, not this dying one
			continue
		}
		if ctx.Err() != nil && parent.Err() == nil {
			return fmt.Errorf("%w: %s did not answer %s within %s", ErrCallTimeout, l.spec.DisplayName(), method, timeout)
		}
		return l.mapCallError(err)
	}
}

// errTransport: the pipe to the agent broke during a call.
var errTransport = errors.New("the pipe to the agent broke")

func (l *RemoteLogin) mapCallError(err error) error {
	if errors.Is(err, jsonrpc2.ErrClosed) || errors.Is(err, errTransport) {
		return fmt.Errorf("%w: %s", ErrAgentGone, l.spec.DisplayName())
	}
	return fromRPCError("", err)
}

func (l *RemoteLogin) connectTimeout() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.spec.Session.connectTimeout() + l.sup.opts.CallTimeout
}

// pinPorts remembers the ports forwards with BindPort 0 got, so that a
// restarted agent listens on the same ones.
func (l *RemoteLogin) pinPorts(infos []ForwardInfo) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, in := range infos {
		if in.Addr == "" {
			continue
		}
		port := portOf(in.Addr)
		for i, f := range l.spec.Forwards {
			if f.Key() == in.ID && f.BindPort() == 0 && port > 0 {
				l.spec.Forwards[i] = f.withBindPort(port)
			}
		}
	}
}

func portOf(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return 0
	}
	n := 0
	for _, c := range addr[i+1:] {
		if c < '0' || c > '9' || n > 65535 {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// Spec implements Login.
func (l *RemoteLogin) Spec() LoginSpec {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.spec.clone()
}

// Connect implements Login. Its deadline is the login's connect timeout
// (which includes the questions asked) plus CallTimeout.
func (l *RemoteLogin) Connect(ctx context.Context) error {
	if err := l.call(ctx, methodConnect, nil, nil, l.connectTimeout()); err != nil {
		return err
	}
	l.mu.Lock()
	l.wantConnected = true
	l.mu.Unlock()
	return nil
}

// Disconnect implements Login.
func (l *RemoteLogin) Disconnect(ctx context.Context) error {
	l.mu.Lock()
	l.wantConnected = false
	l.mu.Unlock()
	return l.call(ctx, methodDisconnect, nil, nil, 0)
}

// SetForwards implements Login.
func (l *RemoteLogin) SetForwards(ctx context.Context, fwds []ForwardSpec) ([]ForwardInfo, error) {
	if err := validateForwards(fwds); err != nil {
		return nil, err
	}
	l.mu.Lock()
	old := l.spec.Forwards
	next := cloneForwards(fwds)
	for i, f := range next { // keep the ports already pinned
		if f.BindPort() != 0 {
			continue
		}
		for _, o := range old {
			if o.Key() == f.Key() && sameButPort(o, f) {
				next[i] = f.withBindPort(o.BindPort())
			}
		}
	}
	l.spec.Forwards = next
	l.mu.Unlock()
	var r forwardsResult
	if err := l.call(ctx, methodSetForwards, setForwardsParams{Forwards: fwds}, &r, 0); err != nil {
		return nil, err
	}
	l.pinPorts(r.Forwards)
	var errs []error
	for _, f := range r.Forwards {
		if f.Error != "" {
			errs = append(errs, &RemoteError{Message: f.Error, Kinds: []string{"agent.listen"}})
		}
	}
	return r.Forwards, errors.Join(errs...)
}

// SetSecrets implements Login; a restarted agent gets the new secrets.
func (l *RemoteLogin) SetSecrets(ctx context.Context, s Secrets) error {
	l.mu.Lock()
	l.secrets = s
	l.mu.Unlock()
	return l.call(ctx, methodSetSecrets, secretsParams{Secrets: s}, nil, 0)
}

// Exec implements Login.
func (l *RemoteLogin) Exec(ctx context.Context, cmd string) ([]byte, error) {
	var o execOutcome
	if err := l.call(ctx, methodExec, execParams{Command: cmd, Limit: MaxExecOutput}, &o, 0); err != nil {
		return nil, err
	}
	return o.Stdout, o.err()
}

// Probe implements Login. The agent answers a little before the deadline,
// with what it read so far.
func (l *RemoteLogin) Probe(ctx context.Context, host string, port int, request []byte, limit int) ([]byte, error) {
	limit = max(min(limit, MaxProbeSize), 0)
	timeout := l.sup.opts.CallTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	var r probeResult
	params := probeParams{Host: host, Port: port, Request: request, Limit: limit, Timeout: max(timeout*4/5, time.Millisecond)}
	if err := l.call(ctx, methodProbe, params, &r, timeout); err != nil {
		return nil, err
	}
	return r.Response, r.Err.toError()
}

// OpenLink implements Login. The target travels to the agent over its
// stdin pipe only. A retry on a restarted agent (after a crash during the
// call) makes a new link there: the old agent's links died with it.
func (l *RemoteLogin) OpenLink(ctx context.Context, forwardID, target string) (string, error) {
	params := openLinkParams{Forward: forwardID, Target: target}
	if err := params.validate(); err != nil {
		return "", fmt.Errorf("%w: %w", forwarder.ErrBadOpenTarget, err)
	}
	var r openLinkResult
	if err := l.call(ctx, methodOpenLink, params, &r, 0); err != nil {
		return "", err
	}
	if r.Code == "" {
		return "", fmt.Errorf("%w: the agent answered openLink without a code", ErrProtocol)
	}
	return r.Code, nil
}

// Stats implements Login.
func (l *RemoteLogin) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	if err := l.call(ctx, methodStats, nil, &st, 0); err != nil {
		return Stats{}, err
	}
	l.mu.Lock()
	if l.status == StatusRunning {
		l.lastState = st.Session
	}
	l.mu.Unlock()
	return st, nil
}

// State implements Login: the last state the agent reported (or the
// Supervisor decided, e.g. Failed); it never waits for the agent.
func (l *RemoteLogin) State() forwarder.StateInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastState
}

// Subscribe implements Login.
func (l *RemoteLogin) Subscribe(f func(Event)) func() { return l.hub.subscribe(f) }

// Process describes the agent process.
func (l *RemoteLogin) Process() ProcessInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	pi := ProcessInfo{Status: l.status, Restarts: l.restarts}
	if l.proc != nil {
		pi.PID, pi.Started, pi.ReadyIn = l.proc.pid, l.proc.started, l.proc.readyIn
	}
	if l.failErr != nil {
		pi.Error = l.failErr.Error()
	}
	if l.closing {
		pi.Status = StatusClosed
	}
	return pi
}

// Close implements Login: the agent's stdin is closed (it closes its
// listeners and exits), and it is killed if it does not exit within
// StopTimeout.
func (l *RemoteLogin) Close() error {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		<-l.closeDone
		return nil
	}
	l.closing = true
	l.notifyLocked()
	l.mu.Unlock()
	l.cancel()
	<-l.superviseDone
	l.wg.Wait()
	l.mu.Lock()
	l.status, l.proc = StatusClosed, nil
	l.lastState = forwarder.StateInfo{State: forwarder.StateClosed, Reason: "closed", Since: time.Now()}
	l.mu.Unlock()
	l.publish(Event{Kind: EventAgent, Agent: &AgentEvent{Kind: AgentStopped, Message: "agent stopped", Restarts: l.restartCount()}})
	l.hub.close()
	l.sup.mu.Lock()
	delete(l.sup.logins, l)
	l.sup.mu.Unlock()
	close(l.closeDone)
	return nil
}

// appHandler serves the agent's calls (prompts) and notifications (events).
type appHandler struct{ p *agentProc }

func (h *appHandler) Handle(ctx context.Context, conn *jsonrpc2.Conn, req *jsonrpc2.Request) {
	p, l := h.p, h.p.l
	params, err := decodeParams(req.Method, req.Params)
	if req.Notif {
		switch {
		case err != nil:
			l.log.Warn("ignoring a bad notification from the agent", "method", truncate(req.Method, 64), "err", err)
		case req.Method == methodEvent:
			l.onAgentEvent(params.(*eventParams).event())
		case req.Method == methodCancel:
			p.mu.Lock()
			if c := p.prompts[params.(*cancelParams).ID]; c != nil {
				c()
			}
			p.mu.Unlock()
		default:
			l.log.Warn("ignoring an unexpected notification from the agent", "method", req.Method)
		}
		return
	}
	if err != nil {
		code := int64(jsonrpc2.CodeInvalidParams)
		if errors.Is(err, errUnknownMethod) {
			code = jsonrpc2.CodeMethodNotFound
		}
		l.log.Warn("refusing a call from the agent", "method", truncate(req.Method, 64), "err", err)
		_ = conn.ReplyWithError(ctx, req.ID, &jsonrpc2.Error{Code: code, Message: err.Error()})
		return
	}
	switch req.Method {
	case methodPromptPassword, methodPromptKI, methodPromptHostKey:
	default:
		_ = conn.ReplyWithError(ctx, req.ID, &jsonrpc2.Error{Code: codeNotReady, Message: req.Method + " is not a method of the app"})
		return
	}
	if l.prompter == nil {
		_ = conn.ReplyWithError(ctx, req.ID, toRPCError(ErrNoPrompter))
		return
	}
	pctx, cancel := context.WithCancel(p.ctx)
	p.mu.Lock()
	p.prompts[req.ID] = cancel
	p.mu.Unlock()
	answer := func() {
		defer func() {
			p.mu.Lock()
			delete(p.prompts, req.ID)
			p.mu.Unlock()
			cancel()
		}()
		res, err := l.prompt(pctx, req.Method, params)
		if err != nil {
			_ = conn.ReplyWithError(pctx, req.ID, toRPCError(err))
			return
		}
		_ = conn.Reply(pctx, req.ID, res)
	}
	if !l.spawn(answer) {
		cancel()
		_ = conn.ReplyWithError(ctx, req.ID, toRPCError(fmt.Errorf("%w: %s", ErrClosed, l.spec.DisplayName())))
	}
}

// prompt asks the app's Prompter.
func (l *RemoteLogin) prompt(ctx context.Context, method string, params validator) (any, error) {
	switch p := params.(type) {
	case *passwordPromptParams:
		s, err := l.prompter.Password(l.promptCtx(ctx, p.Info), p.Prompt)
		return passwordPromptResult{Secret: s}, err
	case *kiPromptParams:
		a, err := l.prompter.KeyboardInteractive(l.promptCtx(ctx, p.Info), p.Prompt)
		return kiPromptResult{Answers: a}, err
	case *hostKeyPromptParams:
		d, err := l.prompter.UnknownHost(l.promptCtx(ctx, p.Info), p.Prompt)
		return hostKeyPromptResult{Decision: d}, err
	}
	return nil, fmt.Errorf("%w: %s", ErrProtocol, method)
}

func (l *RemoteLogin) promptCtx(ctx context.Context, pi PromptInfo) context.Context {
	pi.Login = l.spec.ID
	return WithPromptInfo(ctx, pi)
}

// onAgentEvent republishes an event of the agent.
func (l *RemoteLogin) onAgentEvent(e Event) {
	switch {
	case e.State != nil:
		if e.State.Error != "" && e.State.Err == nil {
			e.State.Err = errors.New(e.State.Error)
		}
		l.mu.Lock()
		if l.status == StatusRunning {
			l.lastState = forwarder.StateInfo{State: e.State.State, Reason: e.State.Reason, Error: e.State.Error, Since: e.State.Time, RTT: e.State.RTT}
		}
		l.mu.Unlock()
	case e.Log != nil:
		relog(l.sup.opts.Logger, e.Log)
	case e.Agent != nil:
		return // only the Supervisor speaks about agents
	}
	l.publish(e)
}
