package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/forwarder"
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

// forward runs the forwards until ctx ends, on the same in-process login
// the app's agents run (agent.LocalLogin). ready, if set, is called with
// the bound local addresses once the listeners are up and the first
// connect attempt is done.
func forward(ctx context.Context, a forwardArgs, specs []forwarder.LocalSpec, log *slog.Logger, ready func([]net.Addr)) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	overrides := maps.Clone(a.Options)
	if a.Cipher != "" {
		if overrides == nil {
			overrides = map[string]string{}
		}
		overrides["ciphers"] = a.Cipher
	}
	spec := agent.LoginSpec{
		ID:             "forward",
		SSHConfigAlias: a.Destination,
		Port:           a.Port,
		IdentityFiles:  a.Identities,
		ProxyJump:      a.Jump,
		Options:        overrides,
		// Stay connected like ssh -N; stats are not needed in a terminal.
		Session: agent.SessionSettings{IdleTimeout: -1, StatsInterval: -1},
	}
	// Resolve once now: a bad config fails before anything listens, and
	// ServerAliveInterval sets how long a quiet connection is trusted.
	cfg, err := spec.Resolve()
	if err != nil {
		return err
	}
	spec.Name = cfg.String()
	if cfg.AliveInterval > 0 {
		spec.Session.PingIdleThreshold = cfg.AliveInterval
	}
	// Bind each listener here, so that a port in use names its holder.
	var lns []net.Listener
	for _, s := range specs {
		ln, err := portmap.Listen(ctx, s.ListenAddress())
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			var pe *portmap.PortInUseError
			if errors.As(err, &pe) {
				return fmt.Errorf("-L %s: %v; choose another local port", s, pe)
			}
			return fmt.Errorf("-L %s: %w", s, err)
		}
		lns = append(lns, ln)
	}
	for i, s := range specs {
		s.BindPort = lns[i].Addr().(*net.TCPAddr).Port
		lns[i].Close() // the login binds it again at once (same user, same port)
		spec.Forwards = append(spec.Forwards, agent.ForwardSpec{ID: fmt.Sprintf("L%d", i+1), Local: s})
	}
	login, err := agent.NewLocalLogin(spec, agent.Secrets{}, &sshconn.TTYPrompter{}, log)
	if err != nil {
		return err
	}
	defer login.Close()
	unsub := login.Subscribe(func(e agent.Event) {
		if e.State != nil {
			logSessionEvent(log, *e.State)
		}
	})
	defer unsub()
	st, err := login.Stats(ctx)
	if err != nil {
		return err
	}
	addrs := make([]net.Addr, 0, len(st.Forwards))
	for _, f := range st.Forwards {
		if f.Addr == "" {
			return fmt.Errorf("-L %s: %s", f.Spec, f.Error)
		}
		addr, err := net.ResolveTCPAddr("tcp", f.Addr)
		if err != nil {
			return err
		}
		addrs = append(addrs, addr)
	}

	// Connect now, like ssh does, so that a wrong password or host key is
	// reported at once and the first request finds a ready connection. An
	// error nothing but the user can fix ends the command, as ssh's would.
	if err := login.Connect(ctx); err != nil {
		if isPermanentForwardError(err) {
			return err
		}
		log.Warn("not connected yet; will retry on first use", "err", err)
	}
	if ready != nil {
		ready(addrs)
	}
	<-ctx.Done()
	log.Info("stopping")
	return nil
}

// isPermanentForwardError: retrying cannot fix it (ssh exits on these too).
func isPermanentForwardError(err error) bool {
	for _, e := range []error{
		forwarder.ErrPermanent, sshconn.ErrUnreachable, sshconn.ErrAuthFailed, sshconn.ErrHostKeyMismatch,
		sshconn.ErrHostKeyUnknown, sshconn.ErrHostKeyRejected, sshconn.ErrHostKeyRevoked, sshconn.ErrConfig,
		sshconn.ErrUnsupported, sshconn.ErrBadKey, sshconn.ErrWrongPassphrase, agent.ErrNoPrompter,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
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
