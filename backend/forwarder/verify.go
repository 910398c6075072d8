package forwarder

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// A dead path is found in round trips, not seconds.
//
// Every channel open and every wait for a reply after data was written races
// the RTT-scaled deadline (stallTimeout: max(4×sRTT, MinStallTimeout), capped
// at MaxStallTimeout). When it passes, the Session verifies its connection:
// it pings it and dials a fresh connection, at once for an open (nothing was
// sent, and an open is answered in one round trip), otherwise when the ping
// is still unanswered after another deadline (a slow backend is not a dead
// path, and every dial is a login on the server). A suspect connection (after
// a wake or a network change) is verified the same way before its next use,
// or at once when it carries traffic. The first to prove alive wins:
//
//   - the ping answers first: the speculative dial is abandoned (a server
//     that accepts TCP but never speaks SSH costs nothing more) and the
//     connection stays;
//   - the dial completes first: the new connection takes all new work;
//     opens still waiting on the old one move to it (nothing was sent on
//     them). The old one is kept until its ping's verdict: no answer closes
//     it, failing the channels whose bytes went into it (never send twice);
//     an answer lets it live until its last handed-out channel is closed.
//
// At most one replaced connection is kept, so a login has at most two SSH
// connections; while one is kept, a verification only pings.

// scaledDeadline is max(4×rtt, floor) capped at ceil; ceil when the RTT is
// not known yet.
func scaledDeadline(rtt, floor, ceil time.Duration) time.Duration {
	if rtt <= 0 {
		return ceil
	}
	return min(max(4*rtt, floor), ceil)
}

// oldConn is a connection a speculative dial replaced.
type oldConn struct {
	client SSHClient
	alive  bool // its ping answered after it was replaced: close when drained
}

// specCounters count speculative dials (for logs and tests).
type specCounters struct {
	started   atomic.Uint64 // dials started by a verification
	won       atomic.Uint64 // dials that replaced the connection
	abandoned atomic.Uint64 // dials given up because the ping answered first
}

// checkAliveNow is checkAlive for a channel open: the fresh dial starts
// with the ping, not after it.
func (s *Session) checkAliveNow(gen uint64, reason string) { s.verifyConn(gen, reason, true) }

// verifyConn starts a quiet verification of connection gen because
// something on it looked stuck; now makes it dial at once (and hurries a
// verification already in flight). New Dials wait for the verdict. It does
// nothing when the connection showed a sign of life very recently.
func (s *Session) verifyConn(gen uint64, reason string, now bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.client == nil || s.gen != gen {
		return
	}
	if f := s.flight; f != nil {
		if now {
			f.hurryOnce.Do(func() { close(f.hurry) })
		}
		return
	}
	if time.Duration(s.mono()-s.lastAlive.Load()) < s.stallTimeout()/2 {
		return
	}
	s.log.Debug("verifying the ssh connection", "reason", reason, "dialNow", now)
	s.suspect = true
	f := s.startFlightLocked(flightVerify, true)
	if now {
		f.hurryOnce.Do(func() { close(f.hurry) })
	}
}

// movedFrom returns a channel that is closed when a newer connection is
// installed, or nil when gen is no longer the current connection.
func (s *Session) movedFrom(gen uint64) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil || s.gen != gen {
		return nil
	}
	if s.connReady == nil {
		s.connReady = make(chan struct{})
	}
	return s.connReady
}

type pingResult struct {
	rtt time.Duration
	err error
}

type dialResult struct {
	c    SSHClient
	err  error
	took time.Duration
}

// verifyRace is the verification flight f of connection gen (client): a
// ping, raced against a speculative dial that starts after f.dialAfter (or
// when f.hurry is closed). It returns once both have ended; f is finished as
// soon as one proved alive (or handed to connectLoop when neither did).
func (s *Session) verifyRace(f *flight, client SSHClient, gen uint64) {
	pingc := make(chan pingResult, 1)
	go func() { // ends within pingTimeout or when the Session closes; received below
		rtt, err := client.Ping(s.ctx, s.pingTimeout())
		pingc <- pingResult{rtt, err}
	}()
	dctx, dcancel := context.WithCancel(s.ctx)
	defer dcancel()
	timer := time.NewTimer(f.dialAfter)
	defer timer.Stop()
	timerC, hurry := timer.C, f.hurry
	var dialc chan dialResult
	resolved := false // f is finished
	replaced := false // the dial won: client is kept in s.olds
	startDial := func() {
		timerC, hurry = nil, nil
		if dialc != nil || resolved || !s.maySpeculate(gen) {
			return
		}
		dialc = make(chan dialResult, 1)
		s.spec.started.Add(1)
		s.log.Debug("the ssh connection did not answer in time; dialing a fresh one while pinging it", "after", fmtDur(f.dialAfter))
		go func() { // ends within ConnectTimeout or when dctx is canceled; received below
			cctx, cancel := context.WithTimeout(dctx, s.opts.ConnectTimeout)
			defer cancel()
			start := time.Now()
			c, err := s.connector.Connect(cctx)
			if err == nil && c == nil {
				err = errors.New("connector returned no client and no error")
			}
			dialc <- dialResult{c: c, err: err, took: time.Since(start)}
		}()
	}
	for pingc != nil || dialc != nil {
		select {
		case <-timerC:
			startDial()
		case <-hurry:
			startDial()
		case r := <-pingc:
			pingc, timerC, hurry = nil, nil, nil
			switch {
			case r.err == nil && replaced:
				s.noteRTT(r.rtt)
				s.oldAnswered(gen)
			case r.err == nil:
				dcancel() // the connection is alive: the speculative dial is not needed
				s.noteRTT(r.rtt)
				s.answered()
				s.pingAnswered(f, gen, r.rtt)
				resolved = true
			case replaced:
				s.dropOld(gen, r.err)
			default:
				s.log.Info("ssh keepalive failed; replacing the connection", "err", r.err)
				s.lose(gen, fmt.Errorf("keepalive failed: %w", r.err))
				if dialc == nil {
					s.connectLoop(f)
					return
				}
			}
		case r := <-dialc:
			dialc = nil
			switch {
			case resolved:
				// The ping answered first: give the dial up (it was
				// canceled, or it completed just before).
				s.spec.abandoned.Add(1)
				if r.c != nil {
					_ = r.c.Close()
				}
			case r.err != nil && pingc != nil:
				s.log.Debug("speculative dial failed; waiting for the ping", "err", r.err)
			case r.err != nil:
				// The ping failed too: reconnect the usual way.
				s.log.Info("speculative dial failed", "err", r.err)
				s.connectLoop(f)
				return
			default:
				replaced = s.installSpeculative(f, client, gen, r)
				resolved = true
			}
		}
	}
	if dialc == nil && !resolved {
		// Unreachable: every path above resolves f or hands it on.
		s.connectLoop(f)
	}
}

