// Package apps discovers the web apps and services of a connected server
// (through its login's agent), opens them on stable local endpoints with
// web forwards (or raw forwards for clients such as psql), and keeps the
// open tabs in tabs.json. It needs from the servers room only a way to get
// a server's live login (Logins).
package apps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/browseropen"
	"github.com/porthole-app/porthole/backend/discovery"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/portmap"
	"github.com/porthole-app/porthole/backend/profiles"
)

// TopicApps carries AppList: a server's discovered apps, when they changed.
var TopicApps = events.NewTopic[AppList]("apps")

// LocalServerID is the server ID of "This computer": its apps open directly,
// without SSH or forwards.
const LocalServerID = "local"

// Bounds of the work one call may do.
const (
	scanTimeout    = 30 * time.Second // one listing + probes
	forwardTimeout = 20 * time.Second // binding forwards in the agent
	jupyterTimeout = 10 * time.Second // finding a Jupyter token
	// jupyterGuessTimeout bounds the token lookup for a port discovery has
	// not identified yet (a restored tab, a pasted URL): it may well not be
	// Jupyter, and opening the tab waits for it.
	jupyterGuessTimeout = 3 * time.Second
	hostnameTTL         = 10 * time.Minute // the server's `hostname`, for URLs apps print
)

// AppProcess is the process that listens on an app's port.
type AppProcess struct {
	PID     int       `json:"pid"`
	Name    string    `json:"name"`
	Cmdline string    `json:"cmdline"`
	Cwd     string    `json:"cwd"`
	Started time.Time `json:"started,omitzero"` // RFC 3339; absent when unknown
}

// AppService is one listening port of a server and what runs there.
type AppService struct {
	Port int `json:"port"`
	// Kind is discovery's identifier, e.g. "jupyter-lab", "tensorboard",
	// "http", "postgres", "not-http", "unknown".
	Kind discovery.Kind `json:"kind"`
	// KindName is the kind for people, e.g. "Jupyter Lab".
	KindName string `json:"kindName"`
	// Title is e.g. "Jupyter Lab — ~/project"; the UI adds the port.
	Title string `json:"title"`
	// IsWeb: open it in a tab (OpenApp); otherwise offer ForwardPort.
	IsWeb    bool        `json:"isWeb"`
	OpenPath string      `json:"openPath"`
	Process  *AppProcess `json:"process,omitempty"`
	// Local: on this computer; LocalURL opens it directly.
	Local bool `json:"local"`
	// LocalURL opens the app here: always for "This computer", and for a
	// server once a forward to the port exists.
	LocalURL string `json:"localUrl,omitempty"`
}

// AppSocket is a Unix socket on a server that its login may use (Docker's,
// PostgreSQL's, MySQL's, the user's own); ForwardSocket forwards it.
type AppSocket struct {
	Path string `json:"path"`
	// Kind is "docker", "postgres", "mysql" or "socket".
	Kind     discovery.SocketKind `json:"kind"`
	KindName string               `json:"kindName"` // e.g. "Docker"
	Title    string               `json:"title"`    // e.g. "Docker — /var/run/docker.sock"
	// LocalAddr is where it is forwarded ("127.0.0.2:2375"), once it is.
	LocalAddr string `json:"localAddr,omitempty"`
}

// AppList is ListApps' answer and the `apps` event.
type AppList struct {
	ServerID string       `json:"serverId"`
	Services []AppService `json:"services"`
	// Sockets are the server's usable Unix sockets (none for "local").
	Sockets   []AppSocket `json:"sockets,omitempty"`
	ScannedAt time.Time   `json:"scannedAt"`
	// Error says why the listing failed (Services are then those of the
	// last listing that worked, if any).
	Error string `json:"error,omitempty"`
}

// OpenedApp is where an app opened: what the tab loads and the URL bar shows.
type OpenedApp struct {
	ServerID string `json:"serverId"`
	Port     int    `json:"port"`
	// LocalURL is what the tab loads (with a Jupyter token when Porthole
	// found one on the server).
	LocalURL string `json:"localUrl"`
	// LocalOrigin is LocalURL's origin, e.g. "http://127.0.0.2:8888".
	LocalOrigin string `json:"localOrigin"`
	// RemoteURL is the URL on the server, e.g. "http://localhost:8888/lab".
	RemoteURL string `json:"remoteUrl"`
	Title     string `json:"title"`
	// Notice says why the app is not on its usual endpoint this time.
	Notice string `json:"notice,omitempty"`
	// RemoteHost is the host the server dials for an app opened through it
	// (OpenThrough, e.g. "grafana.internal"); empty for the server's own
	// localhost.
	RemoteHost string `json:"remoteHost,omitempty"`
}

// RawForward is a plain -L forward made by ForwardPort.
type RawForward struct {
	LocalAddr string `json:"localAddr"` // "127.0.0.2:5432"
	Hint      string `json:"hint"`      // e.g. "psql -h 127.0.0.2 -p 5432"
	Notice    string `json:"notice,omitempty"`
}

// Logins gives the apps a server's profile and live login; the servers room
// implements it (servers.Manager).
type Logins interface {
	// Get returns a server's profile.
	Get(id string) (profiles.Profile, error)
	// Login returns the profile and live login of a connected server, or
	// an error saying to connect it first.
	Login(id string) (profiles.Profile, agent.Login, error)
}

// Manager discovers the apps of servers and opens them on their stable
// endpoints.
type Manager struct {
	log       *slog.Logger
	bus       *events.Bus
	logins    Logins
	changed   func()             // the number of forwards changed (app.status)
	ports     *portmap.Map       // nil: no endpoints (tests of other parts)
	ancestors []string           // who may frame the apps besides themselves
	openURL   func(string) error // starts the browser: all it gets reaches a command line
	jupyter   JupyterLookup
	self      []string // file names of Porthole's own executables
	now       func() time.Time

	probeOnly func(discovery.Service) bool // SetProbeOnly (tests)
	localOnce sync.Once
	local     *discovery.LocalSource
	localMu   sync.Mutex
	localLast []discovery.Service
	localPub  string

	mu    sync.Mutex
	state map[string]*serverApps
}

