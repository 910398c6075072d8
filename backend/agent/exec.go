package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole-app/porthole/backend/forwarder"
)

// maxStderr is how much of a command's stderr is kept for ExecError.
const maxStderr = 4096

// execOutcome is what one exec produced.
type execOutcome struct {
	Stdout    []byte `json:"stdout"`
	Status    int    `json:"status"` // -1: no exit status was sent
	Signal    string `json:"signal,omitempty"`
	Stderr    string `json:"stderr,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
}

// err turns a finished command into Exec's error.
func (o execOutcome) err() error {
	if o.Truncated {
		return fmt.Errorf("%w: more than %d bytes on stdout", ErrOutputTooLarge, len(o.Stdout))
	}
	if o.Signal != "" || o.Status > 0 {
		status := o.Status
		if o.Signal != "" {
			status = -1
		}
		return &ExecError{Status: status, Signal: o.Signal, Stderr: o.Stderr}
	}
	return nil
}

// Exec implements Login.
func (l *LocalLogin) Exec(ctx context.Context, cmd string) ([]byte, error) {
	o, err := l.exec(ctx, cmd, MaxExecOutput)
	if err != nil {
		return o.Stdout, err
	}
	return o.Stdout, o.err()
}

func (l *LocalLogin) exec(ctx context.Context, cmd string, limit int) (execOutcome, error) {
	if limit <= 0 || limit > MaxExecOutput {
		limit = MaxExecOutput
	}
	for attempt := 0; ; attempt++ {
		s, err := l.session()
		if err != nil {
			return execOutcome{}, err
		}
		if err := l.connectNow(ctx, false); err != nil {
			return execOutcome{}, fmt.Errorf("run a command on %s: %w", l.spec.DisplayName(), err)
		}
		l.mu.Lock()
		c := l.client
		l.mu.Unlock()
		if c == nil {
			if attempt == 0 {
				continue
			}
			return execOutcome{}, fmt.Errorf("run a command on %s: %w: no connection", l.spec.DisplayName(), forwarder.ErrUnavailable)
		}
		ch, reqs, err := l.openSession(ctx, s, c)
		if err != nil {
			var oce *ssh.OpenChannelError
			if errors.As(err, &oce) {
				return execOutcome{}, fmt.Errorf("%w: %s: %v", ErrExecRefused, l.spec.DisplayName(), err)
			}
			if ctx.Err() == nil && attempt == 0 {
				s.MarkSuspect(fmt.Sprintf("opening a session channel failed: %v", err))
				continue
			}
			return execOutcome{}, fmt.Errorf("run a command on %s: %w", l.spec.DisplayName(), err)
		}
		return l.runExec(ctx, ch, reqs, cmd, limit)
	}
}

// openSession opens a "session" channel, giving up when ctx ends (an open
// on a dead connection would block until the Session notices).
func (l *LocalLogin) openSession(ctx context.Context, s *forwarder.Session, c forwarder.SSHClient) (ssh.Channel, <-chan *ssh.Request, error) {
	type result struct {
		ch   ssh.Channel
		reqs <-chan *ssh.Request
		err  error
	}
	done := make(chan result, 1)
	if !l.spawn(func() {
		ch, reqs, err := c.OpenChannel("session", nil)
		done <- result{ch, reqs, err}
	}) {
		return nil, nil, fmt.Errorf("%w: %s", ErrClosed, l.spec.DisplayName())
	}
	select {
	case r := <-done:
		return r.ch, r.reqs, r.err
	case <-ctx.Done():
		s.MarkSuspect("opening a session channel took too long")
		if !l.spawn(func() {
			if r := <-done; r.err == nil {
				_ = r.ch.Close()
				ssh.DiscardRequests(r.reqs)
			}
		}) {
			go func() { // the login is closing, and its connection with it
				if r := <-done; r.err == nil {
					_ = r.ch.Close()
					ssh.DiscardRequests(r.reqs)
				}
			}()
		}
		return nil, nil, fmt.Errorf("opening a session channel: %w", ctx.Err())
	}
}

type exitStatusMsg struct{ Status uint32 }

type exitSignalMsg struct {
	Signal     string
	CoreDumped bool
	Error      string
	Lang       string
}

// runExec runs cmd on an open session channel. The exchange runs in a
// goroutine of the login: an SSH request on a dead connection blocks until
// the Session notices, and ctx must not wait for that.
func (l *LocalLogin) runExec(ctx context.Context, ch ssh.Channel, reqs <-chan *ssh.Request, cmd string, limit int) (execOutcome, error) {
	type result struct {
		out execOutcome
		err error
	}
	done := make(chan result, 1)
	if !l.spawn(func() {
		out, err := execOn(ch, reqs, cmd, limit)
		done <- result{out, err}
	}) {
		_ = ch.Close()
		go ssh.DiscardRequests(reqs)
		return execOutcome{}, fmt.Errorf("%w: %s", ErrClosed, l.spec.DisplayName())
	}
	select {
	case r := <-done:
		if r.err != nil {
			return r.out, fmt.Errorf("run a command on %s: %w", l.spec.DisplayName(), r.err)
		}
		return r.out, nil
	case <-ctx.Done():
		_ = ch.Close() // the server ends the command; the goroutine ends with the channel
		return execOutcome{Status: -1}, fmt.Errorf("run a command on %s: %w", l.spec.DisplayName(), ctx.Err())
	}
}

// execOn sends the exec request and collects stdout (up to limit), the start
// of stderr and the exit status. It returns when the channel is closed.
func execOn(ch ssh.Channel, reqs <-chan *ssh.Request, cmd string, limit int) (execOutcome, error) {
	defer ch.Close()
	out := execOutcome{Status: -1}
	reqDone := make(chan struct{})
	status, signal := -1, ""
	go func() { // ends when the channel is closed
		defer close(reqDone)
		for r := range reqs {
			switch r.Type {
			case "exit-status":
				var m exitStatusMsg
				if ssh.Unmarshal(r.Payload, &m) == nil {
					status = int(m.Status)
				}
			case "exit-signal":
				var m exitSignalMsg
				if ssh.Unmarshal(r.Payload, &m) == nil {
					signal = m.Signal
				}
			}
			if r.WantReply {
				_ = r.Reply(false, nil)
			}
		}
	}()
	ok, err := ch.SendRequest("exec", true, ssh.Marshal(struct{ Command string }{cmd}))
	if err != nil || !ok {
		_ = ch.Close()
		<-reqDone
		if err != nil {
			return out, err
		}
		return out, fmt.Errorf("%w: the exec request was refused", ErrExecRefused)
	}

	stderrDone := make(chan struct{})
	var stderr bytes.Buffer
	go func() { // ends at the channel's EOF or close
		defer close(stderrDone)
		_, _ = io.Copy(&stderr, io.LimitReader(ch.Stderr(), maxStderr))
		_, _ = io.Copy(io.Discard, ch.Stderr())
	}()
	stdout, rerr := io.ReadAll(io.LimitReader(ch, int64(limit)+1))
	if len(stdout) > limit {
		out.Stdout, out.Truncated = stdout[:limit], true
		_ = ch.Close() // stop the command: nobody reads the rest
	} else {
		out.Stdout = stdout
	}
	<-stderrDone
	// The exit status comes before the server closes the channel.
	<-reqDone
	out.Stderr = stderr.String()
	out.Status, out.Signal = status, signal
	if rerr != nil {
		return out, fmt.Errorf("reading its output: %w", rerr)
	}
	return out, nil
}

// Probe implements Login.
func (l *LocalLogin) Probe(ctx context.Context, host string, port int, request []byte, limit int) ([]byte, error) {
	limit = min(limit, MaxProbeSize)
	// A probe is not demand: its connection says nothing about the next one,
	// so the pool neither counts it nor pre-opens for it.
	conn, err := l.Dial(forwarder.OneShot(ctx), host, port)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w: %w", net.JoinHostPort(host, itoa(port)), ErrProbeConnect, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	defer conn.Close()
	if len(request) > 0 {
		if _, err := conn.Write(request); err != nil {
			// Servers that speak first may have closed already; what they
			// sent is still worth reading.
			l.log.Debug("probe: writing the request failed", "err", err)
		}
	}
	if limit <= 0 {
		return nil, nil
	}

	type chunk struct {
		b   []byte
		err error
	}
	chunks := make(chan chunk)
	quit := make(chan struct{})
	defer close(quit)
	read := func() {
		for {
			buf := make([]byte, 16<<10)
			n, err := conn.Read(buf)
			select {
			case chunks <- chunk{buf[:n], err}:
			case <-quit:
				return
			}
			if err != nil {
				return
			}
		}
	}
	if !l.spawn(read) {
		return nil, fmt.Errorf("%w: %s", ErrClosed, l.spec.DisplayName())
	}
	var got []byte
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	defer quiet.Stop()
	for {
		select {
		case c := <-chunks:
			got = append(got, c.b...)
			if len(got) >= limit {
				return got[:limit], nil
			}
			if c.err != nil {
				if errors.Is(c.err, io.EOF) || len(got) > 0 {
					return got, nil
				}
				return got, fmt.Errorf("probe %s: %w", net.JoinHostPort(host, itoa(port)), c.err)
			}
			if len(got) > 0 {
				quiet.Reset(ProbeQuiet)
			}
		case <-quiet.C:
			return got, nil
		case <-ctx.Done():
			return got, fmt.Errorf("probe %s: %w", net.JoinHostPort(host, itoa(port)), ctx.Err())
		}
	}
}
