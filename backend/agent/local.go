package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/guard"
	"github.com/porthole-app/porthole/backend/sshconn"
)

// LocalLogin runs a login in this process: a forwarder.Session dialed
// through sshconn, its local forwards behind the same-user guard, and wake
// detection. The agent process runs one; tests and `porthole forward` use it
// directly. Its methods are safe for concurrent use.
type LocalLogin struct {
	prompter sshconn.Prompter
	log      *slog.Logger
	hub      *hub
	guard    forwarder.Guard
	wake     *forwarder.WakeDetector

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // goroutines the login starts

	everConnected atomic.Bool
	interactive   atomic.Int32 // Connect calls in progress
	warming       atomic.Bool  // a Prewarm dial runs
	warmable      atomic.Bool  // connected since the last Disconnect: Prewarm may dial

	fwdMu sync.Mutex // serializes SetForwards

	mu        sync.Mutex
	spec      LoginSpec // Forwards: the current set
	secrets   Secrets
	closed    bool
	sess      *forwarder.Session
	sessGen   uint64
	unwake    func()
	client    forwarder.SSHClient // the session's latest connection (for Exec)
	lastErr   error               // why the last dial failed
	lastState forwarder.StateInfo
	forwards  []*localForward
}

type localForward struct {
	spec ForwardSpec
	lf   runningForward // nil when it could not listen
	err  error
}

// runningForward is a *forwarder.LocalForward, *forwarder.WebForward,
// *forwarder.DynamicForward or *forwarder.RemoteForward.
type runningForward interface {
	Addr() net.Addr
	Stats() forwarder.StatsSnapshot
	Close() error
}

var _ Login = (*LocalLogin)(nil)

// NewLocalLogin validates spec, binds its forwards and returns the login;
// it does not connect (the first use or Connect does). prompter asks the
// user what Secrets cannot answer (nil: nobody; such logins fail with
// ErrNoPrompter). log receives the login's logs (nil discards them); every
// record at or above spec.LogLevel is also published as EventLog.
// A forward that cannot listen does not fail the login: its ForwardInfo
// (Stats) says why.
func NewLocalLogin(spec LoginSpec, secrets Secrets, prompter sshconn.Prompter, log *slog.Logger) (*LocalLogin, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	spec = spec.clone()
	if log == nil {
		log = discardLogger()
	}
	l := &LocalLogin{prompter: prompter, hub: newHub(), spec: spec, secrets: secrets}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.log = slog.New(&teeHandler{base: log.Handler(), min: spec.LogLevel, emit: l.emitLog}).With("login", spec.DisplayName())
	l.guard = guard.NewSameUser(l.log)
	l.wake = forwarder.NewWakeDetector(forwarder.WakeOptions{Logger: l.log})
	l.wake.Start()
	l.mu.Lock()
	l.newSessionLocked()
	l.lastState = l.sess.State()
	l.mu.Unlock()
	fwds := spec.Forwards
	l.spec.Forwards = nil
	if _, err := l.setForwards(fwds); err != nil {
		l.log.Warn("some forwards are not listening", "err", err)
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.statsLoop()
	}()
	return l, nil
}

func (l *LocalLogin) emitLog(line LogLine) {
	l.hub.publish(Event{Kind: EventLog, Login: l.spec.ID, Time: line.Time, Log: &line})
}

func (l *LocalLogin) newSessionLocked() {
	l.sessGen++
	gen := l.sessGen
	ss := l.spec.Session
	idle := ss.IdleTimeout
	s := forwarder.NewSession(forwarder.ConnectorFunc(func(ctx context.Context) (forwarder.SSHClient, error) {
		return l.connect(ctx, gen)
	}), forwarder.SessionOptions{
		Name:              l.spec.DisplayName(),
		Logger:            l.log,
		Publisher:         forwarder.PublisherFunc(func(e forwarder.Event) { l.onState(gen, e) }),
		IdleTimeout:       idle,
		PingIdleThreshold: ss.PingIdleThreshold,
		PingTimeout:       ss.PingTimeout,
		ConnectTimeout:    ss.connectTimeout(),
		ReconnectWindow:   ss.ReconnectWindow,
		KeepaliveInterval: ss.KeepaliveInterval,
		Pool:              forwarder.PoolOptions{Disabled: ss.PoolDisabled, MaxPerTarget: ss.PoolSize},
	})
	l.sess = s
	l.client = nil
	l.unwake = l.wake.Register(s)
}

