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
	"github.com/porthole-app/porthole/backend/servers"
)

// Servers is what adoption needs of the server logins (servers.Manager).
type Servers interface {
	Summaries() []servers.ServerSummary
	Get(id string) (profiles.Profile, error)
	Add(p profiles.Profile) (profiles.Profile, error)
	Update(p profiles.Profile) (profiles.Profile, error)
	ImportCandidates() (servers.ImportList, error)
	ImportServers(aliases []string, link bool) (servers.ImportResult, error)
	// ResolveHost resolves a host through ~/.ssh/config like the import.
	ResolveHost(host string) (profiles.Resolved, error)
	Connect(id string) (servers.ServerSummary, error)
}

// Rules makes a saved forward rule live in a connected server's login, on
// exactly the address and port the rule names.
//
// TODO(rules): the per-login forward registry of saved rules (h-rules)
// implements this; until it lands, apps.Manager.OpenRule does, as a raw
// forward kept next to the app forwards.
type Rules interface {
	OpenRule(ctx context.Context, serverID string, rule profiles.ForwardRule) (addr string, err error)
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
	Addr  string               `json:"addr,omitempty"` // where Porthole listens (the server's side for -R)
	Error string               `json:"error,omitempty"`
}

// rebindWait is how long Adopt keeps trying to bind a port the ended ssh
// held (its sockets close as it exits).
const rebindWait = 5 * time.Second

// Adopt takes one of this user's tunnels over: the tunnel's host gets a
// profile (an existing one, or one made from its ~/.ssh/config entry like
// the import does), Porthole connects it, saves each forward as a rule of
// that profile, ends the ssh, and then makes each forward on the same
// address and port, so its clients keep working. Nothing is ended when the
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
	rules := make([]profiles.ForwardRule, 0, len(t.Forwards))
	for _, fw := range t.Forwards {
		rules = append(rules, RuleFor(fw, cmd.GatewayPorts, fmt.Sprintf("adopted from %s PID %d", t.Program, t.PID)))
	}

	p, created, err := f.serverFor(cmd)
	if err != nil {
		return Adopted{}, fmt.Errorf("a server for %s: %w", cmd.Destination, err)
	}
	res := Adopted{PID: t.PID, ServerID: p.ID, ServerName: p.Name, CreatedServer: created}
	if _, err := f.servers.Connect(p.ID); err != nil {
		return res, fmt.Errorf("connect %s before taking the tunnel over (the ssh keeps running): %w", p.Name, err)
	}
	if p, err = f.saveRules(p, rules); err != nil {
		return res, fmt.Errorf("save the forwards in %s (the ssh keeps running): %w", p.Name, err)
	}
	if res.Ended, err = f.End(ctx, pid); err != nil {
		return res, fmt.Errorf("end the ssh: %w", err)
	}
	var failed []string
	for _, r := range rules {
		af := AdoptedForward{Rule: r}
		af.Addr, err = f.openRule(ctx, p.ID, r)
		if err != nil {
			af.Error = err.Error()
			failed = append(failed, fmt.Sprintf("%s %s: %v", r.Kind, ruleAddr(r), err))
		}
		res.Forwards = append(res.Forwards, af)
	}
	f.log.Info("adopted a tunnel", "pid", pid, "server", p.ID, "forwards", len(rules), "failed", len(failed))
	if len(failed) > 0 {
		return res, mark(fmt.Errorf("the ssh was ended and its forwards are saved in %s, but Porthole could not make %s; open them again from the server's page", p.Name, strings.Join(failed, "; ")), apperr.ErrConflict)
	}
	return res, nil
}

// openRule makes r live, trying again while the ended ssh's port is not free yet.
func (f *Finder) openRule(ctx context.Context, id string, r profiles.ForwardRule) (string, error) {
	deadline := time.Now().Add(rebindWait)
	for {
		addr, err := f.rules.OpenRule(ctx, id, r)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return addr, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
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

// saveRules adds the rules the profile does not have yet.
func (f *Finder) saveRules(p profiles.Profile, rules []profiles.ForwardRule) (profiles.Profile, error) {
	changed := false
	for _, r := range rules {
		if !slices.ContainsFunc(p.Forwards, func(o profiles.ForwardRule) bool { return sameRule(o, r) }) {
			p.Forwards = append(p.Forwards, r)
			changed = true
		}
	}
	if !changed {
		return p, nil
	}
	return f.servers.Update(p)
}

func sameRule(a, b profiles.ForwardRule) bool {
	a.Label, b.Label = "", ""
	return a == b
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