// serverApps is what the manager keeps per server login.
type serverApps struct {
	fwdMu sync.Mutex // serializes changes of the forwards

	// Guarded by appsManager.mu:
	login    agent.Login // the running login the rest belongs to
	scanner  *discovery.Scanner
	last     []discovery.Service    // of the last listing that worked
	lastAt   time.Time              // when it was made
	pub      string                 // the last published list (JSON, without the time)
	forwards map[fwdKey]*appForward // by remote host and port
	sockets  map[string]*appForward // socket forwards, by path on the server
	host     []string               // the server's host names (`hostname`)
	hostAt   time.Time
}

// fwdKey names a forward to a TCP port as the server sees it.
type fwdKey struct {
	// host is "" for the server's own localhost, else the canonical host
	// (portmap.CanonicalHost) the server dials for an app opened through it.
	host string
	port int
}

// describe names the forward's target for messages: "port 8888 of gpu1",
// "grafana.internal:3000 through gpu1".
func (k fwdKey) describe(server string) string {
	if k.host == "" {
		return "port " + strconv.Itoa(k.port) + " of " + server
	}
	return net.JoinHostPort(k.host, strconv.Itoa(k.port)) + " through " + server
}

// appForward is one forward the manager keeps for a server.
type appForward struct {
	kind       agent.ForwardKind
	remotePort int
	via        string // the remote host of an app opened through the server ("": its localhost)
	targetHost string
	bound      portmap.Endpoint // where it listens
	notice     string           // why bound is not the usual endpoint
	targetPath string           // a Unix socket on the server (remotePort is 0)
}

func (f *appForward) id() string {
	if f.targetPath != "" {
		return "socket-" + socketKeyHost(f.targetPath)
	}
	if f.via != "" {
		return "through-" + net.JoinHostPort(f.via, strconv.Itoa(f.remotePort))
	}
	if f.kind == agent.ForwardWeb {
		return "app-" + strconv.Itoa(f.remotePort)
	}
	return "port-" + strconv.Itoa(f.remotePort)
}

// New returns the apps manager. ports may be nil (no endpoints: apps cannot
// be opened); ancestors are the origins that may frame the apps besides
// themselves (Porthole's own window or page in this mode).
func New(log *slog.Logger, bus *events.Bus, logins Logins, ports *portmap.Map, ancestors []string) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	am := &Manager{
		log:       log.With("component", "apps"),
		bus:       bus,
		logins:    logins,
		changed:   func() {},
		ports:     ports,
		ancestors: slices.Clone(ancestors),
		openURL:   browseropen.Open,
		jupyter:   (*discovery.Scanner).Jupyter,
		self:      portholeExecutables(),
		now:       time.Now,
		state:     map[string]*serverApps{},
	}
	return am
}

