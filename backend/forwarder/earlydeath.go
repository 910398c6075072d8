package forwarder

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// ErrDropsAfterLogin: the server accepted the login and then closed the
// connection before it carried anything, EarlyDeathLimit times in a row.
// OpenSSH's sshd does that when the user's ChrootDirectory is missing or
// has bad permissions (sshd logs "safely_chroot: …" and exits); redialing
// cannot help until the server is fixed. Errors that wrap it are permanent.
var ErrDropsAfterLogin = errors.New("the server closes the connection right after login; its sshd_config may have a ChrootDirectory or ForceCommand problem")

// EarlyDeathLimit is how many fresh connections in a row may die before
// carrying anything until the Session gives up (StateFailed with
// ErrDropsAfterLogin). Three logins tell a server that drops every login
// from a network that happened to drop one or two.
const EarlyDeathLimit = 3

// earlyLife: a connection that ends sooner than this after the login, with
// nothing carried (no channel opened, no keepalive answered), died early.
const earlyLife = 10 * time.Second

// dropCooldown spaces the logins after the Session gave up: the k-th give-up
// keeps Dials failing at once (with ErrDropsAfterLogin) for about
// dropCooldown.Delay(k); then the next demand may try one login. Connect (a
// person asking) always tries at once.
var dropCooldown = Backoff{Initial: 30 * time.Second, Max: 10 * time.Minute, Multiplier: 2, Jitter: 0.2}

// dropsError is ErrDropsAfterLogin with the count and the last connection's
// own error. It is permanent: holds and background reconnects stop.
type dropsError struct {
	deaths int
	last   error
}

func (e *dropsError) Error() string {
	return fmt.Sprintf("%s (%d logins in a row were accepted and then closed before carrying anything; last: %v)", ErrDropsAfterLogin, e.deaths, e.last)
}

func (e *dropsError) Unwrap() []error { return []error{ErrDropsAfterLogin, ErrPermanent, e.last} }

// errEarlyDeath marks a new connection that died right after the login
// (before the limit): the Session redials after a backoff.
var errEarlyDeath = errors.New("the server closed the connection right after login")

// earlyDeaths tracks the current connection's youth and the run of
// connections that died before carrying anything (under Session.mu).
type earlyDeaths struct {
	gen         uint64 // the connection installedAt and proven are about
	installedAt int64  // Session.mono() at install
	proven      bool   // it answered a probation ping before install
	probed      bool   // the connection being installed passed probation
	deaths      int    // consecutive early deaths
	giveUps     int    // consecutive give-ups (for dropCooldown)
	dropUntil   time.Time
	dropErr     error // set while given up
}

// noteInstalledLocked records that connection gen was installed now.
func (s *Session) noteInstalledLocked(gen uint64) {
	e := &s.early
	e.gen, e.installedAt, e.proven, e.probed = gen, s.lastAlive.Load(), e.probed, false
	if e.proven {
		e.reset()
	}
}

func (e *earlyDeaths) reset() {
	e.deaths, e.giveUps, e.dropUntil, e.dropErr = 0, 0, time.Time{}, nil
}

// carriedLocked: connection gen showed a sign of life after its login.
func (s *Session) carriedLocked(gen uint64) bool {
	e := &s.early
	return e.gen != gen || e.proven || s.lastAlive.Load() > e.installedAt
}

// noteLossLocked accounts for the loss of connection gen (the current one)
// for why. early: it died right after the login, so the Session redials in
// the background after a backoff (already set in nextTry). drop: the run
// reached EarlyDeathLimit and the Session gives up (the error to report).
func (s *Session) noteLossLocked(gen uint64, why error) (early bool, drop error) {
	e := &s.early
	if s.carriedLocked(gen) || time.Duration(s.mono()-e.installedAt) > earlyLife || ownEnd(why) {
		if s.carriedLocked(gen) {
			e.reset()
		}
		return false, nil
	}
	return true, s.earlyDeathLocked(why)
}

// ownEnd: the connection ended because this side gave up on it (a keepalive
// timed out and closed it: its Wait then reports net.ErrClosed), not
// because the server closed it.
func ownEnd(why error) bool {
	return errors.Is(why, ErrPingTimeout) || errors.Is(why, net.ErrClosed) ||
		errors.Is(why, context.Canceled) || errors.Is(why, context.DeadlineExceeded)
}

// earlyDeathLocked counts one early death. Below the limit it sets the
// backoff before the next login and returns nil; at the limit the Session
// gives up and it returns the permanent error.
func (s *Session) earlyDeathLocked(why error) error {
	e := &s.early
	e.deaths++
	s.log.Info("the server closed the connection right after login", "in_a_row", e.deaths, "err", why)
	if e.deaths < EarlyDeathLimit {
		s.nextTry = time.Now().Add(s.opts.Backoff.Delay(e.deaths, nil))
		return nil
	}
	e.giveUps++
	e.dropUntil = time.Now().Add(dropCooldown.Delay(e.giveUps, nil))
	e.dropErr = &dropsError{deaths: e.deaths, last: why}
	s.lastErr = e.dropErr
	return e.dropErr
}

// droppedLocked returns the give-up error while its cooldown lasts: no
// login is tried meanwhile (Connect lifts it).
func (s *Session) droppedLocked() error {
	e := &s.early
	if e.dropErr == nil || !time.Now().Before(e.dropUntil) {
		return nil
	}
	return e.dropErr
}

// probation pings a new connection before it is installed when the last
// one died right after its login, so that a server that drops every login
// is not shown as "reconnected" each time. It returns nil when no probation
// is due or the server answered; otherwise c is closed and the error says
// whether to retry (errEarlyDeath) or give up (permanent).
func (s *Session) probation(c SSHClient) error {
	s.mu.Lock()
	due := s.early.deaths > 0
	s.mu.Unlock()
	if !due {
		return nil
	}
	rtt, err := c.Ping(s.ctx, s.pingTimeout())
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.noteRTT(rtt)
		s.early.probed = true
		return nil
	}
	_ = c.Close()
	if ownEnd(err) {
		return fmt.Errorf("the new connection did not answer a keepalive: %w", err)
	}
	if drop := s.earlyDeathLocked(err); drop != nil {
		return drop
	}
	return fmt.Errorf("%w (%d in a row): %w", errEarlyDeath, s.early.deaths, err)
}

// liftDropLocked lets the next connect try at once (a person asked).
func (s *Session) liftDropLocked() {
	s.early.dropUntil = time.Time{}
	if s.early.dropErr != nil {
		s.nextTry = time.Time{}
	}
}

// confirm waits until connection gen proved it serves this login (a
// keepalive answered), unless it already did. It returns nil when it did,
// errEarlyDeath when the connection ended (the caller acquires the next
// one), or ctx's error.
func (s *Session) confirm(ctx context.Context, c SSHClient, gen uint64) error {
	s.mu.Lock()
	carried := s.carriedLocked(gen)
	s.mu.Unlock()
	if carried {
		return nil
	}
	rtt, err := c.Ping(ctx, s.pingTimeout())
	if err == nil {
		s.noteRTT(rtt)
		s.answered()
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.lose(gen, fmt.Errorf("keepalive after login failed: %w", err))
	return errEarlyDeath
}
