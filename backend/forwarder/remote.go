package forwarder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// RemoteState is where a remote forward stands.
type RemoteState int

const (
	// RemoteWaitingConn: no SSH connection yet (or between connections);
	// the forward is requested as soon as one is ready.
	RemoteWaitingConn RemoteState = iota
	// RemoteRequesting: the tcpip-forward request is on its way.
	RemoteRequesting
	// RemoteListening: the server listens and forwards connections here.
	RemoteListening
	// RemoteWaitingPort: the port is in use on the server (typically by
	// the stale session of this login's previous connection); retrying.
	RemoteWaitingPort
	// RemoteRefused: the server refused to listen (sshd_config policy);
	// retrying with backoff in case it changes.
	RemoteRefused
	// RemoteClosed: Close was called.
	RemoteClosed
)

var remoteStateNames = [...]string{
	RemoteWaitingConn: "waiting-for-connection",
	RemoteRequesting:  "requesting",
	RemoteListening:   "listening",
	RemoteWaitingPort: "waiting-for-port",
	RemoteRefused:     "refused",
	RemoteClosed:      "closed",
}

func (s RemoteState) String() string {
	if s >= 0 && int(s) < len(remoteStateNames) {
		return remoteStateNames[s]
	}
	return fmt.Sprintf("RemoteState(%d)", int(s))
}

// MarshalText makes RemoteState appear as its name in JSON.
func (s RemoteState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a RemoteState name.
func (s *RemoteState) UnmarshalText(b []byte) error {
	for i, n := range remoteStateNames {
		if n == string(b) {
			*s = RemoteState(i)
			return nil
		}
	}
	return fmt.Errorf("unknown remote forward state %q: want one of %s", b, strings.Join(remoteStateNames[:], ", "))
}

// RemoteStatus is a snapshot of a remote forward.
type RemoteStatus struct {
	Spec  RemoteSpec  `json:"spec"`
	State RemoteState `json:"state"`
	// Reason says in plain words why the forward is in State, e.g.
	// "waiting for the server to release port 8080 (held by the previous
	// connection)".
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
	// Port is the port the server listens on (the allocated one when
	// Spec.BindPort is 0); 0 while not listening.
	Port int `json:"port,omitempty"`
	// LoopbackOnly: more than the server's loopback was asked for, but the
	// server listens on loopback only (GatewayPorts no).
	LoopbackOnly bool `json:"loopbackOnly,omitempty"`
	// Reclaimed counts stale sshd sessions of this login's previous
	// connections that were ended to free the port.
	Reclaimed int `json:"reclaimed,omitempty"`
	// LastOutage is how long the forward was down before it last listened
	// again (0: never down).
	LastOutage time.Duration `json:"lastOutageNs,omitempty"`
}

// RemoteOptions configures a RemoteForward. The zero value is usable.
type RemoteOptions struct {
	// Logger receives the forward's logs; nil discards them.
	Logger *slog.Logger
	// OnChange is called (from the forward's goroutine, never while it
	// holds a lock) after every state change; it must not block long.
	OnChange func(RemoteStatus)
	// DialTimeout bounds dialing the target for one forwarded connection;
	// default 10 s.
	DialTimeout time.Duration
	// RequestTimeout: a tcpip-forward request unanswered for this long
	// makes the Session verify the connection again; default 15 s.
	RequestTimeout time.Duration
	// Retry spaces new requests while the port is busy or refused; default
	// 500 ms growing to 15 s.
	Retry Backoff
	// KillWait is how long a stale session gets between SIGTERM and
	// SIGKILL; default 2 s.
	KillWait time.Duration
}

func (o RemoteOptions) withDefaults() RemoteOptions {
	if o.Logger == nil {
		o.Logger = discardLogger()
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 15 * time.Second
	}
	if o.Retry.Initial <= 0 {
		o.Retry.Initial = 500 * time.Millisecond
	}
	if o.Retry.Max <= 0 {
		o.Retry.Max = 15 * time.Second
	}
	o.Retry = o.Retry.withDefaults()
	if o.KillWait <= 0 {
		o.KillWait = 2 * time.Second
	}
	return o
}

// ErrRemoteUnsupported means the Session's connections cannot carry remote
// forwards (the SSHClient lacks SendRequest or HandleChannelOpen).
var ErrRemoteUnsupported = errors.New("this ssh connection cannot carry remote forwards")

// remoteClient is what a remote forward needs of an SSHClient beyond the
// interface (sshconn.Client and ClientFromSSH's client have it).
type remoteClient interface {
	SendRequest(name string, wantReply bool, payload []byte) (bool, []byte, error)
	HandleChannelOpen(channelType string) <-chan ssh.NewChannel
}

// RemoteForward is a running -R forward on a Session: on every connection
// the Session makes, it asks the server to listen on the spec's address and
// forwards each connection the server accepts there to the spec's target,
// dialed from this machine. While it runs, the Session stays connected (see
// SessionOptions.KeepaliveInterval) and reconnects after every loss, wake or
// network change; the forward is then requested again.
//
// When the server refuses the port because the sshd session of this
// login's own previous connection still holds it (a connection that died
// silently), the forward finds that process with one read-only command
// over the new connection — by the old connection's client address as the
// server saw it, and the login user — ends it (SIGTERM, then SIGKILL) and
// asks again, unless Spec.NoReclaim is set. No other process is ever
// signalled and nothing is written on the server.
type RemoteForward struct {
	s    *Session
	spec RemoteSpec
	opts RemoteOptions
	log  *slog.Logger

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	release func()

	mu        sync.Mutex
	st        RemoteStatus
	downSince time.Time // when it stopped listening (zero: listening or never listened)
	everUp    bool
	allocated int                    // the port the server gave last time (BindPort 0)
	conns     map[io.Closer]struct{} // forwarded connections: both ends
	closed    bool

	stats     Stats
	inspected atomic.Int64 // inspections done (tests wait for the first)
}

// ListenRemote starts a remote forward on s. It does not connect: the
// forward is requested on the Session's current connection, if any, and on
// every later one (Connect or Dial makes the first). Close ends it.
func ListenRemote(s *Session, spec RemoteSpec, opts RemoteOptions) (*RemoteForward, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if s == nil {
		return nil, errors.New("remote forward: no Session given")
	}
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	f := &RemoteForward{
		s:      s,
		spec:   spec,
		opts:   opts,
		log:    opts.Logger.With("component", "forwarder.remote", "forward", "R "+spec.String()),
		ctx:    ctx,
		cancel: cancel,
		conns:  map[io.Closer]struct{}{},
		st:     RemoteStatus{Spec: spec, State: RemoteWaitingConn, Reason: "waiting for the ssh connection", Since: time.Now()},
	}
	f.release = s.hold()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.run()
	}()
	return f, nil
}

