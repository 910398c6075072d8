package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/guard"
	"github.com/porthole-app/porthole/backend/portmap"
	"github.com/porthole-app/porthole/backend/sshconn"
)

// runForward runs tunnels from the terminal, like `ssh -N -L …`, until SIGINT/SIGTERM.
func runForward(args []string) error {
	a, err := parseForwardArgs(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "porthole forward: %v\n", err)
		if !errors.Is(err, errForwardUsage) || err.Error() != errForwardUsage.Error() {
			fmt.Fprintln(os.Stderr, errForwardUsage.Error())
		}
		return errUsage
	}
	specs := make([]forwarder.LocalSpec, 0, len(a.Locals))
	for _, l := range a.Locals {
		s, err := forwarder.ParseLocalSpec(l)
		if err != nil {
			fmt.Fprintf(os.Stderr, "porthole forward: %v\n", err)
			return errUsage
		}
		specs = append(specs, s)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return forward(ctx, a, specs, newLogger(os.Stderr, a.Verbose), nil)
}

// forward runs the forwards until ctx ends. ready, if set, is called with the
// bound local addresses once the listeners are up and the first connect attempt is done.
func forward(ctx context.Context, a forwardArgs, specs []forwarder.LocalSpec, log *slog.Logger, ready func([]net.Addr)) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := sshconn.Options{Port: a.Port, IdentityFiles: a.Identities, ProxyJump: a.Jump, ConfigOverrides: a.Options}
	if a.Cipher != "" {
		opts.ConfigOverrides["ciphers"] = a.Cipher
	}
	cfg, err := sshconn.Resolve(a.Destination, opts)
	if err != nil {
		return err
	}
	dialer := &sshconn.Dialer{Config: cfg, Prompter: &ttyPrompter{}, Logger: log}
	connector := forwarder.ConnectorFunc(func(ctx context.Context) (forwarder.SSHClient, error) {
		c, err := dialer.Dial(ctx)
		if err != nil {
			if errors.Is(err, sshconn.ErrAuthFailed) || errors.Is(err, sshconn.ErrHostKeyMismatch) {
				return nil, fmt.Errorf("%w: %w", forwarder.ErrPermanent, err)
			}
			return nil, err
		}
		return c, nil
	})

	sopts := forwarder.SessionOptions{
		Name:   cfg.String(),
		Logger: log,
		Publisher: forwarder.PublisherFunc(func(e forwarder.Event) {
			logSessionEvent(log, e)
		}),
	}
	if cfg.AliveInterval > 0 {
		sopts.PingIdleThreshold = cfg.AliveInterval
	}
	session := forwarder.NewSession(connector, sopts)
	defer session.Close()

	wake := forwarder.NewWakeDetector(forwarder.WakeOptions{Logger: log})
	unregister := wake.Register(session)
	defer unregister()
	wake.Start()
	defer wake.Close()

	g := guard.NewSameUser(log)
	var fwds []*forwarder.LocalForward
	defer func() {
		for _, f := range fwds {
			f.Close()
		}
	}()
	for _, spec := range specs {
		ln, err := portmap.Listen(ctx, spec.ListenAddress())
		if err != nil {
			var pe *portmap.PortInUseError
			if errors.As(err, &pe) {
				return fmt.Errorf("-L %s: %v; choose another local port", spec, pe)
			}
			return fmt.Errorf("-L %s: %w", spec, err)
		}
		f, err := forwarder.ListenLocal(spec, session, forwarder.LocalOptions{Guard: g, Logger: log, Listener: ln})
		if err != nil {
			ln.Close()
			return err
		}
		fwds = append(fwds, f)
		log.Info("forwarding", "local", f.Addr().String(), "remote", fmt.Sprintf("%s:%d", spec.TargetHost, spec.TargetPort), "via", cfg.String())
	}

	// Connect now, like ssh does, so that a wrong password or host key is
	// reported at once and the first request finds a ready connection.
	if err := session.Connect(ctx); err != nil {
		if errors.Is(err, forwarder.ErrPermanent) || errors.Is(err, sshconn.ErrUnreachable) {
			return err
		}
		log.Warn("not connected yet; will retry on first use", "err", err)
	}
	if ready != nil {
		addrs := make([]net.Addr, len(fwds))
		for i, f := range fwds {
			addrs[i] = f.Addr()
		}
		ready(addrs)
	}
	<-ctx.Done()
	log.Info("stopping")
	return nil
}

// logSessionEvent logs a Session state change the way a terminal user wants to
// read it: connecting, ready, suspect, reconnected after X ms.
func logSessionEvent(log *slog.Logger, e forwarder.Event) {
	attrs := []any{"state", e.State.String()}
	if e.Reason != "" {
		attrs = append(attrs, "reason", e.Reason)
	}
	if e.Downtime > 0 {
		attrs = append(attrs, "downtime", e.Downtime.Round(time.Millisecond).String())
	}
	if e.Err != nil {
		attrs = append(attrs, "err", e.Err.Error())
	}
	switch e.State {
	case forwarder.StateFailed:
		log.Warn("ssh session", attrs...)
	default:
		log.Info("ssh session", attrs...)
	}
}
