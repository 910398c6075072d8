package apps

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/profiles"
)

// OpenRule makes a saved forward rule live in a connected server's login,
// on exactly the address and port it names (a tunnel Porthole adopts keeps
// its port), next to the app forwards; it returns where it listens (the
// server's side for a remote forward). Opening the same rule again is a
// no-op.
//
// TODO(rules): this is the leaked-tunnel finder's stand-in for the
// per-login registry of saved rules; that registry replaces it.
func (am *Manager) OpenRule(ctx context.Context, id string, rule profiles.ForwardRule) (string, error) {
	spec, err := RuleSpec(rule)
	if err != nil {
		return "", err
	}
	p, l, err := am.login(id)
	if err != nil {
		return "", err
	}
	sa, _ := am.stateFor(id, l)
	sa.fwdMu.Lock()
	defer sa.fwdMu.Unlock()
	am.mu.Lock()
	next := maps.Clone(sa.rules)
	if next == nil {
		next = map[string]agent.ForwardSpec{}
	}
	next[spec.ID] = spec
	set, socks := sa.forwards, sa.sockets
	am.mu.Unlock()
	fctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	infos, err := l.SetForwards(fctx, append(am.specs(p, set, socks), ruleSpecs(next)...))
	info, found := findInfo(infos, spec.ID)
	if err != nil && !errors.Is(err, agent.ErrListen) && !isRemoteListenError(err) {
		return "", fmt.Errorf("set up the forward %s of %s: %w", spec.ID, p.Name, err)
	}
	if !found || info.Error != "" || (info.Addr == "" && spec.Kind() != agent.ForwardRemote) {
		why := "the agent did not report it"
		if found && info.Error != "" {
			why = info.Error
		}
		// Leave the login's forwards as they were.
		am.mu.Lock()
		cur := sa.rules
		am.mu.Unlock()
		_, _ = l.SetForwards(fctx, append(am.specs(p, set, socks), ruleSpecs(cur)...))
		return "", apperr.Mark(fmt.Errorf("cannot listen on %s for %s: %s", specAddr(spec), p.Name, why), apperr.ErrConflict)
	}
	am.mu.Lock()
	sa.rules = next
	am.mu.Unlock()
	am.log.Info("rule forward", "server", p.ID, "id", spec.ID, "addr", info.Addr)
	am.changed()
	return info.Addr, nil
}

// RuleSpec is a rule as the agent's forward spec, named by kind and address.
func RuleSpec(r profiles.ForwardRule) (agent.ForwardSpec, error) {
	host := func(h, def string) string {
		if h == "" {
			return def
		}
		return h
	}
	var fs agent.ForwardSpec
	switch r.Kind {
	case profiles.ForwardLocal:
		fs.Local = forwarder.LocalSpec{BindAddress: host(r.LocalHost, "127.0.0.1"), BindPort: r.LocalPort, TargetHost: host(r.RemoteHost, "localhost"), TargetPort: r.RemotePort}
		if err := fs.Local.Validate(); err != nil {
			return fs, apperr.Mark(err, apperr.ErrBadInput)
		}
	case profiles.ForwardDynamic:
		fs.Dynamic = &forwarder.DynamicSpec{BindAddress: host(r.LocalHost, "127.0.0.1"), BindPort: r.LocalPort}
	case profiles.ForwardRemote:
		fs.Remote = &forwarder.RemoteSpec{BindAddress: r.RemoteHost, BindPort: r.RemotePort, TargetHost: host(r.LocalHost, "localhost"), TargetPort: r.LocalPort,
			NoReclaim: true} // the port's previous holder is not this login's own session
	default:
		return fs, badInput("a %s rule cannot be opened as a raw forward", r.Kind)
	}
	fs.ID = "rule-" + r.Kind.String() + "-" + specAddr(fs)
	return fs, nil
}

func specAddr(fs agent.ForwardSpec) string {
	switch {
	case fs.Remote != nil:
		return fs.Remote.BindAddress + ":" + strconv.Itoa(fs.Remote.BindPort)
	case fs.Dynamic != nil:
		return fs.Dynamic.ListenAddress()
	}
	return fs.Local.ListenAddress()
}

// ruleSpecs are the rules' specs in ID order.
func ruleSpecs(rules map[string]agent.ForwardSpec) []agent.ForwardSpec {
	ids := slices.Sorted(maps.Keys(rules))
	out := make([]agent.ForwardSpec, 0, len(ids))
	for _, id := range ids {
		out = append(out, rules[id])
	}
	return out
}