// Spec is the forward's spec.
func (f *RemoteForward) Spec() RemoteSpec { return f.spec }

// Status returns a snapshot of the forward's state.
func (f *RemoteForward) Status() RemoteStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

// Stats returns a snapshot of the forward's counters (BytesIn: from the
// server side to the target; BytesOut: back).
func (f *RemoteForward) Stats() StatsSnapshot { return f.stats.Snapshot() }

// RemoteAddr is the address a remote forward listens on, on the server.
type RemoteAddr struct {
	Host string // as asked for: "localhost", "*", an address
	Port int    // 0 while not listening
}

// Network is "tcp".
func (RemoteAddr) Network() string { return "tcp" }

// String is host:port.
func (a RemoteAddr) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// Addr is where the server listens (Port 0 while it does not); for a Unix
// socket forward, the socket's path on the server (a *net.UnixAddr).
func (f *RemoteForward) Addr() net.Addr {
	if f.spec.BindPath != "" {
		return &net.UnixAddr{Name: f.spec.BindPath, Net: "unix"}
	}
	st := f.Status()
	host := f.spec.BindAddress
	if host == "" {
		host = "localhost"
	}
	return RemoteAddr{Host: host, Port: st.Port}
}

// Close stops forwarding: it asks the server to stop listening (best
// effort), closes every forwarded connection and waits for the forward's
// goroutines. The Session is no longer held by this forward.
func (f *RemoteForward) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		f.wg.Wait()
		return nil
	}
	f.closed = true
	conns := make([]io.Closer, 0, len(f.conns))
	for c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	f.cancel()
	for _, c := range conns {
		_ = c.Close()
	}
	f.wg.Wait()
	f.release()
	f.setState(RemoteClosed, "closed", 0)
	return nil
}

