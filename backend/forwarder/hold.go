package forwarder

import (
	"context"
	"time"
)

// hold keeps the Session connected for a remote forward until release is
// called: the connection is never closed for idleness, a lost one is
// replaced in the background for as long as the hold lasts (until a
// permanent error), and a quiet connection is pinged every
// KeepaliveInterval. A hold does not make the first connection (Connect or
// Dial does), but it reconnects a Session that was connected before.
func (s *Session) hold() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return func() {}
	}
	s.holds++
	s.stopIdleLocked()
	if !s.holdLoop {
		s.holdLoop = true
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.keepalive()
		}()
	}
	s.reconnectHeldLocked()
	released := false
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if released {
			return
		}
		released = true
		s.holds--
		if s.holds == 0 {
			s.armIdleLocked()
		}
	}
}

// reconnectHeldLocked starts a background connect when the held Session
// has no connection and no attempt in progress, once it was connected
// before and its last failure was not permanent.
func (s *Session) reconnectHeldLocked() {
	if s.closed || s.holds == 0 || s.client != nil || s.flight != nil || s.gen == 0 {
		return
	}
	if s.lastErr != nil && isPermanent(s.lastErr) {
		return
	}
	if s.downSince.IsZero() {
		s.downSince = time.Now()
	}
	s.startFlightLocked(flightConnect, false)
}

// keepalive pings a held Session's quiet connection every
// KeepaliveInterval and restarts reconnecting if it stopped.
func (s *Session) keepalive() {
	every := s.opts.KeepaliveInterval
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		if s.holds > 0 {
			quiet := time.Duration(s.mono()-s.lastAlive.Load()) >= every
			switch {
			case s.client != nil && s.flight == nil && quiet:
				s.suspect = true
				s.startFlightLocked(flightVerify, true)
			case s.client == nil:
				s.reconnectHeldLocked()
			}
		}
		s.mu.Unlock()
	}
}

// waitConn returns the first connection newer than generation after,
// waiting for one until ctx ends. The returned channel is closed when that
// connection ends.
func (s *Session) waitConn(ctx context.Context, after uint64) (SSHClient, uint64, <-chan struct{}, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, 0, nil, ErrSessionClosed
		}
		if s.client != nil && s.gen > after {
			if dead, ok := s.dead[s.gen]; ok {
				c, g := s.client, s.gen
				s.mu.Unlock()
				return c, g, dead, nil
			}
		}
		if s.connReady == nil {
			s.connReady = make(chan struct{})
		}
		ready := s.connReady
		s.mu.Unlock()
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, 0, nil, ctx.Err()
		case <-s.ctx.Done():
			return nil, 0, nil, ErrSessionClosed
		}
	}
}
