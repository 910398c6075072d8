package agent

import (
	"context"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
)

// Prewarmer is implemented by the logins that can dial speculatively
// (LocalLogin, RemoteLogin). The app calls it when the user is about to use
// a connected server (its page opened, an Open button hovered, a saved tab
// restored) so that the first request finds the SSH connection up.
type Prewarmer interface {
	// Prewarm starts, in the background, a connection for a session that
	// has none (it closed when unused, or was lost while unused). It never
	// asks the user anything: a dial that would need a password, an answer
	// or a host-key decision the login's secrets cannot give is dropped
	// quietly. It returns at once; at most one such dial runs at a time, and
	// a call while one runs, or while the session is connected or
	// connecting, does nothing.
	Prewarm(ctx context.Context) error
}

var (
	_ Prewarmer = (*LocalLogin)(nil)
	_ Prewarmer = (*RemoteLogin)(nil)
)

// Prewarm implements Prewarmer.
func (l *LocalLogin) Prewarm(context.Context) error {
	s, err := l.session()
	if err != nil {
		return err
	}
	if !l.warmable.Load() || !s.Wants() || !l.warming.CompareAndSwap(false, true) {
		return nil // not connected since the last Disconnect, already up or on its way, or a warm dial runs
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.warming.Store(false)
		return nil
	}
	l.wg.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.wg.Done()
		defer l.warming.Store(false)
		l.prewarm(s)
	}()
	return nil
}

// prewarm dials without a prompter and hands the connection to s, unless s
// got one meanwhile (or was replaced by a Disconnect or closed).
func (l *LocalLogin) prewarm(s *forwarder.Session) {
	ctx, cancel := context.WithTimeout(l.ctx, l.spec.Session.connectTimeout())
	defer cancel()
	start := time.Now()
	c, _, err := l.dialWith(ctx, nil, nil)
	if err != nil {
		l.log.Debug("speculative connect dropped", "err", err)
		return
	}
	l.mu.Lock()
	current := l.sess == s && !l.closed
	l.mu.Unlock()
	if !current || !s.Adopt(c, time.Since(start)) {
		_ = c.Close()
		return
	}
	l.mu.Lock()
	if l.sess == s {
		l.client = c
	}
	l.mu.Unlock()
	l.log.Debug("speculative connect done", "took", time.Since(start).Round(time.Millisecond).String())
}

// Prewarm implements Prewarmer: the agent runs LocalLogin.Prewarm.
func (l *RemoteLogin) Prewarm(ctx context.Context) error {
	return l.call(ctx, methodPrewarm, nil, nil, 0)
}