// setState records a state change, logs it and calls OnChange.
func (f *RemoteForward) setState(st RemoteState, reason string, port int) {
	f.mu.Lock()
	if f.st.State == RemoteClosed || (f.st.State == st && f.st.Reason == reason && f.st.Port == port) {
		f.mu.Unlock()
		return
	}
	prev := f.st.State
	f.st.State, f.st.Reason, f.st.Since = st, reason, time.Now()
	f.st.Port = 0
	f.st.LoopbackOnly = false // inspect sets it again for a new listener
	var outage time.Duration
	switch {
	case st == RemoteListening:
		f.st.Port = port
		if !f.downSince.IsZero() {
			outage = time.Since(f.downSince)
			f.st.LastOutage = outage
			f.downSince = time.Time{}
		}
		f.everUp = true
	case prev == RemoteListening:
		f.downSince = time.Now()
	}
	snap := f.st
	f.mu.Unlock()

	switch st {
	case RemoteListening:
		attrs := []any{"server", f.spec.listenName(port), "target", f.spec.Target()}
		if outage > 0 {
			attrs = append(attrs, "outage", fmtDur(outage))
			f.log.Info("remote forward listening again after "+fmtDur(outage), attrs...)
		} else {
			f.log.Info("remote forward listening", attrs...)
		}
	case RemoteWaitingPort, RemoteRefused:
		f.log.Warn("remote forward: "+reason, "state", st)
	default:
		f.log.Debug("remote forward: "+reason, "state", st)
	}
	if f.opts.OnChange != nil {
		f.opts.OnChange(snap)
	}
}

func (f *RemoteForward) run() {
	var after uint64
	for {
		if f.ctx.Err() != nil {
			return
		}
		c, gen, dead, err := f.s.waitConn(f.ctx, after)
		if err != nil {
			return
		}
		after = gen
		f.serveConn(c, gen, dead)
		if f.ctx.Err() != nil {
			return
		}
		f.setState(RemoteWaitingConn, "the ssh connection was lost; waiting for a new one", 0)
	}
}

// serveConn requests the forward on connection gen and keeps it until the
// connection ends or the forward is closed.
func (f *RemoteForward) serveConn(c SSHClient, gen uint64, dead <-chan struct{}) {
	rc, ok := c.(remoteClient)
	if !ok {
		f.setState(RemoteRefused, ErrRemoteUnsupported.Error(), 0)
		f.wait(dead)
		return
	}
	mux := f.s.remoteMux()
	conn, err := mux.attach(f.s, rc, c, gen, dead)
	if err != nil {
		f.setState(RemoteRefused, err.Error(), 0)
		f.wait(dead)
		return
	}
	if f.spec.BindPath != "" {
		f.serveConnUnix(c, rc, conn, gen, dead)
		return
	}
	wire := f.spec.wireAddress()
	failures := 0
	reclaims := 0
	for {
		port := f.spec.BindPort
		f.mu.Lock()
		if port == 0 && f.allocated != 0 && failures == 0 {
			port = f.allocated // keep the same port across reconnects if the server lets us
		}
		f.mu.Unlock()
		f.setState(RemoteRequesting, "asking the server to listen on "+f.spec.listenName(port), 0)
		ok, got, err := f.request(c, gen, dead, wire, port)
		if err != nil {
			if f.ctx.Err() == nil {
				f.log.Debug("tcpip-forward request failed", "err", err)
			}
			f.wait(dead)
			return
		}
		if ok {
			if port == 0 && f.spec.BindPort == 0 {
				f.log.Info(fmt.Sprintf("Allocated port %d for remote forward to %s", got, f.spec.Target()))
			}
			if f.spec.BindPort == 0 {
				f.mu.Lock()
				f.allocated = got
				f.mu.Unlock()
			}
			conn.add(f, wire, got)
			f.setState(RemoteListening, "listening on "+f.spec.listenName(got)+" on the server", got)
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.inspect(c, gen, dead, got)
			}()
			f.wait(dead)
			conn.remove(f)
			if f.ctx.Err() != nil {
				f.cancelRemote(rc, dead, wire, got)
			}
			return
		}
		if port != 0 && f.spec.BindPort == 0 {
			// The port we had before is taken; any port will do.
			f.mu.Lock()
			f.allocated = 0
			f.mu.Unlock()
			failures++
			continue
		}
		failures++
		state, reason, retryNow := f.diagnose(c, gen, dead, port, &reclaims)
		if f.ctx.Err() != nil {
			return
		}
		if retryNow {
			continue
		}
		f.setState(state, reason, 0)
		delay := f.opts.Retry.Delay(failures, nil)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-dead:
			t.Stop()
			return
		case <-f.ctx.Done():
			t.Stop()
			return
		}
	}
}