func (l *LocalLogin) onState(gen uint64, e forwarder.Event) {
	l.mu.Lock()
	if gen != l.sessGen {
		l.mu.Unlock()
		return // a replaced session's last words
	}
	l.lastState = forwarder.StateInfo{State: e.State, Reason: e.Reason, Error: e.Error, Since: e.Time, RTT: e.RTT}
	l.mu.Unlock()
	l.hub.publish(Event{Kind: EventState, Login: l.spec.ID, Time: e.Time, State: &e})
}

func (l *LocalLogin) onStep(step sshconn.Step, detail string) {
	l.hub.publish(Event{Kind: EventStep, Login: l.spec.ID, Step: &StepEvent{Step: step, Name: step.String(), Detail: detail}})
}

// connect is the Session's Connector: resolve the spec again (so ssh_config
// edits apply), then dial, answering questions from the secrets first.
func (l *LocalLogin) connect(ctx context.Context, gen uint64) (forwarder.SSHClient, error) {
	c, final, err := l.dial(ctx)
	l.mu.Lock()
	l.lastErr = err
	if err == nil && gen == l.sessGen {
		l.client = c
	}
	l.mu.Unlock()
	if err != nil {
		// While a user waits, or before the first success, every failure is
		// final: the user sees it at once instead of retries in the dark.
		// Later (background reconnects) only the hopeless ones are.
		if final || l.interactive.Load() > 0 || !l.everConnected.Load() {
			return nil, fmt.Errorf("%w: %w", forwarder.ErrPermanent, err)
		}
		return nil, err
	}
	l.everConnected.Store(true)
	l.warmable.Store(true)
	return c, nil
}

func (l *LocalLogin) dial(ctx context.Context) (forwarder.SSHClient, bool, error) {
	return l.dialWith(ctx, l.prompter, l.onStep)
}

// dialWith dials once; prompter nil means nobody is asked (ErrNoPrompter).
func (l *LocalLogin) dialWith(ctx context.Context, prompter sshconn.Prompter, onStep func(sshconn.Step, string)) (forwarder.SSHClient, bool, error) {
	l.mu.Lock()
	spec, secrets := l.spec, l.secrets
	l.mu.Unlock()
	cfg, err := spec.Resolve()
	if err != nil {
		return nil, true, err
	}
	dp := newDialPrompter(spec.ID, secrets, prompter)
	d := &sshconn.Dialer{
		Config:          cfg,
		Prompter:        dp,
		Logger:          l.log,
		OnStep:          onStep,
		AgentSocket:     spec.AgentSocket,
		KnownHostsFiles: spec.KnownHostsFiles,
	}
	if !spec.UsesAgent() {
		d.AgentSocket = "none"
	}
	c, err := d.Dial(ctx)
	if err != nil {
		return nil, dp.userFailed() || isFinalDialError(err), err
	}
	return c, false, nil
}

