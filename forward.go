package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/porthole-app/porthole/backend/cli"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/portmap"
	"github.com/porthole-app/porthole/backend/prompts"
	"github.com/porthole-app/porthole/backend/sshconn"
)

// The forward mode's argv syntax lives in backend/cli.
type forwardArgs = cli.ForwardArgs

var (
	parseForwardArgs = cli.ParseForwardArgs
	errForwardUsage  = cli.ErrForwardUsage
)

// runForward runs tunnels from the terminal, like `ssh -N -L …` (plus ssh_config's forward lines), until SIGINT/SIGTERM.
func runForward(args []string) error {
	a, err := parseForwardArgs(args)
	if l, cerr := sshconn.ConfigForwards(a.Destination, sshconn.Options{ConfigOverrides: a.Options}); err == nil {
		err = cmp.Or(cerr, a.AddConfigForwards(l.Local, l.Remote, l.Dynamic, l.ClearAll))
	}
	specs := make([]forwarder.LocalSpec, 0, len(a.Locals))
	for _, l := range a.Locals {
		s, perr := forwarder.ParseLocalSpec(l)
		specs, err = append(specs, s), cmp.Or(err, perr)
	}
	if _, derr := dynamicSpecs(a); err == nil {
		_, rerr := parseRemotes(a.Remotes)
		err = cmp.Or(derr, rerr)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "porthole forward: %v\n", err)
		if !errors.Is(err, errForwardUsage) || err.Error() != errForwardUsage.Error() {
			fmt.Fprintln(os.Stderr, errForwardUsage.Error())
		}
		return errUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	agent.OneSessionProcs()
	return forward(ctx, a, specs, newLogger(os.Stderr, a.Verbose), nil)
}