// wait blocks until the connection ends or the forward is closed.
func (f *RemoteForward) wait(dead <-chan struct{}) {
	select {
	case <-dead:
	case <-f.ctx.Done():
	}
}

// request sends tcpip-forward and returns whether the server agreed and
// the port it listens on. A slow answer makes the Session verify the
// connection (which ends it if dead); it returns an error only when the
// connection ended or the forward was closed.
func (f *RemoteForward) request(c SSHClient, gen uint64, dead <-chan struct{}, addr string, port int) (bool, int, error) {
	payload := ssh.Marshal(&struct {
		Addr string
		Port uint32
	}{addr, uint32(port)})
	ok, reply, err := f.sendGlobal(c, gen, dead, "tcpip-forward", payload)
	if err != nil || !ok {
		return false, 0, err
	}
	if port != 0 {
		return true, port, nil
	}
	var p struct{ Port uint32 }
	if err := ssh.Unmarshal(reply, &p); err != nil || p.Port == 0 || p.Port > 65535 {
		return false, 0, fmt.Errorf("tcpip-forward: the server allocated no valid port (reply %x)", reply)
	}
	return true, int(p.Port), nil
}

// sendGlobal sends a global request (want-reply) and returns the answer.
// A slow answer makes the Session verify the connection; it returns an
// error only when the connection ended or the forward was closed.
func (f *RemoteForward) sendGlobal(c SSHClient, gen uint64, dead <-chan struct{}, name string, payload []byte) (bool, []byte, error) {
	rc := c.(remoteClient)
	type answer struct {
		ok    bool
		reply []byte
		err   error
	}
	res := make(chan answer, 1)
	if !f.s.spawn(func() {
		ok, reply, err := rc.SendRequest(name, true, payload)
		res <- answer{ok, reply, err}
	}) {
		return false, nil, ErrSessionClosed
	}
	stall := time.NewTimer(f.s.stallTimeout())
	defer stall.Stop()
	limit := time.NewTimer(f.opts.RequestTimeout)
	defer limit.Stop()
	for {
		select {
		case a := <-res:
			if a.err != nil {
				return false, nil, fmt.Errorf("%s: %w", name, a.err)
			}
			f.s.answered()
			return a.ok, a.reply, nil
		case <-stall.C:
			f.s.checkAlive(gen, "a remote forward request is unanswered")
		case <-limit.C:
			// Keep waiting: the answer (or the connection's end) will come,
			// and asking again before it does could race our own listener.
			f.s.MarkSuspect("a remote forward request was unanswered for " + fmtDur(f.opts.RequestTimeout))
			limit.Reset(f.opts.RequestTimeout)
		case <-dead:
			return false, nil, errConnLost
		case <-f.ctx.Done():
			return false, nil, f.ctx.Err()
		}
	}
}

// cancelRemote asks the server to stop listening (best effort, bounded).
func (f *RemoteForward) cancelRemote(rc remoteClient, dead <-chan struct{}, addr string, port int) {
	payload := ssh.Marshal(&struct {
		Addr string
		Port uint32
	}{addr, uint32(port)})
	f.sendCancel(rc, dead, "cancel-tcpip-forward", payload)
}

// sendCancel sends a cancel request and waits for its reply at most 2 s, or
// until the connection is dead.
func (f *RemoteForward) sendCancel(rc remoteClient, dead <-chan struct{}, name string, payload []byte) {
	done := make(chan struct{})
	if !f.s.spawn(func() {
		defer close(done)
		_, _, _ = rc.SendRequest(name, true, payload)
	}) {
		return
	}
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-dead:
	case <-t.C:
	}
}