// isFinalDialError: errors that retrying cannot fix.
func isFinalDialError(err error) bool {
	for _, e := range []error{
		sshconn.ErrAuthFailed, sshconn.ErrHostKeyMismatch, sshconn.ErrHostKeyRejected,
		sshconn.ErrHostKeyUnknown, sshconn.ErrHostKeyRevoked, sshconn.ErrConfig,
		sshconn.ErrUnsupported, sshconn.ErrWrongPassphrase, sshconn.ErrBadKey, ErrNoPrompter,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// session returns the current Session, or ErrClosed.
func (l *LocalLogin) session() (*forwarder.Session, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("%w: %s", ErrClosed, l.spec.DisplayName())
	}
	return l.sess, nil
}

// Spec implements Login.
func (l *LocalLogin) Spec() LoginSpec {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.spec.clone()
}

// Connect implements Login.
func (l *LocalLogin) Connect(ctx context.Context) error { return l.connectNow(ctx, true) }

// connectNow connects the session now. interactive: a person waits (Connect),
// so every failure is final and shown at once; otherwise (a command the app
// runs in the background, e.g. a listing) failures after the first success
// leave the session reconnecting by itself, as for a forward's connection.
func (l *LocalLogin) connectNow(ctx context.Context, interactive bool) error {
	s, err := l.session()
	if err != nil {
		return err
	}
	if interactive {
		l.interactive.Add(1)
		defer l.interactive.Add(-1)
	}
	err = s.Connect(ctx)
	if err == nil {
		return nil
	}
	l.mu.Lock()
	cause, closed := l.lastErr, l.closed
	l.mu.Unlock()
	if closed {
		return fmt.Errorf("%w: %s", ErrClosed, l.spec.DisplayName())
	}
	if cause != nil && ctx.Err() == nil {
		return cause // the dial's own error, without the Session's wrapping
	}
	return err
}

// Disconnect implements Login: the current Session is closed and replaced
// by a fresh, idle one.
func (l *LocalLogin) Disconnect(ctx context.Context) error {
	l.fwdMu.Lock()
	defer l.fwdMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrClosed, l.spec.DisplayName())
	}
	old, unwake, prev := l.sess, l.unwake, l.lastState
	l.warmable.Store(false)
	l.newSessionLocked()
	sess := l.sess
	now := time.Now()
	e := forwarder.Event{Session: l.spec.DisplayName(), State: forwarder.StateIdle, Prev: prev.State, Reason: "disconnected", Time: now}
	l.lastState = forwarder.StateInfo{State: forwarder.StateIdle, Reason: e.Reason, Since: now}
	fwds := l.forwards
	l.mu.Unlock()
	// Remote forwards belong to a Session: they move to the new one and
	// are requested again at its first connection. The list is replaced,
	// not edited (Stats reads it without fwdMu).
	next := slices.Clone(fwds)
	moved := false
	for i, f := range fwds {
		if w := f.spec.Web; w != nil && f.lf != nil {
			// Its tab is still open: the next connection pre-opens for it.
			sess.SeedPool(w.TargetHost, w.TargetPort, forwarder.BrowserConnsPerHost)
		}
		if f.spec.Remote == nil || f.lf == nil {
			continue
		}
		moved = true
		_ = f.lf.Close()
		nf := &localForward{spec: f.spec}
		if rf, err := l.listenRemote(sess, *f.spec.Remote); err != nil {
			nf.err = fmt.Errorf("%w: forward %s: %w", ErrListen, f.spec.Key(), err)
		} else {
			nf.lf = rf
		}
		next[i] = nf
	}
	if moved {
		l.mu.Lock()
		l.forwards = next
		l.mu.Unlock()
	}
	unwake()
	_ = old.Close()
	l.log.Info("disconnected")
	l.hub.publish(Event{Kind: EventState, Login: l.spec.ID, Time: now, State: &e})
	return nil
}

// Dial opens a connection to host:port as seen from the server through the
// current Session (forwarder.Dialer and discovery.Dialer). It survives a
// concurrent Disconnect by dialing through the new Session.
func (l *LocalLogin) Dial(ctx context.Context, host string, port int) (net.Conn, error) {
	for attempt := 0; ; attempt++ {
		s, err := l.session()
		if err != nil {
			return nil, err
		}
		c, err := s.Dial(ctx, host, port)
		if err != nil && errors.Is(err, forwarder.ErrSessionClosed) && attempt == 0 {
			continue // replaced by Disconnect under us
		}
		return c, err
	}
}

// SeedPool passes a hint to the current Session's channel pool
// (forwarder.PoolSeeder): a web forward seeds its target when it starts, so
// after an agent restart, when the app sets its tabs' forwards again, the
// first page load is pooled too.
func (l *LocalLogin) SeedPool(host string, port int, n int) {
	if s, err := l.session(); err == nil {
		s.SeedPool(host, port, n)
	}
}

// DialUnix opens a connection to the Unix socket path on the server through
// the current Session (forwarder.UnixDialer), like Dial.
func (l *LocalLogin) DialUnix(ctx context.Context, path string) (net.Conn, error) {
	for attempt := 0; ; attempt++ {
		s, err := l.session()
		if err != nil {
			return nil, err
		}
		c, err := s.DialUnix(ctx, path)
		if err != nil && errors.Is(err, forwarder.ErrSessionClosed) && attempt == 0 {
			continue // replaced by Disconnect under us
		}
		return c, err
	}
}

// SetForwards implements Login.
func (l *LocalLogin) SetForwards(ctx context.Context, fwds []ForwardSpec) ([]ForwardInfo, error) {
	if err := validateForwards(fwds); err != nil {
		return nil, err
	}
	return l.setForwards(fwds)
}