// portholeExecutables are the names Porthole's own processes run as, so
// that discovery hides their listeners (serve's UI, the agents' forwards).
func portholeExecutables() []string {
	names := []string{"porthole", "porthole-desktop"} // the two builds (see main)
	if exe, err := os.Executable(); err == nil {
		names = append(names, filepath.Base(exe))
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			names = append(names, filepath.Base(r))
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// isPorthole reports whether a listener belongs to one of Porthole's own
// processes.
func (am *Manager) isPorthole(svc discovery.Service) bool {
	p := svc.Process
	if p == nil {
		return false
	}
	cands := []string{p.Name}
	if p.Exe != "" {
		cands = append(cands, filepath.Base(p.Exe))
	}
	if f := strings.Fields(p.Cmdline); len(f) > 0 {
		cands = append(cands, filepath.Base(f[0]))
	}
	for _, c := range cands {
		// comm is cut to 15 bytes ("porthole-deskto").
		for _, s := range am.self {
			if c != "" && (c == s || len(c) == 15 && strings.HasPrefix(s, c)) {
				return true
			}
		}
	}
	return false
}

// --- errors ---

func badInput(format string, a ...any) error { return apperr.BadInput(format, a...) }

func checkPort(port int) error {
	if port < 1 || port > 65535 {
		return badInput("port %d is not a TCP port (1–65535)", port)
	}
	return nil
}

// --- the login of a server ---

// login returns the profile and running login of a connected server.
func (am *Manager) login(id string) (profiles.Profile, agent.Login, error) {
	return am.logins.Login(id)
}

// stateFor returns the server's state, starting over (new scanner, forwards
// to bind again) when the login is another one than last time.
func (am *Manager) stateFor(id string, l agent.Login) (sa *serverApps, fresh bool) {
	am.mu.Lock()
	defer am.mu.Unlock()
	sa = am.state[id]
	if sa == nil {
		sa = &serverApps{forwards: map[fwdKey]*appForward{}}
		am.state[id] = sa
	}
	if sa.login != l {
		fresh = sa.login != nil
		sa.login = l
		skip := am.isPorthole
		if only := am.probeOnly; only != nil {
			skip = func(svc discovery.Service) bool { return am.isPorthole(svc) || !only(svc) }
		}
		sa.scanner = discovery.NewScanner(l, agent.ProbeDialer{Login: l}, discovery.Options{
			Logger: am.log.With("server", id),
			Skip:   skip,
		})
		sa.last, sa.lastAt, sa.host, sa.hostAt = nil, time.Time{}, nil, time.Time{}
	}
	return sa, fresh
}

// Count is the number of forwards the manager keeps.
func (am *Manager) Count() int {
	am.mu.Lock()
	defer am.mu.Unlock()
	n := 0
	for _, sa := range am.state {
		n += len(sa.forwards) + len(sa.sockets)
	}
	return n
}

// Forget drops what the manager keeps for a deleted server.
func (am *Manager) Forget(id string) {
	am.mu.Lock()
	delete(am.state, id)
	am.mu.Unlock()
	if am.ports != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := am.ports.ForgetLogin(ctx, id); err != nil {
			am.log.Warn("could not forget the deleted server's endpoints", "server", id, "err", err)
		}
	}
}

// --- listing ---

func (am *Manager) ListApps(ctx context.Context, id string) (AppList, error) {
	if id == LocalServerID {
		return am.listLocal(ctx), nil
	}
	p, l, err := am.login(id)
	if err != nil {
		return AppList{}, err
	}
	sa, _ := am.stateFor(id, l)
	am.mu.Lock()
	sc := sa.scanner
	am.mu.Unlock()
	sctx, cancel := context.WithTimeout(ctx, scanTimeout)
	defer cancel()
	svcs, serr := sc.Scan(sctx)
	list := AppList{ServerID: id, ScannedAt: am.now().UTC().Truncate(time.Second)}
	am.mu.Lock()
	if serr == nil {
		sa.last, sa.lastAt = svcs, am.now()
	} else {
		svcs = sa.last
		list.Error = scanErrorMessage(p.Name, serr)
	}
	list.Services = make([]AppService, 0, len(svcs))
	for _, s := range svcs {
		if s.Kind == discovery.KindJupyterKernel {
			continue
		}
		as := appService(s)
		if f := sa.forwards[fwdKey{port: s.Port}]; f != nil && f.kind == agent.ForwardWeb && s.IsWeb {
			as.LocalURL = "http://" + f.bound.String() + pathOr(s.OpenPath, "/")
		}
		list.Services = append(list.Services, as)
	}
	for _, u := range sc.Sockets() {
		as := AppSocket{Path: u.Path, Kind: u.Kind, KindName: u.Kind.DisplayName(), Title: u.Title()}
		if f := sa.sockets[u.Path]; f != nil {
			as.LocalAddr = f.bound.String()
		}
		list.Sockets = append(list.Sockets, as)
	}
	if am.changedLocked(&sa.pub, list) {
		events.Publish(am.bus, TopicApps, list) // under am.mu: events stay in order
	}
	am.mu.Unlock()
	if serr != nil {
		am.log.Warn("listing the apps failed", "server", id, "err", serr)
	}
	return list, nil
}

// ScannedAt is when a server's apps were last listed successfully (zero:
// never with its current login), so that a background watcher lists only
// servers nobody looked at lately.
func (am *Manager) ScannedAt(id string) time.Time {
	am.mu.Lock()
	defer am.mu.Unlock()
	if sa := am.state[id]; sa != nil {
		return sa.lastAt
	}
	return time.Time{}
}

// changedLocked records list as published and reports whether it differs
// from the last one (the time aside).
func (am *Manager) changedLocked(last *string, list AppList) bool {
	l := list
	l.ScannedAt = time.Time{}
	b, _ := json.Marshal(l)
	if string(b) == *last {
		return false
	}
	*last = string(b)
	return true
}

func scanErrorMessage(name string, err error) string {
	switch {
	case errors.Is(err, agent.ErrExecRefused):
		return fmt.Sprintf("%s does not allow running commands, so Porthole cannot list its apps; open a port by number instead", name)
	case errors.Is(err, discovery.ErrBadOutput):
		return fmt.Sprintf("Porthole could not read the list of listening ports from %s (is the login shell csh?): %v", name, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("listing the apps of %s took longer than %s", name, scanTimeout)
	}
	return fmt.Sprintf("listing the apps of %s failed: %v", name, err)
}

func (am *Manager) listLocal(ctx context.Context) AppList {
	am.localOnce.Do(func() {
		skip := am.isPorthole
		if only := am.probeOnly; only != nil {
			skip = func(svc discovery.Service) bool { return am.isPorthole(svc) || !only(svc) }
		}
		am.local = discovery.NewLocalSource(discovery.Options{Logger: am.log.With("server", LocalServerID), Skip: skip})
	})
	sctx, cancel := context.WithTimeout(ctx, scanTimeout)
	defer cancel()
	svcs, err := am.local.Scan(sctx) // serialised by the LocalSource
	am.localMu.Lock()
	defer am.localMu.Unlock()
	list := AppList{ServerID: LocalServerID, ScannedAt: am.now().UTC().Truncate(time.Second)}
	if err == nil {
		am.localLast = svcs
	} else {
		svcs = am.localLast
		list.Error = "listing this computer's apps failed: " + err.Error()
		am.log.Warn("listing this computer's apps failed", "err", err)
	}
	list.Services = make([]AppService, 0, len(svcs))
	for _, s := range svcs {
		if s.Kind == discovery.KindJupyterKernel {
			continue
		}
		as := appService(s)
		as.Local = true
		if s.IsWeb {
			scheme := "http://"
			if s.TLS {
				scheme = "https://"
			}
			as.LocalURL = scheme + net.JoinHostPort(localDialHost(s.DialHost), strconv.Itoa(s.Port)) + pathOr(s.OpenPath, "/")
		}
		list.Services = append(list.Services, as)
	}
	if am.changedLocked(&am.localPub, list) {
		events.Publish(am.bus, TopicApps, list) // under localMu: events stay in order
	}
	return list
}

// localDialHost is where this computer reaches a port: its loopback address.
func localDialHost(h string) string {
	if a, err := netip.ParseAddr(h); err == nil && (a.IsLoopback() || a.IsUnspecified()) && a.Is4() {
		return h
	}
	if h == "::1" {
		return h
	}
	if h == "" {
		return "127.0.0.1"
	}
	return h
}

func appService(s discovery.Service) AppService {
	as := AppService{
		Port: s.Port, Kind: s.Kind, KindName: s.Kind.String(), Title: s.Title,
		IsWeb: s.IsWeb, OpenPath: s.OpenPath, Local: s.Local,
	}
	if as.Title == "" {
		as.Title = s.Kind.String()
	}
	if p := s.Process; p != nil {
		as.Process = &AppProcess{PID: p.PID, Name: p.Name, Cmdline: p.Cmdline, Cwd: p.Cwd}
		if !p.Started.IsZero() {
			as.Process.Started = p.Started.UTC().Truncate(time.Second)
		}
	}
	return as
}

func pathOr(p, def string) string {
	if p == "" {
		return def
	}
	return p
}

// lastService is what the last listing of the server said about port.
func (am *Manager) lastService(id string, port int) (discovery.Service, bool) {
	var svcs []discovery.Service
	if id == LocalServerID {
		am.localMu.Lock()
		svcs = am.localLast
		am.localMu.Unlock()
	} else {
		am.mu.Lock()
		if sa := am.state[id]; sa != nil {
			svcs = sa.last
		}
		am.mu.Unlock()
	}
	for _, s := range svcs {
		if s.Port == port {
			return s, true
		}
	}
	return discovery.Service{}, false
}

// --- opening ---

// cleanAppPath checks a path (with query and fragment) to open on an app.
func cleanAppPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return "", badInput("path %q must start with a single /", p)
	}
	for _, r := range p {
		if r < 0x21 || r == 0x7f || r == '\\' {
			return "", badInput("the path contains a space, a control character or a backslash; percent-encode it")
		}
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "", badInput("path %q is not a path", p)
	}
	return p, nil
}

