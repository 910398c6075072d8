package leaks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/backend/rules"
	"github.com/porthole-app/porthole/backend/servers"
)

// Servers is what adoption needs of the server logins (servers.Manager).
type Servers interface {
	Summaries() []servers.ServerSummary
	Get(id string) (profiles.Profile, error)
	Add(p profiles.Profile) (profiles.Profile, error)
	ImportCandidates() (servers.ImportList, error)
	ImportServers(aliases []string, link bool) (servers.ImportResult, error)
	// ResolveHost resolves a host through ~/.ssh/config like the import.
	ResolveHost(host string) (profiles.Resolved, error)
	Connect(id string) (servers.ServerSummary, error)
}

// Rules are the servers' saved forward rules (rules.Manager): Add and
// Update save a rule and start it when its server is connected.
type Rules interface {
	Add(serverID string, r profiles.ForwardRule) (profiles.ForwardRule, error)
	Update(serverID string, r profiles.ForwardRule) (profiles.ForwardRule, error)
	List(serverID string) (rules.RuleList, error)
}

// Adopted is what Adopt did.
type Adopted struct {
	PID           int32            `json:"pid"`
	ServerID      string           `json:"serverId"`
	ServerName    string           `json:"serverName"`
	CreatedServer bool             `json:"createdServer"` // a profile was made for the tunnel's host
	Forwards      []AdoptedForward `json:"forwards"`
	Ended         Ended            `json:"ended"`
}

// AdoptedForward is one forward Porthole took over.
type AdoptedForward struct {
	Rule  profiles.ForwardRule `json:"rule"`
	Addr  string               `json:"addr,omitempty"` // where Porthole listens (for -R: the server's side)
	Error string               `json:"error,omitempty"`
}

// rebindWait is how long Adopt waits for each rule to listen on the port
// the ended ssh held, starting it again while the port is not free yet.
const rebindWait = 10 * time.Second

// Adopt takes one of this user's tunnels over: the tunnel's host gets a
// profile (an existing one, or one made from its ~/.ssh/config entry like
// the import does), Porthole connects it, ends the ssh, and saves each
// forward as a rule of that profile on the same address and port, which
// starts it at once, so its clients keep working. Nothing is ended when the
// server cannot be connected.
func (f *Finder) Adopt(ctx context.Context, pid int) (Adopted, error) {
	if _, _, err := f.ownTunnelProcess(ctx, pid); err != nil {
		return Adopted{}, err
	}
	if f.servers == nil || f.rules == nil {
		return Adopted{}, mark(errors.New("adopting tunnels is not available in this mode"), apperr.ErrUnavailable)
	}
	list, err := f.List(ctx)
	if err != nil {
		return Adopted{}, err
	}
	i := slices.IndexFunc(list.Tunnels, func(t Tunnel) bool { return t.PID == int32(pid) })
	if i < 0 {
		return Adopted{}, mark(fmt.Errorf("PID %d holds no forward: %w", pid, ErrNotAdoptable), apperr.ErrBadInput)
	}
	t := list.Tunnels[i]
	if !t.Adoptable {
		return Adopted{}, mark(fmt.Errorf("%s (PID %d): %w: Porthole cannot read all of its forwards from its command line; end it and make them in Porthole instead", t.Program, pid, ErrNotAdoptable), apperr.ErrBadInput)
	}
	cmd := t.cmd
	adopt := make([]profiles.ForwardRule, 0, len(t.Forwards))
	for _, fw := range t.Forwards {
		adopt = append(adopt, RuleFor(fw, cmd.GatewayPorts, fmt.Sprintf("adopted from %s PID %d", t.Program, t.PID)))
	}

	p, created, err := f.serverFor(cmd)
	if err != nil {
		return Adopted{}, fmt.Errorf("a server for %s: %w", cmd.Destination, err)
	}
	res := Adopted{PID: t.PID, ServerID: p.ID, ServerName: p.Name, CreatedServer: created}
	if _, err := f.servers.Connect(p.ID); err != nil {
		return res, fmt.Errorf("connect %s before taking the tunnel over (the ssh keeps running): %w", p.Name, err)
	}
	if res.Ended, err = f.End(ctx, pid); err != nil {
		return res, fmt.Errorf("end the ssh: %w", err)
	}
	var failed []string
	for _, r := range adopt {
		af := AdoptedForward{Rule: r}
		af.Rule, af.Addr, err = f.startRule(ctx, p, r)
		if err != nil {
			af.Error = err.Error()
			failed = append(failed, fmt.Sprintf("%s %s: %v", r.Kind, ruleAddr(r), err))
		}
		res.Forwards = append(res.Forwards, af)
	}
	f.log.Info("adopted a tunnel", "pid", pid, "server", p.ID, "forwards", len(adopt), "failed", len(failed))
	if len(failed) > 0 {
		return res, mark(fmt.Errorf("the ssh was ended, but in %s Porthole could not make %s; see the server's rules", p.Name, strings.Join(failed, "; ")), apperr.ErrConflict)
	}
	return res, nil
}

