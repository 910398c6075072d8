package forwarder

import "context"

// Connect makes sure the Session has a live SSH connection now, dialing (or
// verifying a suspect one) if needed, without opening a channel. Callers that
// want errors early, like `porthole forward` at start (as ssh does), use it;
// everything else relies on Dial's lazy connect. The connection is still
// closed after IdleTimeout without channels and redialed on demand.
func (s *Session) Connect(ctx context.Context) error {
	_, _, err := s.acquire(ctx)
	return err
}
