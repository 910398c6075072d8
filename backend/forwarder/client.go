// Package forwarder is Porthole's engine for one login: a Session (one lazily
// dialed, shared, self-healing SSH connection with a channel Pool), local
// forwards (-L), web forwards, dynamic forwards (-D, SOCKS) and their
// statistics, and wake detection.
//
// It declares the small interfaces it needs (SSHClient, Connector, Dialer,
// Guard, Publisher) instead of importing the packages that implement them.
package forwarder

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHClient is one live SSH connection (sshconn.Client satisfies it; so does
// ClientFromSSH over a plain *ssh.Client).
type SSHClient interface {
	// OpenChannel opens a channel of the given type (e.g. "direct-tcpip").
	OpenChannel(name string, payload []byte) (ssh.Channel, <-chan *ssh.Request, error)
	// Ping sends a keepalive with want-reply raced against timeout and
	// returns the round-trip time. On timeout it closes the client: a request
	// on a dead TCP connection would otherwise block forever.
	Ping(ctx context.Context, timeout time.Duration) (time.Duration, error)
	// Close closes the connection; it is safe to call more than once.
	Close() error
	// Wait blocks until the connection is closed and returns why.
	Wait() error
}

// Connector makes new SSH connections for a Session.
type Connector interface {
	Connect(ctx context.Context) (SSHClient, error)
}

// ConnectorFunc adapts a function to Connector.
type ConnectorFunc func(ctx context.Context) (SSHClient, error)

// Connect calls f(ctx).
func (f ConnectorFunc) Connect(ctx context.Context) (SSHClient, error) { return f(ctx) }

// ErrPingTimeout means the server did not answer a keepalive in time; the
// connection was closed because it is probably dead (e.g. the network path
// is black-holed). Reconnecting is the remedy.
var ErrPingTimeout = errors.New("ssh keepalive timed out: the connection is unresponsive and was closed")

// ErrPermanent marks a connect error that retrying cannot fix (e.g. a
// rejected password or a changed host key). A Connector wraps its error with
// it (fmt.Errorf("…: %w", forwarder.ErrPermanent, err)) or returns an error
// with a `Permanent() bool` method that reports true; the Session then stops
// retrying until the next Dial.
var ErrPermanent = errors.New("permanent error")

func isPermanent(err error) bool {
	if errors.Is(err, ErrPermanent) {
		return true
	}
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// keepaliveRequest is the global request OpenSSH itself uses as keepalive.
// Servers answer it with success or failure; either means "alive".
const keepaliveRequest = "keepalive@openssh.com"

// ClientFromSSH adapts a plain *ssh.Client to SSHClient. Its Ping sends
// keepalive@openssh.com (want-reply) in a goroutine and races it against a
// timer; on timeout it closes the client.
func ClientFromSSH(c *ssh.Client) SSHClient {
	return &sshClient{c: c}
}

type sshClient struct {
	c         *ssh.Client
	closeOnce sync.Once
	closeErr  error
}

func (a *sshClient) OpenChannel(name string, payload []byte) (ssh.Channel, <-chan *ssh.Request, error) {
	return a.c.OpenChannel(name, payload)
}

func (a *sshClient) Close() error {
	a.closeOnce.Do(func() { a.closeErr = a.c.Close() })
	return a.closeErr
}

func (a *sshClient) Wait() error { return a.c.Wait() }

// SendRequest sends a global request (remote forwards use it).
func (a *sshClient) SendRequest(name string, wantReply bool, payload []byte) (bool, []byte, error) {
	return a.c.SendRequest(name, wantReply, payload)
}

// HandleChannelOpen returns the channels of the given type the server opens.
func (a *sshClient) HandleChannelOpen(channelType string) <-chan ssh.NewChannel {
	return a.c.HandleChannelOpen(channelType)
}

// LocalAddr is the local address of the connection.
func (a *sshClient) LocalAddr() net.Addr { return a.c.LocalAddr() }

func (a *sshClient) Ping(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	return pingWith(ctx, timeout, a.Close, func() error {
		_, _, err := a.c.SendRequest(keepaliveRequest, true, nil)
		return err
	})
}

// pingWith runs send (a want-reply request that returns when answered or when
// the connection dies) in a goroutine and races it against timeout and ctx.
// On timeout it calls closeFn, which makes send return, so the goroutine
// never outlives the connection.
func pingWith(ctx context.Context, timeout time.Duration, closeFn func() error, send func() error) (time.Duration, error) {
	if timeout <= 0 {
		timeout = time.Second
	}
	start := time.Now()
	done := make(chan error, 1) // buffered: the sender never blocks
	go func() { done <- send() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			return 0, fmt.Errorf("ssh keepalive: connection closed: %w", err)
		}
		// A reply, success or failure, proves the server is alive.
		return time.Since(start), nil
	case <-timer.C:
		_ = closeFn()
		return 0, fmt.Errorf("%w (no reply within %v)", ErrPingTimeout, timeout)
	case <-ctx.Done():
		return 0, fmt.Errorf("ssh keepalive: %w", ctx.Err())
	}
}

// DialSSH connects to addr ("host:port"), runs the SSH handshake bounded by
// ctx and returns the connection as an SSHClient. It is for tests, benchmarks
// and simple callers; Porthole itself connects through sshconn (ssh_config,
// jump hosts, known_hosts).
func DialSSH(ctx context.Context, addr string, cfg *ssh.ClientConfig) (SSHClient, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ssh dial %s: %w", addr, err)
	}
	// The handshake has no context of its own: a deadline on the socket
	// bounds it when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	c, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if !stop() && err == nil {
		_ = c.Close()
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, ctx.Err())
	}
	if err != nil {
		_ = nc.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ssh handshake with %s: %w (%w)", addr, ctx.Err(), err)
		}
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, err)
	}
	return ClientFromSSH(ssh.NewClient(c, chans, reqs)), nil
}

// SSHConnector is a Connector that calls DialSSH.
type SSHConnector struct {
	Addr   string
	Config *ssh.ClientConfig
}

// Connect dials a new SSH connection.
func (c SSHConnector) Connect(ctx context.Context) (SSHClient, error) {
	return DialSSH(ctx, c.Addr, c.Config)
}