// maySpeculate: a speculative dial for connection gen may start now.
func (s *Session) maySpeculate(gen uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closed && s.client != nil && s.gen == gen && len(s.olds) == 0 && !time.Now().Before(s.nextTry)
}

// pingAnswered finishes verification f: connection gen is alive.
func (s *Session) pingAnswered(f *flight, gen uint64, rtt time.Duration) {
	s.mu.Lock()
	if s.gen == gen && s.client != nil {
		s.suspect = false
		if !f.quiet || s.state != StateReady {
			s.setStateLocked(Event{State: StateReady, Reason: "keepalive answered in " + fmtDur(rtt)})
		}
	}
	s.finishFlightLocked(f, nil)
	s.mu.Unlock()
	s.pool.kick()
}

// installSpeculative makes the speculative dial's connection the current
// one and finishes f. If old (gen) is still current, it is kept in s.olds
// until its ping's verdict; it reports whether it was.
func (s *Session) installSpeculative(f *flight, old SSHClient, gen uint64, r dialResult) bool {
	s.mu.Lock()
	if s.closed {
		s.finishFlightLocked(f, ErrSessionClosed)
		s.mu.Unlock()
		_ = r.c.Close()
		return false
	}
	kept := s.client == old && s.gen == gen
	if kept {
		if s.olds == nil {
			s.olds = map[uint64]*oldConn{}
		}
		s.olds[gen] = &oldConn{client: old}
	}
	// For the user (the server's state, the dashboard's reconnects) this is a
	// reconnect: the outage began when the verification did.
	if s.downSince.IsZero() {
		s.downSince = f.started
	}
	s.installLocked(r.c, r.took)
	s.finishFlightLocked(f, nil)
	s.mu.Unlock()
	s.spec.won.Add(1)
	s.log.Info("a fresh ssh connection answered before the old one; new connections use it",
		"connectedIn", fmtDur(r.took), "oldKeptUntilVerdict", kept)
	s.pool.kick()
	return kept
}

// oldAnswered: replaced connection gen is alive after all; it is closed
// once its last handed-out channel is.
func (s *Session) oldAnswered(gen uint64) {
	s.mu.Lock()
	o := s.olds[gen]
	if o == nil {
		s.mu.Unlock()
		return
	}
	if s.genConns[gen] > 0 {
		o.alive = true
		s.mu.Unlock()
		return
	}
	delete(s.olds, gen)
	s.mu.Unlock()
	_ = o.client.Close()
}

// dropOld closes replaced connection gen, whose ping failed; its channels
// fail (their bytes may have gone into it, so they are not retried).
func (s *Session) dropOld(gen uint64, why error) {
	s.mu.Lock()
	o := s.olds[gen]
	delete(s.olds, gen)
	s.mu.Unlock()
	if o != nil {
		s.log.Info("the replaced ssh connection did not answer its keepalive; closing it", "err", why)
		_ = o.client.Close()
	}
}

func (s *Session) countGenLocked(gen uint64) {
	if s.genConns == nil {
		s.genConns = map[uint64]int{}
	}
	s.genConns[gen]++
}

// uncountGenLocked counts one channel of gen closed; it returns a replaced
// connection to close when that was its last channel and it is alive.
func (s *Session) uncountGenLocked(gen uint64) SSHClient {
	if s.genConns[gen]--; s.genConns[gen] > 0 {
		return nil
	}
	delete(s.genConns, gen)
	if o := s.olds[gen]; o != nil && o.alive {
		delete(s.olds, gen)
		return o.client
	}
	return nil
}

// takeOldsLocked empties s.olds (at Close).
func (s *Session) takeOldsLocked() []SSHClient {
	out := make([]SSHClient, 0, len(s.olds))
	for g, o := range s.olds {
		out = append(out, o.client)
		delete(s.olds, g)
	}
	return out
}