// startRule saves r as a rule of p (or reuses p's rule with the same ends)
// and waits until it listens; while the ended ssh's port is not free yet,
// it starts the rule again.
func (f *Finder) startRule(ctx context.Context, p profiles.Profile, r profiles.ForwardRule) (profiles.ForwardRule, string, error) {
	var err error
	if i := slices.IndexFunc(p.Forwards, func(o profiles.ForwardRule) bool { return sameRule(o, r) }); i >= 0 {
		r, err = f.rules.Update(p.ID, p.Forwards[i]) // saved already: start it again, now that the port is free
	} else {
		r, err = f.rules.Add(p.ID, r)
	}
	if err != nil {
		return r, "", err
	}
	deadline := time.Now().Add(rebindWait)
	for {
		st, found := f.ruleStatus(p.ID, r.ID)
		switch {
		case found && st.State == rules.RuleListening:
			return r, st.Local, nil
		case time.Now().After(deadline) || ctx.Err() != nil:
			why := "it did not start"
			if found && st.Reason != "" {
				why = st.Reason
			}
			return r, "", errors.New(why)
		case found && (st.State == rules.RuleFailed || st.State == rules.RuleRefused):
			if r2, err := f.rules.Update(p.ID, r); err == nil { // again, in case the port was still closing
				r = r2
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (f *Finder) ruleStatus(serverID, ruleID string) (rules.RuleStatus, bool) {
	l, err := f.rules.List(serverID)
	if err != nil {
		return rules.RuleStatus{}, false
	}
	for _, st := range l.Rules {
		if st.Rule.ID == ruleID {
			return st, true
		}
	}
	return rules.RuleStatus{}, false
}

func ruleAddr(r profiles.ForwardRule) string {
	if r.Kind == profiles.ForwardRemote {
		return fmt.Sprintf("%s:%d on the server", r.RemoteHost, r.RemotePort)
	}
	return fmt.Sprintf("%s:%d", r.LocalHost, r.LocalPort)
}

// RuleFor is a tunnel's forward as a Porthole rule on the same address and
// port. ssh's "no address" is loopback (every interface with -g), "*" every
// interface.
func RuleFor(fw Forward, gateway bool, label string) profiles.ForwardRule {
	r := profiles.ForwardRule{Label: label}
	switch fw.Kind {
	case ForwardLocal, ForwardDynamic:
		r.Kind, r.LocalHost, r.LocalPort = profiles.ForwardLocal, localBind(fw.BindHost, gateway), fw.Port
		if fw.Kind == ForwardDynamic {
			r.Kind = profiles.ForwardDynamic
		} else {
			r.RemoteHost, r.RemotePort = fw.TargetHost, fw.TargetPort
		}
	case ForwardRemote:
		r.Kind, r.RemotePort, r.LocalHost, r.LocalPort = profiles.ForwardRemote, fw.Port, fw.TargetHost, fw.TargetPort
		switch fw.BindHost {
		case "", "localhost":
		case "*":
			r.RemoteHost = "0.0.0.0"
		default:
			r.RemoteHost = fw.BindHost
		}
	}
	return r
}

func localBind(bind string, gateway bool) string {
	switch bind {
	case "":
		if gateway {
			return "0.0.0.0"
		}
		return "127.0.0.1"
	case "*":
		return "0.0.0.0"
	case "localhost":
		return "127.0.0.1"
	}
	return bind
}

// sameRule: a and b have the same kind and ends (labels aside).
func sameRule(a, b profiles.ForwardRule) bool {
	return a.Kind == b.Kind && a.LocalHost == b.LocalHost && a.LocalPort == b.LocalPort && a.RemoteHost == b.RemoteHost && a.RemotePort == b.RemotePort
}

// serverFor finds the profile for a tunnel's destination, or makes one: the
// ~/.ssh/config Host entry it names is imported (linked to its alias) when
// the command line overrides none of it; otherwise a profile is made from
// what ssh_config resolves for the host with the command line's -l, -p, -J
// and -i on top.
func (f *Finder) serverFor(c Command) (profiles.Profile, bool, error) {
	want, err := f.wantProfile(c)
	if err != nil {
		return profiles.Profile{}, false, err
	}
	alias := ""
	if l, err := f.servers.ImportCandidates(); err == nil {
		for _, cand := range l.Candidates {
			if cand.Alias == c.Host && cand.ResolveError == "" && overridesNone(c, cand.ToProfile(true)) {
				alias = c.Host
			}
		}
	}
	for _, s := range f.servers.Summaries() {
		if alias != "" && s.SSHConfigAlias == alias || alias == "" && s.SSHConfigAlias == "" && s.Host == want.Host && s.Port == want.Port && s.User == want.User {
			p, err := f.servers.Get(s.ID)
			return p, false, err
		}
	}
	if alias != "" {
		res, err := f.servers.ImportServers([]string{alias}, true)
		if err != nil {
			return profiles.Profile{}, false, err
		}
		if len(res.Added) == 1 {
			return res.Added[0], true, nil
		}
		if len(res.Skipped) > 0 {
			return profiles.Profile{}, false, mark(fmt.Errorf("import %s from ~/.ssh/config: %s", alias, res.Skipped[0].Reason), apperr.ErrBadInput)
		}
	}
	p, err := f.servers.Add(want)
	return p, err == nil, err
}

// wantProfile is the profile a command line describes, resolved through
// ~/.ssh/config.
func (f *Finder) wantProfile(c Command) (profiles.Profile, error) {
	res, err := f.servers.ResolveHost(c.Host)
	if err != nil {
		return profiles.Profile{}, mark(fmt.Errorf("resolve %s through ~/.ssh/config: %w", c.Host, err), apperr.ErrBadInput)
	}
	p := profiles.Candidate{Alias: c.Host, Resolved: res}.ToProfile(false)
	if c.User != "" {
		p.User = c.User
	}
	if c.Port != 0 {
		p.Port = c.Port
	}
	if c.Jump != "" {
		p.JumpHosts = nil
		if !strings.EqualFold(c.Jump, "none") {
			for _, h := range strings.Split(c.Jump, ",") {
				if h = strings.TrimSpace(h); h != "" {
					p.JumpHosts = append(p.JumpHosts, h)
				}
			}
		}
	}
	if c.Identity != "" {
		p.KeyPath = c.Identity
	}
	return p, nil
}

// overridesNone: the command line's -l, -p, -J and -i agree with the alias.
func overridesNone(c Command, p profiles.Profile) bool {
	return (c.User == "" || c.User == p.User) && (c.Port == 0 || c.Port == p.Port) &&
		(c.Jump == "" || c.Jump == strings.Join(p.JumpHosts, ",")) && (c.Identity == "" || c.Identity == p.KeyPath)
}
