package servers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/porthole-app/porthole/backend/agent"
)

// Owners of a login's forwards: each sets its own group through its view
// of the login (Manager.LoginFor), and the groups never clobber each other.
const (
	// OwnerApps: the apps' web and raw forwards (Manager.Login).
	OwnerApps = "apps"
	// OwnerRules: the server's saved forward rules (backend/rules).
	OwnerRules = "rules"
)

// forwardSet is the one place that owns a login's whole forward set.
// agent.Login.SetForwards replaces every forward of the login, so several
// rooms cannot call it directly without undoing each other's forwards:
// each calls it through an ownedLogin instead, which replaces only its
// owner's group and hands the agent the union of every group.
type forwardSet struct {
	l agent.Login

	mu     sync.Mutex // serializes SetForwards on l
	groups map[string][]agent.ForwardSpec
	views  map[string]*ownedLogin
}

func newForwardSet(l agent.Login) *forwardSet {
	return &forwardSet{l: l, groups: map[string][]agent.ForwardSpec{}, views: map[string]*ownedLogin{}}
}

// view is owner's login; the same value every time (callers compare logins
// to notice a new agent).
func (s *forwardSet) view(owner string) *ownedLogin {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.views[owner]
	if v == nil {
		v = &ownedLogin{Login: s.l, set: s, owner: owner}
		s.views[owner] = v
	}
	return v
}

// set replaces owner's forwards with fwds and returns their ForwardInfos.
// A bad spec or a key another owner uses is refused before the agent sees
// anything, so one owner's mistake never takes another's forwards down.
// The error wraps agent.ErrListen when some of owner's forwards could not
// listen (the others' failures are theirs, not reported here).
func (s *forwardSet) set(ctx context.Context, owner string, fwds []agent.ForwardSpec) ([]agent.ForwardInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mine := make(map[string]bool, len(fwds))
	for _, f := range fwds {
		if err := f.Validate(); err != nil {
			return nil, fmt.Errorf("%w: forward %q: %w", agent.ErrBadLoginSpec, f.Key(), err)
		}
		if mine[f.Key()] {
			return nil, fmt.Errorf("%w: forward %q is listed twice", agent.ErrBadLoginSpec, f.Key())
		}
		mine[f.Key()] = true
	}
	owners := slices.Sorted(maps.Keys(s.groups))
	var all []agent.ForwardSpec
	for _, o := range owners {
		if o == owner {
			continue
		}
		for _, f := range s.groups[o] {
			if mine[f.Key()] {
				return nil, fmt.Errorf("%w: forward %q is already one of the %s forwards of this login", agent.ErrBadLoginSpec, f.Key(), o)
			}
			all = append(all, f)
		}
	}
	all = append(all, fwds...)
	infos, err := s.l.SetForwards(ctx, all)
	if err != nil && !errors.Is(err, agent.ErrListen) {
		return nil, err
	}
	s.groups[owner] = slices.Clone(fwds)
	if len(fwds) == 0 {
		delete(s.groups, owner)
	}
	out := make([]agent.ForwardInfo, 0, len(fwds))
	var failed []string
	for _, in := range infos {
		if !mine[in.ID] {
			continue
		}
		out = append(out, in)
		if in.Error != "" {
			failed = append(failed, in.Error)
		}
	}
	if len(failed) > 0 {
		return out, fmt.Errorf("%w: %s", agent.ErrListen, strings.Join(failed, "; "))
	}
	return out, nil
}

// ownedLogin is one owner's view of a login: SetForwards replaces only that
// owner's forwards; Close is the runner's, not the owner's, and does
// nothing. Everything else is the login's.
type ownedLogin struct {
	agent.Login
	set   *forwardSet
	owner string
}

// SetForwards replaces this owner's forwards (see forwardSet.set).
func (o *ownedLogin) SetForwards(ctx context.Context, fwds []agent.ForwardSpec) ([]agent.ForwardInfo, error) {
	return o.set.set(ctx, o.owner, fwds)
}

// Close does nothing: the server's runner closes the login (Disconnect).
func (o *ownedLogin) Close() error { return nil }