// inspect learns, with one read-only command, the server's view of this
// connection's client address (so that a later connection can recognise
// this one's session if it goes stale) and whether the server bound only
// loopback when more was asked for.
func (f *RemoteForward) inspect(c SSHClient, gen uint64, dead <-chan struct{}, port int) {
	ctx, cancel := context.WithTimeout(f.ctx, 20*time.Second)
	defer cancel()
	out, err := f.s.runScript(ctx, c, dead, shellCommand(infoScript, procPort(port)))
	if err != nil {
		if f.ctx.Err() == nil {
			f.log.Debug("could not inspect the server side of the forward", "err", err)
		}
		return
	}
	si := parseInfo(out)
	defer f.inspected.Add(1)
	if si.peer.IsValid() {
		f.s.remoteMux().setPeer(gen, si.peer)
	}
	if !f.spec.wantsPublic() || len(si.listens) == 0 {
		return
	}
	for _, l := range si.listens {
		if !l.Addr().IsLoopback() {
			return
		}
	}
	f.mu.Lock()
	if f.st.State != RemoteListening || f.st.Port != port {
		f.mu.Unlock()
		return
	}
	f.st.LoopbackOnly = true
	asked := f.spec.BindAddress
	if asked == AllInterfaces {
		asked = "all interfaces"
	}
	f.st.Reason = fmt.Sprintf("listening on port %d of the server's loopback only, not on %s: its sshd_config has GatewayPorts no, so other machines cannot reach it", port, asked)
	snap := f.st
	f.mu.Unlock()
	f.log.Warn("remote forward: " + snap.Reason)
	if f.opts.OnChange != nil {
		f.opts.OnChange(snap)
	}
}