func (am *Manager) OpenApp(ctx context.Context, id string, port int, path string) (OpenedApp, error) {
	if err := checkPort(port); err != nil {
		return OpenedApp{}, err
	}
	path, err := cleanAppPath(path)
	if err != nil {
		return OpenedApp{}, err
	}
	svc, known := am.lastService(id, port)
	if path == "" {
		path = pathOr(svc.OpenPath, "/")
	}
	title := svc.Title
	if !known || title == "" {
		title = "localhost:" + strconv.Itoa(port)
	}
	remote := "http://localhost:" + strconv.Itoa(port) + path
	if id == LocalServerID {
		origin := "http://127.0.0.1:" + strconv.Itoa(port)
		if known && svc.TLS {
			origin = "https://127.0.0.1:" + strconv.Itoa(port)
		}
		return OpenedApp{ServerID: id, Port: port, LocalURL: origin + path, LocalOrigin: origin, RemoteURL: remote, Title: title}, nil
	}
	p, l, err := am.login(id)
	if err != nil {
		return OpenedApp{}, err
	}
	kind, scheme := agent.ForwardWeb, "http://"
	if known && svc.TLS {
		// An HTTPS app: the browser speaks TLS to the app itself, through
		// a raw forward (the web forward speaks plain HTTP to the app).
		kind, scheme = agent.ForwardLocal, "https://"
		remote = "https://localhost:" + strconv.Itoa(port) + path
	}
	if !known {
		svc.DialHost = am.dialHost(ctx, id, l, port)
	}
	f, err := am.ensureForward(ctx, p, l, kind, fwdKey{port: port}, svc.DialHost)
	if err != nil {
		return OpenedApp{}, err
	}
	origin := scheme + f.bound.String()
	open := OpenedApp{ServerID: id, Port: port, LocalURL: origin + path, LocalOrigin: origin, RemoteURL: remote, Title: title, Notice: f.notice}
	if kind == agent.ForwardLocal {
		open.Notice = strings.TrimPrefix(open.Notice+"; ", "; ") + "the app speaks HTTPS: Porthole passes it through untouched, so your browser checks the app's own certificate"
	}
	if others := am.sharingAddr(id, l, f); len(others) > 0 {
		open.Notice = strings.TrimPrefix(open.Notice+"; ", "; ") + sharedCookiesNotice(f.bound.IP.String(), others)
	}
	isJupyter := svc.Kind == discovery.KindJupyterLab || svc.Kind == discovery.KindJupyterNotebook || svc.Kind == discovery.KindJupyterServer
	if (!known || isJupyter) && !hasQueryParam(path, "token") {
		limit := jupyterTimeout
		if !known {
			limit = jupyterGuessTimeout
		}
		if tok := am.jupyterToken(ctx, id, l, port, limit); tok != "" {
			open.LocalURL = origin + withQueryParam(path, "token", tok)
		}
	}
	return open, nil
}

// sharingAddr are the ports of the server's other web apps whose endpoints
// are on f's address (they share its cookies: browsers ignore the port),
// in order. That happens where apps cannot have addresses of their own
// (macOS), with "separate cookies per app" off, and for apps opened before.
func (am *Manager) sharingAddr(id string, l agent.Login, f *appForward) []int {
	sa, _ := am.stateFor(id, l)
	am.mu.Lock()
	defer am.mu.Unlock()
	var ports []int
	for _, o := range sa.forwards {
		if o != f && o.kind == agent.ForwardWeb && o.bound.IP == f.bound.IP {
			ports = append(ports, o.remotePort)
		}
	}
	slices.Sort(ports)
	return ports
}

// sharedCookiesNotice says that an app shares its address, and so its
// cookies, with other apps of the server.
func sharedCookiesNotice(addr string, ports []int) string {
	names := make([]string, len(ports))
	for i, p := range ports {
		names[i] = strconv.Itoa(p)
	}
	what := "port " + names[0]
	if len(names) > 1 {
		what = "ports " + strings.Join(names, ", ")
	}
	return fmt.Sprintf("this app shares the address %s with %s of this server, and so its cookies (browsers ignore the port): one may log the other out. Apps opened with \"Separate cookies per app\" on get an address of their own, except on macOS", addr, what)
}