func (l *LocalLogin) setForwards(fwds []ForwardSpec) ([]ForwardInfo, error) {
	l.fwdMu.Lock()
	defer l.fwdMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrClosed, l.spec.DisplayName())
	}
	old := l.forwards
	l.mu.Unlock()

	byKey := make(map[string]*localForward, len(old))
	for _, f := range old {
		byKey[f.spec.Key()] = f
	}
	next := make([]*localForward, 0, len(fwds))
	keep := map[*localForward]bool{}
	for _, want := range fwds {
		if f := byKey[want.Key()]; f != nil && f.lf != nil && sameForward(f, want) {
			keep[f] = true
			next = append(next, f)
			continue
		}
		next = append(next, &localForward{spec: want})
	}
	// Close what goes (or changes) first: a changed forward may want the
	// same local port again.
	for _, f := range old {
		if !keep[f] && f.lf != nil {
			if err := f.lf.Close(); err != nil {
				l.log.Warn("closing a forward", "forward", f.spec.Key(), "err", err)
			}
			l.log.Info("forward closed", "forward", f.spec.Key(), "local", f.lf.Addr().String())
		}
	}
	var errs []error
	for _, f := range next {
		if keep[f] {
			continue
		}
		lf, err := l.listen(f.spec)
		if err != nil {
			f.err = fmt.Errorf("%w: forward %s: %w", ErrListen, f.spec.Key(), err)
			errs = append(errs, f.err)
			l.log.Warn("cannot listen", "forward", f.spec.Key(), "err", err)
			continue
		}
		f.lf = lf
		ep := f.spec.Endpoint()
		if f.spec.Remote != nil {
			l.log.Info("remote forwarding", "forward", f.spec.Key(), "spec", f.spec.Remote.String())
			continue
		}
		remote := ep.Target()
		if f.spec.Dynamic != nil {
			remote = "any host:port the SOCKS client asks for"
		}
		l.log.Info("forwarding", "forward", f.spec.Key(), "kind", f.spec.Kind(), "local", lf.Addr().String(), "remote", remote)
	}

	l.mu.Lock()
	if l.closed { // Close raced with the binds: it closed the old set only
		l.mu.Unlock()
		for _, f := range next {
			if !keep[f] && f.lf != nil {
				_ = f.lf.Close()
			}
		}
		return nil, fmt.Errorf("%w: %s", ErrClosed, l.spec.DisplayName())
	}
	l.forwards = next
	l.spec.Forwards = make([]ForwardSpec, len(next))
	for i, f := range next {
		l.spec.Forwards[i] = f.spec.clone()
	}
	l.mu.Unlock()
	infos := forwardInfos(next)
	l.publishStats()
	return infos, errors.Join(errs...)
}

// listen binds one forward behind the login's guard; a remote forward is
// requested on the login's current Session (and every later connection).
func (l *LocalLogin) listen(spec ForwardSpec) (runningForward, error) {
	if spec.Remote != nil {
		s, err := l.session()
		if err != nil {
			return nil, err
		}
		return l.listenRemote(s, *spec.Remote)
	}
	var d forwarder.Dialer = l // also a forwarder.UnixDialer, for socket targets
	if spec.Web != nil {
		return forwarder.ListenWeb(*spec.Web, d, forwarder.WebOptions{Guard: l.guard, Logger: l.log})
	}
	if spec.Dynamic != nil {
		return forwarder.ListenDynamic(*spec.Dynamic, d, forwarder.DynamicOptions{Guard: l.guard, Logger: l.log})
	}
	return forwarder.ListenLocal(spec.Local, d, forwarder.LocalOptions{Guard: l.guard, Logger: l.log})
}

// listenRemote starts a remote forward on s; its state changes are
// published as EventStats at once.
func (l *LocalLogin) listenRemote(s *forwarder.Session, spec forwarder.RemoteSpec) (*forwarder.RemoteForward, error) {
	return forwarder.ListenRemote(s, spec, forwarder.RemoteOptions{
		Logger:   l.log,
		OnChange: func(forwarder.RemoteStatus) { l.publishStats() },
	})
}

// sameForward: want asks for what f already does. A BindPort of 0 matches
// the port f got (the app asks again without knowing it).
func sameForward(f *localForward, want ForwardSpec) bool {
	have := f.spec
	if ta, ok := f.lf.Addr().(*net.TCPAddr); ok && have.BindPort() == 0 {
		have = have.withBindPort(ta.Port)
	}
	if want.BindPort() == 0 {
		want = want.withBindPort(have.BindPort())
	}
	return sameSpec(have, want)
}

