package forwarder

import (
	"context"
	"errors"
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