// dialHost is where the server reaches a port no listing has seen yet
// (discovery.Scanner.DialHost: "::1" for an app bound only to IPv6
// loopback, the server's own address for one bound only to it); "" (the
// server's "localhost") when the listing fails or does not show the port.
func (am *Manager) dialHost(ctx context.Context, id string, l agent.Login, port int) string {
	sa, _ := am.stateFor(id, l)
	am.mu.Lock()
	sc := sa.scanner
	am.mu.Unlock()
	if sc == nil {
		return ""
	}
	dctx, cancel := context.WithTimeout(ctx, jupyterTimeout)
	defer cancel()
	h, ok, err := sc.DialHost(dctx, port)
	if err != nil || !ok {
		am.log.Debug("port not found in a listing; the server dials localhost", "server", id, "port", port, "err", err)
		return ""
	}
	return h
}

// JupyterLookup finds the Jupyter server on a port of a server through its
// scanner: (*discovery.Scanner).Jupyter, which answers from the last
// listing (no round trip) while it is fresh, and trusts a runtime file only
// when its pid is the port's listener.
type JupyterLookup func(sc *discovery.Scanner, ctx context.Context, port int) (discovery.JupyterServer, bool, error)

// jupyterToken finds the token of the Jupyter server on port ("" if none).
func (am *Manager) jupyterToken(ctx context.Context, id string, l agent.Login, port int, limit time.Duration) string {
	sa, _ := am.stateFor(id, l)
	am.mu.Lock()
	sc, lookup := sa.scanner, am.jupyter
	am.mu.Unlock()
	jctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	j, ok, err := lookup(sc, jctx, port)
	if err != nil {
		am.log.Debug("no Jupyter server found", "server", id, "err", err)
		return ""
	}
	if ok && j.Token != "" && !j.Secure {
		am.log.Info("opening Jupyter with its token (auto-login)", "server", id, "jupyter", j)
		return j.Token
	}
	return ""
}

func hasQueryParam(path, name string) bool {
	u, err := url.Parse(path)
	if err != nil {
		return false
	}
	return u.Query().Has(name)
}

// withQueryParam adds name=value to path's query, keeping its fragment.
func withQueryParam(path, name, value string) string {
	frag := ""
	if i := strings.IndexByte(path, '#'); i >= 0 {
		path, frag = path[:i], path[i:]
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
		if strings.HasSuffix(path, "?") || strings.HasSuffix(path, "&") {
			sep = ""
		}
	}
	return path + sep + url.QueryEscape(name) + "=" + url.QueryEscape(value) + frag
}

// ensureForward makes sure the server has a forward of kind to key (a port
// of its localhost, or a host:port it dials for an app opened through it) on
// the stable endpoint of that remote endpoint, and returns it.
func (am *Manager) ensureForward(ctx context.Context, p profiles.Profile, l agent.Login, kind agent.ForwardKind, key fwdKey, dialHost string) (*appForward, error) {
	port, what := key.port, key.describe(p.Name)
	if am.ports == nil {
		return nil, apperr.Mark(errors.New("local endpoints are not available in this mode"), apperr.ErrUnavailable)
	}
	sa, fresh := am.stateFor(p.ID, l)
	sa.fwdMu.Lock()
	defer sa.fwdMu.Unlock()
	am.mu.Lock()
	cur := sa.forwards[key]
	am.mu.Unlock()
	if cur != nil && cur.kind == kind && !fresh {
		return cur, nil
	}
	if cur != nil && cur.kind == agent.ForwardWeb && kind == agent.ForwardLocal {
		return nil, apperr.Mark(fmt.Errorf("%s is open in a tab at http://%s; its endpoint serves the app over HTTP, so it cannot also be a raw forward", what, cur.bound), apperr.ErrConflict)
	}
	fctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	remoteHost := "localhost"
	if key.host != "" {
		remoteHost = key.host
	}
	ep, err := am.ports.Endpoint(fctx, p.ID, remoteHost, port)
	if err != nil {
		return nil, fmt.Errorf("choose a local endpoint for %s: %w", what, err)
	}
	target := remoteHost
	if dialHost != "" {
		target = dialHost
	}
	want := &appForward{kind: kind, remotePort: port, via: key.host, targetHost: target, bound: ep}
	if cur != nil {
		// The same endpoint: bound again in a new agent, or changed from a
		// raw forward to a web one (the agent closes the old one first).
		want.bound, want.notice = cur.bound, cur.notice
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 || cur == nil {
			// Find out whether the endpoint is free now, and where to go if not.
			ln, bound, notice, err := am.ports.Bind(fctx, ep)
			if err != nil {
				return nil, fmt.Errorf("listen for %s: %w", what, err)
			}
			_ = ln.Close()
			want.bound, want.notice = bound, notice
		}
		am.mu.Lock()
		next := make(map[fwdKey]*appForward, len(sa.forwards)+1)
		for k, v := range sa.forwards {
			next[k] = v
		}
		next[key] = want
		am.mu.Unlock()
		am.mu.Lock()
		socks := sa.sockets
		am.mu.Unlock()
		infos, err := l.SetForwards(fctx, am.specs(p, next, socks))
		info, found := findInfo(infos, want.id())
		if err != nil && !errors.Is(err, agent.ErrListen) && !isRemoteListenError(err) {
			return nil, fmt.Errorf("set up the forward to %s: %w", what, err)
		}
		if found && info.Addr != "" {
			am.mu.Lock()
			sa.forwards = next
			am.mu.Unlock()
			am.log.Info("forwarding", "server", p.ID, "kind", kind, "remote", net.JoinHostPort(remoteHost, strconv.Itoa(port)), "local", info.Addr)
			if cur == nil {
				am.changed() // app.status counts the forwards
			}
			return want, nil
		}
		if attempt >= 2 || ctx.Err() != nil {
			why := "the agent did not report it"
			if found {
				why = info.Error
			}
			return nil, fmt.Errorf("cannot listen for %s: %s", what, why)
		}
		// Someone took the port between the check and the bind: look again.
	}
}

