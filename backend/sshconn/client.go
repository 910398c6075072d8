package sshconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// DefaultPingTimeout is used by Ping when its timeout is not positive.
const DefaultPingTimeout = 15 * time.Second

// Client is an authenticated connection to the destination, owning the jump
// host connections it runs through. The embedded *ssh.Client talks to the
// destination. Close closes the whole chain.
type Client struct {
	*ssh.Client
	jumps []*ssh.Client // in connection order; jumps[0] holds the TCP connection
	cfg   *Config
	log   *slog.Logger

	mu        sync.Mutex
	closed    bool
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup // the chain watcher and in-flight pings
}

func newClient(chain []*ssh.Client, cfg *Config, log *slog.Logger) *Client {
	c := &Client{Client: chain[len(chain)-1], jumps: chain[:len(chain)-1], cfg: cfg, log: log}
	if len(c.jumps) > 0 {
		// When the destination connection ends on its own, release the jump hosts too.
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			_ = c.Client.Wait()
			c.closeChain()
		}()
	}
	return c
}

// Config is the configuration this client was dialed with.
func (c *Client) Config() *Config { return c.cfg }

// Close closes the destination connection and every jump host connection,
// and waits for the goroutines the Client owns. It is safe to call more than
// once and concurrently.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.closeChain()
	c.wg.Wait()
	return c.closeErr
}

// closeChain closes the TCP-level connection first: that unblocks everything
// above it at once, even on a dead network (closing a channel-based
// connection first could wait for a peer that never answers).
func (c *Client) closeChain() {
	c.closeOnce.Do(func() {
		for _, j := range c.jumps {
			_ = j.Close()
		}
		if err := c.Client.Close(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) && len(c.jumps) == 0 {
			c.closeErr = err
		}
		c.log.Debug("connection closed", "dest", c.cfg.String())
	})
}

// Ping sends a keepalive@openssh.com request with want-reply and waits for
// the answer, racing timeout. Any answer (success or failure) means the
// server is alive; Ping returns the round-trip time. On timeout or a
// connection error the client (and its jump chain) is closed, because a
// request on a dead TCP connection would otherwise block forever; the error
// wraps ErrPingTimeout or ErrConnectionLost. If ctx ends first, Ping returns
// ctx.Err() and leaves the client open.
func (c *Client) Ping(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	if timeout <= 0 {
		timeout = DefaultPingTimeout
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, fmt.Errorf("%w: ping %s: the client is closed", ErrConnectionLost, c.cfg)
	}
	c.wg.Add(1)
	c.mu.Unlock()

	res := make(chan error, 1)
	start := time.Now()
	go func() {
		defer c.wg.Done()
		_, _, err := c.Client.SendRequest("keepalive@openssh.com", true, nil)
		res <- err
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-res:
		if err != nil {
			c.Close()
			return 0, fmt.Errorf("%w: ping %s: %v; the connection was closed", ErrConnectionLost, c.cfg, err)
		}
		return time.Since(start), nil
	case <-t.C:
		c.log.Info("ping timed out; closing", "dest", c.cfg.String(), "timeout", timeout)
		c.Close()
		return 0, fmt.Errorf("%w: %s did not answer a keepalive within %s; the connection was closed", ErrPingTimeout, c.cfg, timeout)
	case <-ctx.Done():
		return 0, fmt.Errorf("ping %s: %w", c.cfg, ctx.Err())
	}
}
