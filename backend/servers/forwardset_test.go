package servers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/forwarder"
)

// setLogin is an agent.Login that keeps the forward set it was given, as
// the agent does; a forward on port busyPort cannot listen.
type setLogin struct {
	agent.Login
	mu       sync.Mutex
	keys     []string
	calls    int
	busyPort int
}

func (l *setLogin) SetForwards(_ context.Context, fwds []agent.ForwardSpec) ([]agent.ForwardInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	l.keys = l.keys[:0]
	var infos []agent.ForwardInfo
	var errs []error
	for _, f := range fwds {
		l.keys = append(l.keys, f.Key())
		in := agent.ForwardInfo{ID: f.Key(), Kind: f.Kind(), Spec: f.Endpoint(), Addr: f.Endpoint().ListenAddress()}
		if f.BindPort() == l.busyPort {
			in.Addr, in.Error = "", fmt.Sprintf("listen %s: address already in use", f.Endpoint().ListenAddress())
			errs = append(errs, fmt.Errorf("%w: %s", agent.ErrListen, in.Error))
		}
		infos = append(infos, in)
	}
	return infos, errors.Join(errs...)
}

func (l *setLogin) current() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Sorted(slices.Values(l.keys))
}

func local(id string, port int) agent.ForwardSpec {
	return agent.ForwardSpec{ID: id, Local: forwarder.LocalSpec{BindPort: port, TargetHost: "localhost", TargetPort: 80}}
}

// TestAppsAndRulesForwardsCoexist: the apps and the rules set their
// forwards on one login through their own views; neither replaces the
// other's, and each sees only its own results and listen errors.
func TestAppsAndRulesForwardsCoexist(t *testing.T) {
	ctx := context.Background()
	fake := &setLogin{busyPort: 9999}
	set := newForwardSet(fake)
	apps, rules := set.view(OwnerApps), set.view(OwnerRules)
	if set.view(OwnerApps) != apps {
		t.Fatal("a view must be the same value every time (apps compares logins)")
	}

	web := agent.ForwardSpec{ID: "app:8888", Web: &forwarder.WebSpec{BindAddress: "127.0.0.2", BindPort: 8888, TargetHost: "localhost", TargetPort: 8888}}
	if infos, err := apps.SetForwards(ctx, []agent.ForwardSpec{web}); err != nil || len(infos) != 1 || infos[0].ID != "app:8888" {
		t.Fatalf("apps: %+v, %v", infos, err)
	}
	infos, err := rules.SetForwards(ctx, []agent.ForwardSpec{local("rule:a", 8080), local("rule:b", 8081)})
	if err != nil || len(infos) != 2 {
		t.Fatalf("rules: %+v, %v", infos, err)
	}
	if got := fake.current(); !slices.Equal(got, []string{"app:8888", "rule:a", "rule:b"}) {
		t.Fatalf("login forwards after both = %v", got)
	}
	// The apps replace their set: the rules stay.
	if _, err := apps.SetForwards(ctx, []agent.ForwardSpec{web, local("app:5432", 5432)}); err != nil {
		t.Fatal(err)
	}
	if got := fake.current(); !slices.Equal(got, []string{"app:5432", "app:8888", "rule:a", "rule:b"}) {
		t.Fatalf("after the apps' change = %v", got)
	}
	// The rules drop one: the apps' stay.
	if _, err := rules.SetForwards(ctx, []agent.ForwardSpec{local("rule:b", 8081)}); err != nil {
		t.Fatal(err)
	}
	if got := fake.current(); !slices.Equal(got, []string{"app:5432", "app:8888", "rule:b"}) {
		t.Fatalf("after the rules' change = %v", got)
	}
	// A rule that cannot listen is the rules' error, not the apps'.
	infos, err = rules.SetForwards(ctx, []agent.ForwardSpec{local("rule:b", 8081), local("rule:busy", 9999)})
	if !errors.Is(err, agent.ErrListen) || len(infos) != 2 || infos[1].Error == "" {
		t.Fatalf("busy rule: %+v, %v", infos, err)
	}
	if infos, err := apps.SetForwards(ctx, []agent.ForwardSpec{web}); err != nil || len(infos) != 1 {
		t.Fatalf("the apps saw the rules' listen error: %+v, %v", infos, err)
	}
	// A bad spec or another owner's key is refused before the agent is
	// called, so it cannot take the other owner's forwards down.
	calls := fake.calls
	if _, err := rules.SetForwards(ctx, []agent.ForwardSpec{{ID: "rule:bad"}}); !errors.Is(err, agent.ErrBadLoginSpec) {
		t.Fatalf("bad spec: %v", err)
	}
	if _, err := rules.SetForwards(ctx, []agent.ForwardSpec{web}); !errors.Is(err, agent.ErrBadLoginSpec) {
		t.Fatalf("the apps' key taken by the rules: %v", err)
	}
	if fake.calls != calls {
		t.Fatal("a refused set reached the agent")
	}
	if got := fake.current(); !slices.Contains(got, "app:8888") || !slices.Contains(got, "rule:busy") {
		t.Fatalf("after refused sets = %v", got)
	}
	if err := rules.Close(); err != nil {
		t.Fatal(err)
	}
}
