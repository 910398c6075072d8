package notify

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/apps"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/prompts"
	"github.com/porthole-app/porthole/backend/servers"
	"github.com/porthole-app/porthole/backend/settings"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeSender records what was sent; fail makes it refuse (toasts then).
type fakeSender struct {
	mu   sync.Mutex
	sent []Notification
	acts []func()
	fail bool
}

func (s *fakeSender) Send(_ context.Context, n Notification, onAction func()) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return ErrNoDesktop
	}
	s.sent = append(s.sent, n)
	s.acts = append(s.acts, onAction)
	return nil
}

func (s *fakeSender) all() []Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Notification(nil), s.sent...)
}

type fakeServers struct{ connecting map[string]bool }

func (f fakeServers) UserConnecting(id string) bool { return f.connecting[id] }

type unitRig struct {
	n      *Notifier
	clock  *fakeClock
	sender *fakeSender
	bus    *events.Bus
	toasts []Notification
	opens  []OpenRequest
}

func newUnitRig(t *testing.T, o Options) *unitRig {
	t.Helper()
	r := &unitRig{clock: &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, sender: &fakeSender{}, bus: events.New()}
	o.Bus, o.Now = r.bus, r.clock.Now
	if o.Sender == nil {
		o.Sender = r.sender
	}
	events.Subscribe(r.bus, TopicToast, func(n Notification) { r.toasts = append(r.toasts, n) })
	events.Subscribe(r.bus, TopicOpen, func(o OpenRequest) { r.opens = append(r.opens, o) })
	r.n = New(o)
	return r
}

// flush sends what is queued (the send loop's work, in the test's goroutine).
func (r *unitRig) flush() []Notification {
	r.n.drain(context.Background())
	return r.sender.all()
}

func list(ss ...servers.ServerSummary) servers.ServerList { return servers.ServerList{Servers: ss} }

func srv(state servers.ServerState) servers.ServerSummary {
	s := servers.ServerSummary{ID: "s1", Name: "gpu1", State: state}
	if state == servers.ServerReconnecting || state == servers.ServerFailed {
		s.LastError = &servers.ServerError{Kind: servers.ErrorConnectionLost, Message: "The connection was lost: EOF."}
	}
	return s
}

func kinds(ns []Notification) []Kind {
	out := make([]Kind, len(ns))
	for i, n := range ns {
		out[i] = n.Kind
	}
	return out
}

// TestUnreachableAfter30s: the real rule (30 s) on a fake clock: nothing at
// 29 s of outage, "unreachable" once past 30 s, "back" when it reconnects,
// and nothing for a short blip or for a server the person disconnected.
func TestUnreachableAfter30s(t *testing.T) {
	r := newUnitRig(t, Options{})
	r.n.onServers(list(srv(servers.ServerConnected)))
	r.n.onServers(list(srv(servers.ServerReconnecting)))
	r.clock.Add(10 * time.Second)
	r.n.onServers(list(srv(servers.ServerFailed)))
	r.clock.Add(19 * time.Second)
	r.n.tick()
	if got := r.flush(); len(got) != 0 {
		t.Fatalf("after 29 s down: sent %v; want nothing before 30 s", got)
	}
	r.clock.Add(2 * time.Second)
	r.n.tick()
	r.n.tick()
	got := r.flush()
	if len(got) != 1 || got[0].Kind != KindUnreachable || got[0].Title != "gpu1 is unreachable" || !strings.Contains(got[0].Body, "31 s ago") {
		t.Fatalf("after 31 s down: sent %+v; want one unreachable naming 31 s", got)
	}
	r.clock.Add(5 * time.Second)
	r.n.onServers(list(srv(servers.ServerConnected)))
	got = r.flush()
	if len(got) != 2 || got[1].Kind != KindBack || !strings.Contains(got[1].Body, "after 36 s") {
		t.Fatalf("back: sent %+v; want back after 36 s", got)
	}

	// A blip shorter than the threshold: neither.
	r.clock.Add(2 * time.Minute)
	r.n.onServers(list(srv(servers.ServerReconnecting)))
	r.clock.Add(20 * time.Second)
	r.n.tick()
	r.n.onServers(list(srv(servers.ServerConnected)))
	if got := r.flush(); len(got) != 2 {
		t.Fatalf("a 20 s blip sent %v", got[2:])
	}

	// Disconnected by the person while down: no back, no unreachable.
	r.n.onServers(list(srv(servers.ServerReconnecting)))
	r.n.onServers(list(srv(servers.ServerDisconnected)))
	r.clock.Add(time.Minute)
	r.n.tick()
	r.n.onServers(list(srv(servers.ServerConnected)))
	if got := r.flush(); len(got) != 2 {
		t.Fatalf("after a disconnect: sent %v", got[2:])
	}

	// Never connected (a first connect that fails): nothing.
	r2 := newUnitRig(t, Options{})
	r2.n.onServers(list(srv(servers.ServerConnecting)))
	r2.n.onServers(list(srv(servers.ServerFailed)))
	r2.clock.Add(time.Minute)
	r2.n.tick()
	if got := r2.flush(); len(got) != 0 {
		t.Fatalf("a failed first connect sent %v", got)
	}
}