// diagnose looks at why the server refused port (one read-only command)
// and, when the stale session of this login's own previous connection
// holds it, ends that session. It returns the state to show and whether to
// ask again at once.
func (f *RemoteForward) diagnose(c SSHClient, gen uint64, dead <-chan struct{}, port int, reclaims *int) (RemoteState, string, bool) {
	name := f.spec.listenName(port)
	refused := fmt.Sprintf("the server refused to listen on %s: its sshd_config may have AllowTcpForwarding no/local or a PermitListen rule that does not allow it (or the port is privileged, or in use)", name)
	waitPrev := fmt.Sprintf("waiting for the server to release port %d (held by the previous connection)", port)
	mux := f.s.remoteMux()
	peers := mux.oldPeers(gen)
	ctx, cancel := context.WithTimeout(f.ctx, 20*time.Second)
	defer cancel()
	var want []string
	for _, p := range peers {
		want = append(want, procAddrs(p)...)
	}
	peerArg := strings.Join(want, ",")
	if peerArg == "" {
		peerArg = "-"
	}
	out, err := f.s.runScript(ctx, c, dead, shellCommand(findScript, procPort(port), peerArg))
	if err != nil {
		if f.ctx.Err() != nil {
			return RemoteRefused, refused, false
		}
		f.log.Debug("could not look at who holds the port on the server", "err", err)
		if len(peers) > 0 {
			return RemoteWaitingPort, waitPrev, false
		}
		return RemoteRefused, refused, false
	}
	h := parseHolders(out)
	if len(h.listen) == 0 {
		return RemoteRefused, fmt.Sprintf("the server refused to listen on %s: its sshd_config may have AllowTcpForwarding no/local or a PermitListen rule that does not allow it (or the port is privileged)", name), false
	}
	stale := h.stale()
	if len(stale) == 0 {
		if others := h.others(stale); len(others) > 0 {
			return RemoteWaitingPort, fmt.Sprintf("port %d is in use on the server by another program (%s); waiting for it to be free", port, strings.Join(others, ", ")), false
		}
		if len(peers) > 0 {
			return RemoteWaitingPort, waitPrev, false
		}
		return RemoteWaitingPort, fmt.Sprintf("port %d is in use on the server; waiting for it to be free", port), false
	}
	pids := make([]int, 0, len(stale))
	for pid := range stale {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	if f.spec.NoReclaim {
		f.log.Info("the sshd session of the previous connection still holds the port; not ending it (reclaim is off)", "port", port, "pids", pids)
		return RemoteWaitingPort, waitPrev, false
	}
	if *reclaims >= 3 {
		return RemoteWaitingPort, waitPrev + "; it did not go away when ended", false
	}
	*reclaims++
	ended := false
	for _, pid := range pids {
		ino := stale[pid]
		tenths := strconv.Itoa(int(f.opts.KillWait / (100 * time.Millisecond)))
		res, err := f.s.runScript(ctx, c, dead, shellCommand(killScript, strconv.Itoa(pid), ino, tenths))
		how := strings.TrimSpace(string(res))
		if err != nil {
			f.log.Warn("could not end the stale sshd session of the previous connection", "pid", pid, "port", port, "err", err)
			continue
		}
		ended = true
		f.mu.Lock()
		f.st.Reclaimed++
		f.mu.Unlock()
		switch how {
		case "gone":
			f.log.Info("the stale sshd session of the previous connection had already ended", "pid", pid, "port", port)
		case "kill":
			f.log.Warn(fmt.Sprintf("ended the stale sshd session (pid %d) of the previous connection, which still held port %d on the server (SIGKILL after SIGTERM)", pid, port))
		default:
			f.log.Warn(fmt.Sprintf("ended the stale sshd session (pid %d) of the previous connection, which still held port %d on the server", pid, port))
		}
	}
	if !ended {
		return RemoteWaitingPort, waitPrev, false
	}
	return RemoteRequesting, "", true
}

// handle forwards one connection the server accepted.
func (f *RemoteForward) handle(nc ssh.NewChannel, origin string) {
	f.stats.total.Add(1)
	start := time.Now()
	d := net.Dialer{Timeout: f.opts.DialTimeout}
	ctx, cancel := context.WithTimeout(f.ctx, f.opts.DialTimeout)
	network, addr := f.spec.targetNet()
	local, err := d.DialContext(ctx, network, addr)
	cancel()
	if err != nil {
		f.stats.failed.Add(1)
		f.stats.setErr(err)
		f.log.Info("remote forward: could not reach the target; closing the server's connection", "target", f.spec.Target(), "from", origin, "err", err)
		_ = nc.Reject(ssh.ConnectionFailed, "porthole could not connect to "+f.spec.Target()+": "+err.Error())
		return
	}
	f.stats.observeDial(time.Since(start))
	ch, reqs, err := nc.Accept()
	if err != nil {
		f.stats.failed.Add(1)
		f.stats.setErr(err)
		_ = local.Close()
		return
	}
	f.s.touch()
	f.wg.Add(1)
	go func() { // ends with the channel, which this function closes
		defer f.wg.Done()
		ssh.DiscardRequests(reqs)
	}()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		_ = ch.Close()
		_ = local.Close()
		return
	}
	f.conns[local] = struct{}{}
	f.conns[ch] = struct{}{}
	f.mu.Unlock()
	f.stats.active.Add(1)
	defer func() {
		f.stats.active.Add(-1)
		f.mu.Lock()
		delete(f.conns, local)
		delete(f.conns, ch)
		f.mu.Unlock()
	}()
	if tc, ok := local.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n, _ := io.Copy(local, touchReader{ch, f.s})
		f.stats.bytesIn.Add(uint64(n))
		_ = closeWrite(local)
	}()
	n, _ := io.Copy(ch, local)
	f.stats.bytesOut.Add(uint64(n))
	_ = ch.CloseWrite()
	<-done
	_ = ch.Close()
	_ = local.Close()
}

// touchReader counts data from the server as a sign of life, so that a
// busy connection is not pinged (where a keepalive could queue behind bulk
// data and time out).
type touchReader struct {
	r io.Reader
	s *Session
}

func (t touchReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.s.answered()
	}
	return n, err
}

// remoteMux routes the forwarded-tcpip channels of a Session's
// connections to their forwards, and remembers each connection's client
// address as the server saw it.
type remoteMux struct {
	mu    sync.Mutex
	conns map[uint64]*muxConn
	peers []genPeer // oldest first; at most maxPeers
}

type genPeer struct {
	gen  uint64
	peer netip.AddrPort
}

const maxPeers = 8

// muxConn is one connection's routing table.
type muxConn struct {
	mu     sync.Mutex
	routes map[*RemoteForward]route
	unix   bool // this connection's forwarded-streamlocal channels come here
}

type route struct {
	addr string
	port int
	path string // a Unix socket forward's path on the server
}