func isRemoteListenError(err error) bool {
	var re *agent.RemoteError
	return errors.As(err, &re) && slices.Contains(re.Kinds, "agent.listen")
}

func findInfo(infos []agent.ForwardInfo, id string) (agent.ForwardInfo, bool) {
	for _, in := range infos {
		if in.ID == id {
			return in, true
		}
	}
	return agent.ForwardInfo{}, false
}

// specs are the agent's forwards for a set, the server's localhost first,
// in port order, then those through it by host and port, then the socket
// forwards in path order.
func (am *Manager) specs(p profiles.Profile, set map[fwdKey]*appForward, socks map[string]*appForward) []agent.ForwardSpec {
	keys := make([]fwdKey, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b fwdKey) int {
		if c := strings.Compare(a.host, b.host); c != 0 {
			return c
		}
		return a.port - b.port
	})
	out := make([]agent.ForwardSpec, 0, len(keys))
	for _, k := range keys {
		f := set[k]
		fs := agent.ForwardSpec{ID: f.id()}
		addr := f.bound.IP.String()
		if f.kind == agent.ForwardWeb {
			fs.Web = &forwarder.WebSpec{
				BindAddress: addr, BindPort: f.bound.Port, TargetHost: f.targetHost, TargetPort: f.remotePort,
				ServerName: p.Name, AllowedFrameAncestors: slices.Clone(am.ancestors),
			}
		} else {
			fs.Local = forwarder.LocalSpec{BindAddress: addr, BindPort: f.bound.Port, TargetHost: f.targetHost, TargetPort: f.remotePort}
		}
		out = append(out, fs)
	}
	paths := make([]string, 0, len(socks))
	for path := range socks {
		paths = append(paths, path)
	}
	slices.Sort(paths)
	for _, path := range paths {
		f := socks[path]
		out = append(out, agent.ForwardSpec{ID: f.id(), Local: forwarder.LocalSpec{
			BindAddress: f.bound.IP.String(), BindPort: f.bound.Port, TargetPath: f.targetPath,
		}})
	}
	return out
}

// Restore binds a server's forwards again after it connected in a new agent
// (open tabs keep working after a disconnect and reconnect).
func (am *Manager) Restore(ctx context.Context, id string) {
	p, l, err := am.login(id)
	if err != nil {
		return
	}
	am.mu.Lock()
	sa := am.state[id]
	am.mu.Unlock()
	if sa == nil {
		return
	}
	sa, fresh := am.stateFor(id, l)
	if !fresh {
		return
	}
	sa.fwdMu.Lock()
	defer sa.fwdMu.Unlock()
	am.mu.Lock()
	set, socks := sa.forwards, sa.sockets
	am.mu.Unlock()
	if len(set)+len(socks) == 0 {
		return
	}
	fctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	if _, err := l.SetForwards(fctx, am.specs(p, set, socks)); err != nil {
		am.log.Warn("some forwards of the server could not listen again", "server", id, "err", err)
		return
	}
	am.log.Info("forwards listening again", "server", id, "forwards", len(set))
}

// --- URLs ---

// appURL is a URL as an app printed it, split for opening.
type appURL struct {
	host string // as written, without brackets
	port int
	path string // path, query and fragment, escaped as written
}

// splitAppURL parses a URL the way apps print it on the server:
// http://localhost:8888/lab?token=…, 127.0.0.1:6006, http://[::1]:5000/.
// A missing scheme means http; https and other schemes are refused.
func splitAppURL(raw string) (appURL, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return appURL{}, badInput("enter a URL such as http://localhost:8888/lab")
	}
	if len(s) > 16<<10 {
		return appURL{}, badInput("the URL is longer than 16 KiB")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return appURL{}, badInput("%q is not a URL; enter one such as http://localhost:8888/lab", raw)
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
	case "https":
		return appURL{}, badInput("%s uses https: Porthole opens the plain-http apps of a server; open it as-is instead", raw)
	default:
		return appURL{}, badInput("%q is not a web address (http://…)", raw)
	}
	if u.User != nil {
		return appURL{}, badInput("%q has a user name in it; leave it out", raw)
	}
	au := appURL{host: u.Hostname(), port: 80}
	if au.host == "" {
		return appURL{}, badInput("%q names no host", raw)
	}
	if ps := u.Port(); ps != "" {
		au.port, err = strconv.Atoi(ps)
		if err != nil || checkPort(au.port) != nil {
			return appURL{}, badInput("%q has no usable port", raw)
		}
	}
	au.path = u.EscapedPath()
	if au.path == "" {
		au.path = "/"
	}
	if u.RawQuery != "" || u.ForceQuery {
		au.path += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		au.path += "#" + u.EscapedFragment()
	}
	if _, err := cleanAppPath(au.path); err != nil {
		return appURL{}, err
	}
	return au, nil
}