// TestLostWhileIdleCountsOnceARedialFails: a connection lost while unused
// (idle) is an outage from the loss on, but only once a redial failed.
func TestLostWhileIdleCountsOnceARedialFails(t *testing.T) {
	r := newUnitRig(t, Options{})
	r.n.onServers(list(srv(servers.ServerConnected)))
	idle := srv(servers.ServerIdle)
	idle.LastError = &servers.ServerError{Kind: servers.ErrorConnectionLost}
	r.n.onServers(list(idle))
	r.clock.Add(time.Minute)
	r.n.tick()
	if got := r.flush(); len(got) != 0 {
		t.Fatalf("idle after a loss, nobody redialed: sent %v", got)
	}
	r.n.onServers(list(srv(servers.ServerFailed)))
	if got := r.flush(); len(got) != 1 || got[0].Kind != KindUnreachable || !strings.Contains(got[0].Body, "1 min ago") {
		t.Fatalf("the redial failed 1 min after the loss: sent %+v; want unreachable since 1 min", got)
	}
}

// TestRateLimit: the same notification (kind, server, port) goes out at
// most once a minute; another server or port is another notification.
func TestRateLimit(t *testing.T) {
	r := newUnitRig(t, Options{})
	send := func(server string, port int) {
		r.n.mu.Lock()
		r.n.queueLocked(Notification{Kind: KindNewApp, ServerID: server, Port: port, Title: "x"}, r.clock.Now())
		r.n.mu.Unlock()
	}
	send("s1", 6006)
	send("s1", 6006)
	send("s1", 8888)
	send("s2", 6006)
	r.clock.Add(59 * time.Second)
	send("s1", 6006)
	if got := r.flush(); len(got) != 3 {
		t.Fatalf("sent %d within the minute; want 3 (one per server and port): %v", len(got), got)
	}
	r.clock.Add(time.Second)
	send("s1", 6006)
	if got := r.flush(); len(got) != 4 {
		t.Fatalf("a minute later: sent %d in all; want 4", len(got))
	}
	// The limiter alone, on its edges.
	l := newLimiter(time.Minute)
	t0 := time.Unix(1000, 0)
	for _, c := range []struct {
		at   time.Duration
		want bool
	}{{0, true}, {time.Second, false}, {59*time.Second + 999*time.Millisecond, false}, {time.Minute, true}, {time.Minute + time.Second, false}, {-time.Hour, true}} {
		if got := l.allow("k", t0.Add(c.at)); got != c.want {
			t.Errorf("allow at %v = %v; want %v", c.at, got, c.want)
		}
	}
}