func forwardInfos(fwds []*localForward) []ForwardInfo {
	infos := make([]ForwardInfo, len(fwds))
	for i, f := range fwds {
		infos[i] = forwardInfo(f.spec)
		switch {
		case f.lf != nil:
			infos[i].Stats = f.lf.Stats()
			if rf, ok := f.lf.(*forwarder.RemoteForward); ok {
				st := rf.Status()
				infos[i].Remote = &st
				switch st.State {
				case forwarder.RemoteListening:
					infos[i].Addr = rf.Addr().String()
				case forwarder.RemoteRefused, forwarder.RemoteWaitingPort:
					infos[i].Error = st.Reason
				}
				continue
			}
			infos[i].Addr = f.lf.Addr().String()
		case f.err != nil:
			infos[i].Error = f.err.Error()
		}
	}
	return infos
}

// forwardInfo is the part of a ForwardInfo the spec says.
func forwardInfo(spec ForwardSpec) ForwardInfo {
	fi := ForwardInfo{ID: spec.Key(), Kind: spec.Kind(), Spec: spec.Endpoint()}
	if spec.Web != nil {
		fi.Web = spec.clone().Web
	}
	return fi
}

// SetSecrets implements Login.
func (l *LocalLogin) SetSecrets(ctx context.Context, s Secrets) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("%w: %s", ErrClosed, l.spec.DisplayName())
	}
	l.secrets = s
	return nil
}

// OpenLink implements Login: the web forward registers the link.
func (l *LocalLogin) OpenLink(ctx context.Context, forwardID, target string) (string, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return "", fmt.Errorf("%w: %s", ErrClosed, l.spec.DisplayName())
	}
	fwds := l.forwards
	l.mu.Unlock()
	for _, f := range fwds {
		if f.spec.Key() != forwardID {
			continue
		}
		if wf, ok := f.lf.(*forwarder.WebForward); ok {
			return wf.OpenLink(target)
		}
		break
	}
	return "", fmt.Errorf("%w: %q of %s", ErrNoWebForward, forwardID, l.spec.DisplayName())
}

// Stats implements Login.
func (l *LocalLogin) Stats(ctx context.Context) (Stats, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return Stats{}, fmt.Errorf("%w: %s", ErrClosed, l.spec.DisplayName())
	}
	s, fwds := l.sess, l.forwards
	l.mu.Unlock()
	return Stats{Session: s.State(), Forwards: forwardInfos(fwds)}, nil
}

// State implements Login.
func (l *LocalLogin) State() forwarder.StateInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return l.lastState
	}
	st := l.sess.State()
	return st
}

// Subscribe implements Login.
func (l *LocalLogin) Subscribe(f func(Event)) func() { return l.hub.subscribe(f) }

func (l *LocalLogin) publishStats() {
	st, err := l.Stats(context.Background())
	if err == nil {
		l.hub.publish(Event{Kind: EventStats, Login: l.spec.ID, Stats: &st})
	}
}

// statsLoop publishes EventStats when the counters changed.
func (l *LocalLogin) statsLoop() {
	every := l.spec.Session.StatsInterval
	if every < 0 {
		return
	}
	if every == 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var last string
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		st, err := l.Stats(l.ctx)
		if err != nil {
			return
		}
		key := statsKey(st)
		if key == last {
			continue
		}
		last = key
		l.hub.publish(Event{Kind: EventStats, Login: l.spec.ID, Stats: &st})
	}
}

func statsKey(st Stats) string {
	b := []byte(st.Session.State.String())
	for _, f := range st.Forwards {
		s := f.Stats
		b = fmt.Appendf(b, "|%s %s %s %d %d %d %d %d %d %d", f.ID, f.Addr, f.Error, s.TotalConns, s.ActiveConns, s.BytesIn, s.BytesOut, s.FailedConns, s.Refused, s.Retries)
		if r := f.Remote; r != nil {
			b = fmt.Appendf(b, " %s %d %q %v %d", r.State, r.Port, r.Reason, r.LoopbackOnly, r.Reclaimed)
		}
	}
	return string(b)
}

// spawn runs f in a goroutine owned by the login, unless it is closed.
func (l *LocalLogin) spawn(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
	return true
}

// Close implements Login.
func (l *LocalLogin) Close() error {
	l.fwdMu.Lock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.fwdMu.Unlock()
		return nil
	}
	l.closed = true
	fwds, sess, unwake := l.forwards, l.sess, l.unwake
	l.forwards = nil
	l.mu.Unlock()
	l.fwdMu.Unlock()

	l.cancel()
	for _, f := range fwds {
		if f.lf != nil {
			_ = f.lf.Close()
		}
	}
	unwake()
	_ = sess.Close() // publishes the Closed state
	l.mu.Lock()
	l.lastState = sess.State()
	l.mu.Unlock()
	_ = l.wake.Close()
	l.wg.Wait()
	l.hub.close()
	return nil
}
