package forwarder

import (
	"context"
	"errors"
	"time"
)

// Connect makes sure the Session has a live SSH connection now, dialing (or
// verifying a suspect one) if needed, without opening a channel. Callers that
// want errors early, like `porthole forward` at start (as ssh does), use it;
// everything else relies on Dial's lazy connect. The connection is still
// closed after IdleTimeout without channels and redialed on demand.
//
// A new connection counts only once it proved it serves the login (a
// keepalive answered): a server that accepts the login and closes the
// connection at once is redialed with backoff, and after EarlyDeathLimit
// such logins Connect fails with ErrDropsAfterLogin. Connect tries at once
// even while the Session keeps Dials off such a server.
func (s *Session) Connect(ctx context.Context) error {
	s.mu.Lock()
	s.liftDropLocked()
	s.mu.Unlock()
	for i := 0; ; i++ {
		c, gen, err := s.acquire(ctx)
		if err != nil {
			return err
		}
		err = s.confirm(ctx, c, gen)
		if err == nil || !errors.Is(err, errEarlyDeath) || i > EarlyDeathLimit {
			return err
		}
	}
}

// Adopt makes c, a connection dialed outside the Session (a speculative,
// prompt-free dial such as agent.LocalLogin.Prewarm), the Session's
// connection — only when the Session has none and is not connecting or
// verifying one; then it is used like any other and closed after
// IdleTimeout without channels. It reports whether c was adopted; when not,
// the caller still owns c and must close it.
func (s *Session) Adopt(c SSHClient, took time.Duration) bool {
	if c == nil {
		return false
	}
	s.mu.Lock()
	if s.closed || s.client != nil || s.flight != nil || s.droppedLocked() != nil {
		s.mu.Unlock()
		return false
	}
	s.installLocked(c, took)
	s.mu.Unlock()
	s.pool.kick()
	return true
}

// Wants reports whether a speculative dial is worth it: the Session is open,
// has no connection and is not making or checking one.
func (s *Session) Wants() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closed && s.client == nil && s.flight == nil
}