// TestSwitchedOffKindsAreNotSent: a kind switched off in the settings is
// not sent (and does not use up its minute).
func TestSwitchedOffKindsAreNotSent(t *testing.T) {
	sf, err := settings.Open(filepath.Join(t.TempDir(), "settings.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sf.SetNotify("server-down", false); err != nil {
		t.Fatal(err)
	}
	r := newUnitRig(t, Options{Settings: sf})
	r.n.onServers(list(srv(servers.ServerConnected)))
	r.n.onServers(list(srv(servers.ServerFailed)))
	r.clock.Add(time.Minute)
	r.n.tick()
	r.n.AgentEvent("s1", agent.AgentEvent{Kind: agent.AgentFailed, Message: "boom"})
	got := r.flush()
	if len(got) != 1 || got[0].Kind != KindAgentCrashLoop {
		t.Fatalf("sent %v; want only the agent notification (server-down is off)", kinds(got))
	}
}

// TestNeedsYouOnlyForBackgroundQuestions: a question asked while the
// person's Connect runs is not a notification; one asked by a background
// reconnect is, once; a changed host key that stops the reconnect is too.
func TestNeedsYouOnlyForBackgroundQuestions(t *testing.T) {
	fs := fakeServers{connecting: map[string]bool{"s1": true}}
	r := newUnitRig(t, Options{Servers: fs})
	q := prompts.Prompt{ID: "p1", ServerID: "s1", ServerName: "gpu1", Kind: prompts.PromptKeyboardInteractive}
	r.n.onPrompts([]prompts.Prompt{q})
	if got := r.flush(); len(got) != 0 {
		t.Fatalf("a question of the person's Connect sent %v", got)
	}
	fs.connecting["s1"] = false
	q2 := q
	q2.ID = "p2"
	r.n.onPrompts([]prompts.Prompt{q, q2})
	r.n.onPrompts([]prompts.Prompt{q, q2})
	got := r.flush()
	if len(got) != 1 || got[0].Kind != KindNeedsYou || got[0].Body != "gpu1 needs your one-time code to reconnect." {
		t.Fatalf("background question: sent %+v; want one needs-you for the one-time code", got)
	}
	r.clock.Add(time.Minute)
	r.n.onServers(list(srv(servers.ServerConnected)))
	hk := srv(servers.ServerFailed)
	hk.LastError = &servers.ServerError{Kind: servers.ErrorHostKeyChanged, Message: "changed"}
	r.n.onServers(list(hk))
	r.n.onServers(list(hk))
	got = r.flush()
	if len(got) != 2 || got[1].Kind != KindNeedsYou || !strings.Contains(got[1].Body, "host key changed") {
		t.Fatalf("changed host key: sent %+v", got)
	}
}

// TestAgentCrashLoop: three restarts within five minutes are a crash loop;
// restarts spread wider are not; AgentFailed always is.
func TestAgentCrashLoop(t *testing.T) {
	r := newUnitRig(t, Options{})
	r.n.onServers(list(srv(servers.ServerConnected)))
	restart := func() { r.n.AgentEvent("s1", agent.AgentEvent{Kind: agent.AgentRestarted}) }
	restart()
	r.clock.Add(3 * time.Minute)
	restart()
	r.clock.Add(3 * time.Minute) // the first is now 6 min old
	restart()
	if got := r.flush(); len(got) != 0 {
		t.Fatalf("restarts 3 min apart sent %v", got)
	}
	r.clock.Add(time.Minute)
	restart()
	got := r.flush()
	if len(got) != 1 || got[0].Kind != KindAgentCrashLoop || !strings.Contains(got[0].Body, "crashed 3 times") {
		t.Fatalf("3 restarts in 4 min: sent %+v", got)
	}
	r.clock.Add(2 * time.Minute)
	r.n.AgentEvent("s1", agent.AgentEvent{Kind: agent.AgentFailed, Message: "gave up"})
	if got := r.flush(); len(got) != 2 || !strings.Contains(got[1].Body, "gave up") {
		t.Fatalf("failed: sent %+v", got)
	}
}

func appList(ports ...int) apps.AppList {
	l := apps.AppList{ServerID: "s1"}
	for _, p := range ports {
		l.Services = append(l.Services, apps.AppService{Port: p, IsWeb: p != 5432, Title: "TensorBoard", KindName: "TensorBoard"})
	}
	return l
}

// TestNewApps: the first listing after connect is the baseline; a new web
// port notifies (with its label), an ephemeral, ignored or non-web one does
// not, an "open-tab" port asks the window to open it, and a reconnect after
// a disconnect takes a new baseline.
func TestNewApps(t *testing.T) {
	rules, _ := OpenRules("")
	r := newUnitRig(t, Options{Config: Config{Rules: rules}})
	r.n.onApps(appList(8888)) // not connected yet: ignored
	r.n.onServers(list(srv(servers.ServerConnected)))
	r.n.onApps(appList(8888, 6006))
	if got := r.flush(); len(got) != 0 {
		t.Fatalf("the baseline sent %v", got)
	}
	if _, err := r.n.SetAppAttributes("s1", 7000, AppAttributes{Label: "My board"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.n.SetAppAttributes("s1", 7001, AppAttributes{OnAppear: OnAppearOpenTab}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.n.SetAppAttributes("s1", 40001, AppAttributes{OnAppear: OnAppearNotify}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.n.SetIgnoredPorts("s1", "9000-9100", false); err != nil {
		t.Fatal(err)
	}
	r.n.onApps(appList(8888, 6006, 7000, 7001, 9050, 40000, 40001, 5432))
	got := r.flush()
	if len(got) != 2 || got[0].Body != "My board appeared on gpu1 (port 7000)" || got[0].Action != "Open" || got[1].Port != 40001 {
		t.Fatalf("new ports: sent %+v; want 7000 (labelled) and 40001 (set to notify)", got)
	}
	if len(r.opens) != 1 || r.opens[0].Port != 7001 || r.opens[0].Show {
		t.Fatalf("open-tab port: open requests %+v; want one for 7001 without Show", r.opens)
	}
	// The person clicks Open: the window opens the app.
	r.sender.acts[0]()
	if len(r.opens) != 2 || r.opens[1].Port != 7000 || !r.opens[1].Show {
		t.Fatalf("after a click: %+v", r.opens)
	}
	// Gone and back within the minute: once only.
	r.n.onApps(appList(8888))
	r.n.onApps(appList(8888, 7000))
	if got := r.flush(); len(got) != 2 {
		t.Fatalf("a port that came back within the minute notified again: %v", got[2:])
	}
	// A listing that failed keeps the last services: nothing new.
	bad := appList(8888, 7000, 6543)
	bad.Error = "listing failed"
	r.n.onApps(bad)
	// Disconnect, connect: the next listing is a new baseline.
	r.n.onServers(list(srv(servers.ServerDisconnected)))
	r.n.onServers(list(srv(servers.ServerConnected)))
	r.clock.Add(2 * time.Minute)
	r.n.onApps(appList(8888, 6543))
	if got := r.flush(); len(got) != 2 {
		t.Fatalf("a new baseline after reconnect sent %v", got[2:])
	}
	r.n.onApps(appList(8888, 6543, 6544))
	if got := r.flush(); len(got) != 3 || got[2].Port != 6544 {
		t.Fatalf("after the new baseline: %+v", got)
	}
}

// TestToastWhenTheDesktopCannotShowIt: a notification the desktop refuses
// becomes a toast in the window.
func TestToastWhenTheDesktopCannotShowIt(t *testing.T) {
	r := newUnitRig(t, Options{})
	r.sender.fail = true
	r.n.AgentEvent("s1", agent.AgentEvent{Kind: agent.AgentFailed, Message: "x"})
	r.flush()
	if len(r.toasts) != 1 || r.toasts[0].Kind != KindAgentCrashLoop || r.toasts[0].ID == 0 {
		t.Fatalf("toasts %+v; want the agent notification", r.toasts)
	}
}

// TestAppRulesNeedAKnownServer: the facade's rules are refused for an
// unknown server, a bad port or a bad label.
func TestAppRulesNeedAKnownServer(t *testing.T) {
	r := newUnitRig(t, Options{})
	if _, err := r.n.SetAppAttributes("nope", 80, AppAttributes{}); !errors.Is(err, apperr.ErrNotFound) {
		t.Fatalf("unknown server: %v", err)
	}
	r.n.onServers(list(srv(servers.ServerDisconnected)))
	for _, c := range []struct {
		port int
		a    AppAttributes
	}{{0, AppAttributes{}}, {65536, AppAttributes{}}, {80, AppAttributes{Label: "a\nb"}}, {80, AppAttributes{Label: strings.Repeat("x", 81)}}, {80, AppAttributes{OnAppear: 9}}} {
		if _, err := r.n.SetAppAttributes("s1", c.port, c.a); !errors.Is(err, apperr.ErrBadInput) {
			t.Errorf("SetAppAttributes(%d, %+v) = %v; want bad input", c.port, c.a, err)
		}
	}
	if _, err := r.n.SetIgnoredPorts("s1", "9000-", false); !errors.Is(err, apperr.ErrBadInput) {
		t.Errorf("bad range: %v", err)
	}
	if a, err := r.n.SetAppAttributes("s1", 80, AppAttributes{Label: "  Web  ", OnAppear: OnAppearIgnore}); err != nil || a.Label != "Web" {
		t.Errorf("set: %+v, %v", a, err)
	}
	if a, err := r.n.AppAttributes("s1", 80); err != nil || a.OnAppear != OnAppearIgnore {
		t.Errorf("get: %+v, %v", a, err)
	}
}

// TestBackgroundNoticeOnce (issue 13): the first close that hides the
// window says Porthole keeps running; it has no switch of its own, and a
// second hide within the minute is not repeated.
func TestBackgroundNoticeOnce(t *testing.T) {
	sf, err := settings.Open(filepath.Join(t.TempDir(), "settings.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"server-down", "needs-you", "agent-crash", "new-app"} {
		if _, err := sf.SetNotify(k, false); err != nil {
			t.Fatal(err)
		}
	}
	r := newUnitRig(t, Options{Settings: sf})
	r.n.Background()
	r.n.Background()
	got := r.flush()
	if len(got) != 1 || got[0].Kind != KindBackground || got[0].Title != "Porthole keeps running" || got[0].Action != "Show" {
		t.Fatalf("sent %+v; want one running-in-background notice with a Show action", got)
	}
}