// dynamicSpecs parses the -D specs.
func dynamicSpecs(a forwardArgs) ([]forwarder.DynamicSpec, error) {
	out := make([]forwarder.DynamicSpec, 0, len(a.Dynamics))
	for _, d := range a.Dynamics {
		s, err := forwarder.ParseDynamicSpec(d)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// parseRemotes parses -R specs.
func parseRemotes(raw []string) ([]forwarder.RemoteSpec, error) {
	out := make([]forwarder.RemoteSpec, 0, len(raw))
	for _, r := range raw {
		s, err := forwarder.ParseRemoteSpec(r)
		if err != nil {
			return nil, fmt.Errorf("-R: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}

// forward runs the forwards until ctx ends, on the same in-process login
// the app's agents run (agent.LocalLogin): specs (-L), then a.Dynamics
// (-D, SOCKS), then a.Remotes (-R); any of -L and -R may have Unix socket
// ends (forwarder.ParseLocalSpec, ParseRemoteSpec). ready, if set, is
// called with the bound local addresses (-L, then -D; a *net.UnixAddr for a
// local socket) once the listeners are up and the first connect attempt is
// done.
//
// With -R forwards it phones home: the connection is kept up (and the
// forwards requested again) across network changes and sshd restarts, each
// outage is logged with its length, and it returns an error only for a
// permanent one (authentication, host key), as ssh would.
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
	dyns, err := dynamicSpecs(a)
	remotes, rerr := parseRemotes(a.Remotes)
	if err = cmp.Or(err, rerr); err != nil {
		return err
	}
	if cfg.AliveInterval > 0 {
		spec.Session.PingIdleThreshold = cfg.AliveInterval
	}
	// ExitOnForwardFailure no (ssh's default): a forward that cannot be set
	// up is logged and the others run; yes: it ends the command.
	var failed error
	fail := func(err error) error {
		if failed = errors.Join(failed, err); cfg.ExitOnForwardFailure {
			return err
		}
		log.Warn("forward failed; keeping the others (ExitOnForwardFailure no)", "err", err)
		return nil
	}
	// Bind each listener here, so that a port in use names its holder.
	var lns []net.Listener
	kept := specs[:0:0]
	for _, s := range specs {
		var ln net.Listener
		if s.BindPath == "" { // a Unix socket (nil): the login checks and binds it
			if ln, err = portmap.Listen(ctx, s.ListenAddress()); err != nil {
				if err = fail(bindError("-L", s, err)); err != nil {
					closeListeners(lns)
					return err
				}
				continue
			}
		}
		lns, kept = append(lns, ln), append(kept, s)
	}
	specs = kept
	keptD := dyns[:0:0]
	for _, d := range dyns { // held with the -L ones: no two get one free port
		ln, err := portmap.Listen(ctx, d.ListenAddress())
		if err != nil {
			if err = fail(bindError("-D", d, err)); err != nil {
				closeListeners(lns)
				return err
			}
			continue
		}
		lns, keptD = append(lns, ln), append(keptD, d)
	}
	if dyns = keptD; len(specs)+len(dyns)+len(remotes) == 0 {
		return failed // none left to run (ssh would sit idle)
	}
	dynFwds := make([]agent.ForwardSpec, len(dyns))
	for i, d := range dyns {
		d.BindPort = lns[len(specs)+i].Addr().(*net.TCPAddr).Port
		lns[len(specs)+i].Close() // the login binds it again at once
		dynFwds[i] = agent.ForwardSpec{ID: fmt.Sprintf("D%d", i+1), Dynamic: &d}
	}
	lns = lns[:len(specs)]
	for i, s := range specs {
		if lns[i] != nil {
			s.BindPort = lns[i].Addr().(*net.TCPAddr).Port
			lns[i].Close() // the login binds it again at once (same user, same port)
		}
		spec.Forwards = append(spec.Forwards, agent.ForwardSpec{ID: fmt.Sprintf("L%d", i+1), Local: s})
	}
	spec.Forwards = append(spec.Forwards, dynFwds...)
	for i, r := range remotes {
		spec.Forwards = append(spec.Forwards, agent.ForwardSpec{ID: fmt.Sprintf("R%d", i+1), Remote: &r})
	}
	login, err := agent.NewLocalLogin(spec, agent.Secrets{}, &prompts.TTY{}, log)
	if err != nil {
		return err
	}
	defer login.Close()
	// After the first connection, a permanent failure (the server now
	// rejects the key, its host key changed) ends a phone-home forward; a server that drops every login right after auth ends any (ssh exits too).
	var connected atomic.Bool
	fatal := make(chan error, 1)
	unsub := login.Subscribe(func(e agent.Event) {
		if e.State != nil {
			logSessionEvent(log, *e.State)
			if e.State.State == forwarder.StateFailed && (errors.Is(e.State.Err, forwarder.ErrDropsAfterLogin) || len(remotes) > 0 && connected.Load() && errors.Is(e.State.Err, forwarder.ErrPermanent)) {
				select {
				case fatal <- e.State.Err:
				default:
				}
			}
		}
	})
	defer unsub()
	st, err := login.Stats(ctx)
	if err != nil {
		return err
	}
	addrs := make([]net.Addr, 0, len(st.Forwards))
	for _, f := range st.Forwards {
		if f.Kind == agent.ForwardRemote {
			continue // requested on the server once connected
		}
		if f.Addr == "" {
			err := fmt.Errorf("-L %s: %s", f.Spec, f.Error)
			if f.Kind == agent.ForwardDynamic {
				err = fmt.Errorf("-D %s: %s", forwarder.DynamicSpec{BindAddress: f.Spec.BindAddress, BindPort: f.Spec.BindPort}, f.Error)
			}
			if err = fail(err); err != nil {
				return err
			}
			continue
		}
		if f.Spec.BindPath != "" {
			addrs = append(addrs, &net.UnixAddr{Name: f.Addr, Net: "unix"})
			continue
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
		if agent.IsPermanent(err) {
			return err
		}
		log.Warn("not connected yet; will retry on first use", "err", err)
	} else if connected.Store(true); cfg.ExitOnForwardFailure && len(remotes) > 0 {
		if err := agent.RemoteForwardFailure(ctx, login, 15*time.Second); err != nil {
			return err // the server refused a -R on the first connection
		}
	}
	if ready != nil {
		ready(addrs)
	}
	select {
	case <-ctx.Done():
	case err := <-fatal:
		log.Error("giving up: the server cannot be used any more", "err", err)
		return err
	}
	log.Info("stopping")
	return nil
}

// closeListeners closes the listeners held so far (nil for socket forwards).
func closeListeners(lns []net.Listener) {
	for _, l := range lns {
		if l != nil {
			l.Close()
		}
	}
}

// bindError names the forward whose local address cannot be bound (and a port's holder).
func bindError(flag string, s fmt.Stringer, err error) error {
	if pe := (*portmap.PortInUseError)(nil); errors.As(err, &pe) {
		return fmt.Errorf("%s %s: %v; choose another local port", flag, s, pe)
	}
	return fmt.Errorf("%s %s: %w", flag, s, err)
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