// ParseAppURL accepts a URL the way apps print it on the server and opens it.
func (am *Manager) ParseAppURL(ctx context.Context, id, raw string) (OpenedApp, error) {
	au, err := splitAppURL(raw)
	if err != nil {
		return OpenedApp{}, err
	}
	raw = strings.TrimSpace(raw)
	if id == LocalServerID {
		if !isLoopbackName(au.host) && !isThisComputer(au.host) {
			return OpenedApp{}, notServerLocal(raw, au.host, "this computer")
		}
		return am.OpenApp(ctx, id, au.port, au.path)
	}
	p, err := am.logins.Get(id)
	if err != nil {
		return OpenedApp{}, err
	}
	if !isLoopbackName(au.host) && !am.isServerName(ctx, id, p, au.host) {
		return OpenedApp{}, notServerLocal(raw, au.host, p.Name)
	}
	return am.OpenApp(ctx, id, au.port, au.path)
}

func notServerLocal(raw, host, where string) error {
	offer := "Open it through " + where + ", or as-is in your browser?"
	if where == "this computer" {
		offer = "Open it as-is in your browser instead?"
	}
	return badInput("%s is not on %s's localhost: Porthole opens the addresses of %s itself (localhost, 127.0.0.1, 0.0.0.0, [::1] or its host name), and %s is another computer. %s", raw, where, where, host, offer)
}

// OpenThrough opens a web app on another computer that the server reaches
// (http://grafana.internal:3000/): the name is resolved by the server (its
// web forward dials host:port through direct-tcpip, so sshd resolves it;
// never this computer), on a stable local endpoint of its own (portmap's
// key is the login with the remote host and port), with the isolation,
// cookies and reconnects of the server's own apps. Only http; the host must
// be a DNS name or an IP address. A loopback host is the server's own
// localhost (OpenApp).
func (am *Manager) OpenThrough(ctx context.Context, id, raw string) (OpenedApp, error) {
	au, err := splitAppURL(raw)
	if err != nil {
		return OpenedApp{}, err
	}
	raw = strings.TrimSpace(raw)
	if id == LocalServerID {
		return OpenedApp{}, badInput("this computer reaches %s directly: open it as-is in your browser", raw)
	}
	host, err := throughHost(au.host)
	if err != nil {
		return OpenedApp{}, err
	}
	if isLoopbackName(host) {
		return am.OpenApp(ctx, id, au.port, au.path)
	}
	p, l, err := am.login(id)
	if err != nil {
		return OpenedApp{}, err
	}
	f, err := am.ensureForward(ctx, p, l, agent.ForwardWeb, fwdKey{host: host, port: au.port}, "")
	if err != nil {
		return OpenedApp{}, err
	}
	hp := net.JoinHostPort(host, strconv.Itoa(au.port))
	origin := "http://" + f.bound.String()
	return OpenedApp{
		ServerID: id, Port: au.port, LocalURL: origin + au.path, LocalOrigin: origin,
		RemoteURL: "http://" + hp + au.path, Title: hp, Notice: f.notice, RemoteHost: host,
	}, nil
}

// throughHost checks the host of a URL to open through a server: an IP
// address (no zone) or a DNS name (labels of letters, digits, '-' and '_',
// 1–63 bytes each, not starting or ending with '-'; 253 bytes at most). It
// returns it canonical (portmap.CanonicalHost): lower case, no trailing
// dot, loopback addresses as "localhost".
func throughHost(h string) (string, error) {
	bad := func() (string, error) {
		return "", badInput("%q is not a host name or IP address", h)
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return "", badInput("%q has an IPv6 zone; leave it out", h)
		}
	} else {
		name := strings.TrimSuffix(h, ".")
		if name == "" || len(name) > 253 {
			return bad()
		}
		for _, label := range strings.Split(name, ".") {
			if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
				return bad()
			}
			for _, r := range label {
				if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
					return bad()
				}
			}
		}
	}
	c, err := portmap.CanonicalHost(h)
	if err != nil {
		return bad()
	}
	return c, nil
}

// isLoopbackName: localhost, *.localhost, 127.0.0.0/8, ::1, 0.0.0.0, ::.
func isLoopbackName(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && (a.Unmap().IsLoopback() || a.Unmap().IsUnspecified())
}

func isThisComputer(host string) bool {
	h, err := os.Hostname()
	return err == nil && sameHostName(host, h)
}

// sameHostName compares host names case-insensitively; a short name matches
// the first label of a full one.
func sameHostName(a, b string) bool {
	a = strings.TrimSuffix(strings.ToLower(strings.Trim(a, "[]")), ".")
	b = strings.TrimSuffix(strings.ToLower(strings.Trim(b, "[]")), ".")
	if a == "" || b == "" {
		return false
	}
	if a == b {
		return true
	}
	if _, err := netip.ParseAddr(a); err == nil {
		return false
	}
	if _, err := netip.ParseAddr(b); err == nil {
		return false
	}
	fa, _, _ := strings.Cut(a, ".")
	fb, _, _ := strings.Cut(b, ".")
	return (fa == a || fb == b) && fa == fb
}

// isServerName reports whether host names the server: its profile host,
// ssh_config alias or name (the URL bar routes http://<name>:port/ to the
// server of that name), or what `hostname` says on it (apps such as Jupyter
// print that).
func (am *Manager) isServerName(ctx context.Context, id string, p profiles.Profile, host string) bool {
	if sameHostName(host, p.Host) || sameHostName(host, p.SSHConfigAlias) || sameHostName(host, p.Name) {
		return true
	}
	_, l, err := am.login(id)
	if err != nil {
		return false
	}
	sa, _ := am.stateFor(id, l)
	am.mu.Lock()
	names, at := sa.host, sa.hostAt
	am.mu.Unlock()
	if at.IsZero() || am.now().Sub(at) > hostnameTTL {
		hctx, cancel := context.WithTimeout(ctx, jupyterTimeout)
		out, err := l.Exec(hctx, "hostname; hostname -f 2>/dev/null || true")
		cancel()
		names = nil
		if err == nil {
			for _, f := range strings.Fields(string(out)) {
				if len(f) <= 253 {
					names = append(names, f)
				}
			}
		} else {
			am.log.Debug("cannot ask the server for its host name", "server", id, "err", err)
		}
		am.mu.Lock()
		sa.host, sa.hostAt = names, am.now()
		am.mu.Unlock()
	}
	for _, n := range names {
		if sameHostName(host, n) {
			return true
		}
	}
	return false
}