func (s *Session) remoteMux() *remoteMux {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rmux == nil {
		s.rmux = &remoteMux{conns: map[uint64]*muxConn{}}
	}
	return s.rmux
}

// attach returns the routing table of connection gen, taking over its
// forwarded-tcpip channels on first use.
func (m *remoteMux) attach(s *Session, rc remoteClient, c SSHClient, gen uint64, dead <-chan struct{}) (*muxConn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if mc := m.conns[gen]; mc != nil {
		return mc, nil
	}
	in := rc.HandleChannelOpen("forwarded-tcpip")
	if in == nil {
		return nil, fmt.Errorf("%w: something else handles its forwarded-tcpip channels", ErrRemoteUnsupported)
	}
	// Unix socket forwards' channels; nil when something else takes them
	// (then only those forwards fail).
	inUnix := rc.HandleChannelOpen(forwardedStreamlocal)
	mc := &muxConn{routes: map[*RemoteForward]route{}}
	m.conns[gen] = mc
	if la, ok := c.(interface{ LocalAddr() net.Addr }); ok {
		if ta, ok := la.LocalAddr().(*net.TCPAddr); ok {
			if ap := ta.AddrPort(); ap.IsValid() && ap.Port() != 0 {
				m.setPeerLocked(gen, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
			}
		}
	}
	route := func() {
		for nc := range in {
			mc.dispatch(nc)
		}
		m.mu.Lock()
		delete(m.conns, gen)
		m.mu.Unlock()
	}
	if !s.spawn(route) {
		go route() // the Session is closing; the channel closes with the connection
	}
	if inUnix != nil {
		mc.unix = true
		routeUnix := func() {
			for nc := range inUnix {
				mc.dispatchUnix(nc)
			}
		}
		if !s.spawn(routeUnix) {
			go routeUnix()
		}
	}
	return mc, nil
}

func (mc *muxConn) add(f *RemoteForward, addr string, port int) {
	mc.mu.Lock()
	mc.routes[f] = route{addr: addr, port: port}
	mc.mu.Unlock()
}

func (mc *muxConn) remove(f *RemoteForward) {
	mc.mu.Lock()
	delete(mc.routes, f)
	mc.mu.Unlock()
}

// dispatch hands a forwarded-tcpip channel to the forward listening on its
// port (and address, when two forwards share a port), or rejects it.
func (mc *muxConn) dispatch(nc ssh.NewChannel) {
	var p struct {
		Addr       string
		Port       uint32
		OriginAddr string
		OriginPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, "could not parse the forwarded-tcpip payload")
		return
	}
	mc.mu.Lock()
	var match *RemoteForward
	n := 0
	for f, r := range mc.routes {
		if r.path != "" || r.port != int(p.Port) {
			continue
		}
		n++
		if match == nil || r.addr == p.Addr {
			match = f
		}
	}
	mc.mu.Unlock()
	if match == nil {
		_ = nc.Reject(ssh.Prohibited, "no forward for this address")
		return
	}
	origin := net.JoinHostPort(p.OriginAddr, strconv.Itoa(int(p.OriginPort)))
	match.serve(nc, origin)
}

// serve hands nc to f's handler unless f is closing.
func (f *RemoteForward) serve(nc ssh.NewChannel, origin string) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		_ = nc.Reject(ssh.Prohibited, "the forward is closing")
		return
	}
	f.wg.Add(1)
	f.mu.Unlock()
	go func() {
		defer f.wg.Done()
		f.handle(nc, origin)
	}()
}

func (m *remoteMux) setPeer(gen uint64, p netip.AddrPort) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setPeerLocked(gen, p)
}

func (m *remoteMux) setPeerLocked(gen uint64, p netip.AddrPort) {
	for i := range m.peers {
		if m.peers[i].gen == gen {
			m.peers[i].peer = p
			return
		}
	}
	m.peers = append(m.peers, genPeer{gen: gen, peer: p})
	if len(m.peers) > maxPeers {
		m.peers = m.peers[len(m.peers)-maxPeers:]
	}
}

// oldPeers are the client addresses of the connections before gen.
func (m *remoteMux) oldPeers(gen uint64) []netip.AddrPort {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []netip.AddrPort
	for _, p := range m.peers {
		if p.gen < gen {
			out = append(out, p.peer)
		}
	}
	return out
}
