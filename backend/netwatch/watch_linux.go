//go:build linux

package netwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// groups are the rtnetlink multicast groups the watcher joins.
const groups = unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR | unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE

// Watcher reads the kernel's link, address and route notifications from a
// NETLINK_ROUTE socket in the network namespace it was opened in.
type Watcher struct {
	opts Options
	log  *slog.Logger
	f    *os.File // the socket, non-blocking, in Go's poller
	st   *state   // owned by Run's reader once Run starts
	seq  uint32

	closeOnce sync.Once
	runMu     sync.Mutex // one Run at a time
}

// Open subscribes to the kernel's link, address and route notifications
// and reads the current links, addresses and routes, so that what changes
// from now on is told apart from what was there. Run reports the changes;
// Close releases the socket.
func Open(opts Options) (*Watcher, error) {
	opts = opts.withDefaults()
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netwatch: open a NETLINK_ROUTE socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("netwatch: join the link, address and route groups: %w", err)
	}
	// A bigger receive buffer makes an overrun (and a re-read) rarer when
	// many routes change at once; the kernel caps it at rmem_max.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	w := &Watcher{opts: opts, log: opts.Logger, f: os.NewFile(uintptr(fd), "netlink-route")}
	st, err := w.dump()
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	w.st = st
	w.log.Debug("watching the network", "links", len(st.links), "addresses", len(st.addrs), "routes", len(st.routes))
	return w, nil
}

// Close releases the socket; a Run in progress returns.
func (w *Watcher) Close() error {
	var err error
	w.closeOnce.Do(func() { err = w.f.Close() })
	return err
}

// Run calls fn with each burst of changes, coalesced over Options.Debounce,
// until ctx ends (it then returns nil) or the socket fails. fn runs on
// Run's goroutine. Run closes the watcher when it returns.
func (w *Watcher) Run(ctx context.Context, fn func(Change)) error {
	if !w.runMu.TryLock() {
		return errors.New("netwatch: Run is already running")
	}
	defer w.runMu.Unlock()
	defer w.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = w.Close() }) // wakes the reader
	defer stop()

	events := make(chan []Event)
	readErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		readErr <- w.read(ctx, events)
	}()
	defer wg.Wait()
	defer cancel()

	return coalesce(ctx, events, readErr, func() <-chan time.Time { return time.After(w.opts.Debounce) }, func(c Change) {
		w.log.Debug("network changed", "change", c.String(), "events", len(c.Events))
		fn(c)
	})
}

// coalesce gathers the events that arrive from the first of a burst until
// window() fires into one Change for fn. It returns nil when ctx ends, and
// the reader's error (nil if the socket was closed) when it ends.
func coalesce(ctx context.Context, events <-chan []Event, readErr <-chan error, window func() <-chan time.Time, fn func(Change)) error {
	var pending []Event
	var first time.Time
	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return nil
			}
			if len(pending) > 0 { // what was read is true: report it before giving up
				fn(Change{Time: first, Events: pending})
			}
			return err
		case evs := <-events:
			if len(evs) == 0 {
				continue
			}
			if len(pending) == 0 {
				first = time.Now()
				fire = window()
			}
			pending = append(pending, evs...)
		case <-fire:
			c := Change{Time: first, Events: pending}
			pending, fire = nil, nil
			fn(c)
		}
	}
}

// read receives notifications until the socket is closed, and sends the
// changes they make to events.
func (w *Watcher) read(ctx context.Context, events chan<- []Event) error {
	buf := make([]byte, 64<<10)
	for {
		msgs, err := w.recv(buf)
		if errors.Is(err, unix.ENOBUFS) {
			// The kernel dropped notifications: read everything again and
			// report the difference.
			w.log.Debug("netlink receive buffer overrun; reading the state again")
			st, err := w.dump()
			if err != nil {
				return err
			}
			evs := st.diff(w.st)
			w.st = st
			if len(evs) > 0 {
				select {
				case events <- evs:
				case <-ctx.Done():
					return nil
				}
			}
			continue
		}
		if err != nil {
			return err
		}
		var evs []Event
		for _, m := range msgs {
			evs = append(evs, w.st.apply(m)...)
		}
		if len(evs) == 0 {
			continue
		}
		select {
		case events <- evs:
		case <-ctx.Done():
			return nil
		}
	}
}

// recv reads one datagram and parses it; only the kernel's messages are
// kept (another process could send to our port).
func (w *Watcher) recv(buf []byte) ([]message, error) {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var n int
	var from unix.Sockaddr
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
		return rerr != unix.EAGAIN && rerr != unix.EWOULDBLOCK
	})
	if err != nil {
		return nil, fmt.Errorf("netwatch: read: %w", err)
	}
	if rerr != nil {
		return nil, fmt.Errorf("netwatch: read: %w", rerr)
	}
	if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
		return nil, nil
	}
	msgs, err := parseMessages(buf[:n])
	if err != nil {
		w.log.Debug("netlink: a message did not parse; skipped", "err", err)
	}
	return msgs, nil
}

// dump reads the current links, addresses and routes into a new state.
// Notifications that arrive meanwhile are applied to it too.
func (w *Watcher) dump() (*state, error) {
	st := newState()
	buf := make([]byte, 64<<10)
	for _, req := range []struct {
		typ  uint16
		body int
	}{{unix.RTM_GETLINK, unix.SizeofIfInfomsg}, {unix.RTM_GETADDR, unix.SizeofIfAddrmsg}, {unix.RTM_GETROUTE, unix.SizeofRtMsg}} {
		w.seq++
		seq := w.seq
		if err := w.send(dumpRequest(req.typ, req.body, seq)); err != nil {
			return nil, err
		}
		for done := false; !done; {
			msgs, err := w.recv(buf)
			if errors.Is(err, unix.ENOBUFS) {
				continue // notifications were dropped; the dump is still coming
			}
			if err != nil {
				return nil, err
			}
			for _, m := range msgs {
				switch {
				case m.seq == seq && m.typ == unix.NLMSG_DONE:
					done = true
				case m.seq == seq && m.typ == unix.NLMSG_ERROR && m.errno != 0:
					return nil, fmt.Errorf("netwatch: reading the network state: %w", unix.Errno(-m.errno))
				default:
					st.apply(m)
				}
			}
		}
	}
	return st, nil
}

// dumpRequest is a NLM_F_DUMP request of type typ with a zeroed body of
// bodyLen bytes (family AF_UNSPEC: every family).
func dumpRequest(typ uint16, bodyLen int, seq uint32) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN+bodyLen)
	native.PutUint32(b[0:4], uint32(len(b)))
	native.PutUint16(b[4:6], typ)
	native.PutUint16(b[6:8], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	native.PutUint32(b[8:12], seq)
	return b
}

func (w *Watcher) send(b []byte) error {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN && serr != unix.EWOULDBLOCK
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("netwatch: ask for the network state: %w", err)
	}
	return nil
}