// --- raw forwards ---

func (am *Manager) ForwardPort(ctx context.Context, id string, port int) (RawForward, error) {
	if err := checkPort(port); err != nil {
		return RawForward{}, err
	}
	svc, known := am.lastService(id, port)
	if id == LocalServerID {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		return RawForward{LocalAddr: addr, Hint: connectHint(svc.Kind, port, "127.0.0.1", port)}, nil
	}
	p, l, err := am.login(id)
	if err != nil {
		return RawForward{}, err
	}
	if !known {
		svc.DialHost = am.dialHost(ctx, id, l, port)
	}
	f, err := am.ensureForward(ctx, p, l, agent.ForwardLocal, fwdKey{port: port}, svc.DialHost)
	if err != nil {
		return RawForward{}, err
	}
	host := f.bound.IP.String()
	return RawForward{LocalAddr: f.bound.String(), Hint: connectHint(svc.Kind, port, host, f.bound.Port), Notice: f.notice}, nil
}

// connectHint says how to reach a forwarded service from a terminal.
func connectHint(k discovery.Kind, remotePort int, host string, port int) string {
	if k == discovery.KindUnknown || k == discovery.KindNotHTTP {
		switch remotePort { // the usual ports, when the probe could not tell
		case 5432:
			k = discovery.KindPostgres
		case 3306:
			k = discovery.KindMySQL
		case 6379:
			k = discovery.KindRedis
		case 27017:
			k = discovery.KindMongoDB
		}
	}
	ps := strconv.Itoa(port)
	switch k {
	case discovery.KindPostgres:
		return "psql -h " + host + " -p " + ps
	case discovery.KindMySQL:
		return "mysql -h " + host + " -P " + ps
	case discovery.KindRedis:
		return "redis-cli -h " + host + " -p " + ps
	case discovery.KindMongoDB:
		return "mongosh --host " + host + " --port " + ps
	case discovery.KindSSH:
		return "ssh -p " + ps + " " + host
	}
	if k.IsWeb() {
		return "open http://" + net.JoinHostPort(host, ps) + "/"
	}
	return "connect to " + net.JoinHostPort(host, ps)
}

// --- the system browser ---

// OpenExternal opens an http(s) URL in the system browser, whose command
// line every local user can read. A URL on one of this manager's web
// endpoints that carries a query or a fragment (where Porthole puts a
// Jupyter token) goes there as a one-time link that the endpoint's web
// forward redirects once to the URL's path, query and fragment
// (agent.Login.OpenLink): only its code, worth nothing after one use or a
// minute, reaches the command line. Other URLs go as they are: Porthole
// adds secrets only to its own endpoints' URLs, so any other query is the
// user's own text (or the site's).
func (am *Manager) OpenExternal(ctx context.Context, raw string) error {
	u, err := browseropen.Check(strings.TrimSpace(raw))
	if err != nil {
		return badInput("only http:// and https:// addresses, without a user name or password, open in the browser")
	}
	target := u.String()
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		link, ok, err := am.oneTimeLink(ctx, u)
		if err != nil {
			return err
		}
		if ok {
			target = link
		}
	}
	if err := am.openURL(target); err != nil {
		return fmt.Errorf("could not open the browser: %w", err)
	}
	return nil
}

// oneTimeLink returns a one-time link to u when u is on one of the
// manager's web endpoints (ok false when it is not).
func (am *Manager) oneTimeLink(ctx context.Context, u *url.URL) (link string, ok bool, err error) {
	if u.Scheme != "http" {
		return "", false, nil // web forwards speak plain HTTP
	}
	ep, found := endpointOf(u)
	if !found {
		return "", false, nil
	}
	var (
		id  string
		l   agent.Login
		fid string
	)
	am.mu.Lock()
	for sid, sa := range am.state {
		for _, f := range sa.forwards {
			if f.kind == agent.ForwardWeb && f.bound.AddrPort() == ep {
				id, l, fid = sid, sa.login, f.id()
			}
		}
	}
	am.mu.Unlock()
	if l == nil {
		return "", false, nil
	}
	lctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	code, err := l.OpenLink(lctx, fid, pathQueryFragment(u))
	if err != nil {
		return "", false, fmt.Errorf("could not make a one-time link to open the app in the browser (the address carries a token, which must not be on the browser's command line): %w; open the app from Porthole again", err)
	}
	am.log.Info("opening an app in the browser through a one-time link", "server", id, "forward", fid)
	return "http://" + u.Host + forwarder.OpenPathPrefix + code, true, nil
}

// endpointOf is the local endpoint u names: an IP address, or localhost
// (127.0.0.1), with a port (80 by default).
func endpointOf(u *url.URL) (netip.AddrPort, bool) {
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return netip.AddrPort{}, false
	}
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(p)), true
}

// pathQueryFragment is what follows u's authority, with spaces, control
// characters and backslashes percent-encoded (a one-time link's target
// refuses them).
func pathQueryFragment(u *url.URL) string {
	s := u.EscapedPath()
	if s == "" {
		s = "/"
	}
	if u.RawQuery != "" || u.ForceQuery {
		s += "?" + escapeOdd(u.RawQuery)
	}
	if u.Fragment != "" {
		s += "#" + escapeOdd(u.EscapedFragment())
	}
	return s
}

func escapeOdd(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == 0x7f || c == '\\' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// OnChange sets what runs when the number of forwards changed (app.status).
// Call it before use.
func (am *Manager) OnChange(f func()) { am.changed = f }
