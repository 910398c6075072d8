package forwarder

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"
)

// DynamicOptions configures a DynamicForward. The zero value is usable.
type DynamicOptions struct {
	// Guard is asked about every accepted connection; nil allows all.
	Guard Guard
	// Logger receives the forward's logs; nil discards them.
	Logger *slog.Logger
	// DialTimeout bounds getting a channel for one connection (including
	// waiting for a reconnect); default 20 s.
	DialTimeout time.Duration
	// HandshakeTimeout bounds reading a client's SOCKS request and writing
	// the reply; default 10 s.
	HandshakeTimeout time.Duration
	// Listener, if set, is used instead of listening on the spec's address.
	// The forward closes it.
	Listener net.Listener
}

type socksOptions struct {
	handshakeTimeout time.Duration
}

// DynamicForward is a running -D forward: a SOCKS proxy (SOCKS5 without
// authentication, SOCKS4 and SOCKS4a; CONNECT only) whose connections go
// through a Dialer (the Session) to the host and port each client asks for.
// Host names are passed to the server as given and resolved there, never
// here. The listener is up before any SSH connection exists.
//
// The channel is opened before the client is answered, so a failure is
// reported in the reply: refused → 05, prohibited by the server → 02,
// unreachable or unknown host → 04 (03 for an unreachable network), other →
// 01; SOCKS4 gets 5B for any failure. After the reply, a connection follows
// the rules of a LocalForward: it moves to a new channel only while no byte
// went through (never send twice). A client that does not speak SOCKS gets
// the protocol's error reply where there is one and is closed; handshakes
// are bounded in time and size.
type DynamicForward struct {
	spec DynamicSpec
	lf   *LocalForward
}

// ListenDynamic starts a dynamic forward: it binds the listener now
// (loopback unless the spec asks for another address) and serves until
// Close.
func ListenDynamic(spec DynamicSpec, d Dialer, opts DynamicOptions) (*DynamicForward, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 10 * time.Second
	}
	lf, err := listen(LocalSpec{BindAddress: spec.BindAddress, BindPort: spec.BindPort}, spec.String(), "dynamic forward", d,
		LocalOptions{Guard: opts.Guard, Logger: opts.Logger, DialTimeout: opts.DialTimeout, Listener: opts.Listener},
		&socksOptions{handshakeTimeout: opts.HandshakeTimeout})
	if err != nil {
		return nil, err
	}
	spec.BindPort = lf.spec.BindPort
	return &DynamicForward{spec: spec, lf: lf}, nil
}

// Addr is the address the forward listens on.
func (f *DynamicForward) Addr() net.Addr { return f.lf.Addr() }

// Spec is the forward's spec, with the bound port filled in.
func (f *DynamicForward) Spec() DynamicSpec { return f.spec }

// Stats returns a snapshot of the forward's counters. Connections whose
// handshake failed count as failed.
func (f *DynamicForward) Stats() StatsSnapshot { return f.lf.Stats() }

// Close stops listening, closes every forwarded connection and waits for
// the forward's goroutines.
func (f *DynamicForward) Close() error { return f.lf.Close() }

// socksAccept reads the client's SOCKS request, bounded by the handshake
// timeout. On a protocol error it sends the protocol's error reply, if any.
func (f *LocalForward) socksAccept(c net.Conn) (socksRequest, error) {
	_ = c.SetDeadline(time.Now().Add(f.socks.handshakeTimeout))
	req, err := socksHandshake(c, c)
	if err != nil {
		if se, ok := err.(*socksError); ok {
			if se.reply != nil {
				_, _ = c.Write(se.reply)
			}
			lingerClose(c)
		}
		return socksRequest{}, err
	}
	_ = c.SetDeadline(time.Time{}) // the dial has its own timeout
	return req, nil
}

// socksAnswer tells the client whether its channel opened (dialErr == nil).
func (f *LocalForward) socksAnswer(c net.Conn, version int, dialErr error) error {
	_ = c.SetWriteDeadline(time.Now().Add(f.socks.handshakeTimeout))
	_, err := c.Write(socksReplyFor(version, dialErr))
	_ = c.SetWriteDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("sending the SOCKS reply: %w", err)
	}
	return nil
}

// lingerClose half-closes c and discards what the client still sends (at
// most 64 KiB, for at most a second), so that closing does not reset the
// connection and destroy the reply before the client has read it.
func lingerClose(c net.Conn) {
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.CopyN(io.Discard, c, 64<<10)
}
