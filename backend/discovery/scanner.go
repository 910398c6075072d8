package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Scanner lists and identifies the listeners of one host and remembers what
// it learned: a Scan probes only listeners it has not seen before (a new
// port, or a port now held by another process), reuses earlier results for
// the others, and forgets listeners that are gone. The app runs Scan every
// few seconds while the Start page is visible. Scans are serialised; a
// Scanner is safe for concurrent use and holds no goroutines between scans.
type Scanner struct {
	list  func(ctx context.Context) (*listing, error)
	pr    prober
	opts  Options
	log   *slog.Logger
	local bool

	mu      sync.Mutex // held for a whole Scan
	cache   map[svcKey]cachedProbe
	source  Source
	sockets []Socket // of the last listing

	now   func() time.Time
	jupMu sync.Mutex // not held across an exec
	jup   jupyterCache
}

// jupyterCache is what the newest listing said about Jupyter servers.
type jupyterCache struct {
	at    time.Time             // when that listing started; zero: none yet
	ports map[int]JupyterServer // verified: the pid listened on the port
}

// cachedProbe is what a probe of one listener concluded.
type cachedProbe struct {
	id   identity
	info ProbeInfo
	host string
}

// NewScanner returns a Scanner for a server: it lists sockets through ex
// (one exec of a POSIX sh script per Scan) and probes through d.
func NewScanner(ex Execer, d Dialer, opts Options) *Scanner {
	opts = opts.withDefaults()
	s := newScanner(d, opts)
	s.list = func(ctx context.Context) (*listing, error) {
		return remoteListing(ctx, ex, opts.Logger, opts.SocketDirs...)
	}
	return s
}

func newScanner(d Dialer, opts Options) *Scanner {
	return &Scanner{
		pr:    prober{dial: d, timeout: opts.ProbeTimeout},
		opts:  opts,
		log:   opts.Logger,
		cache: map[svcKey]cachedProbe{},
		now:   time.Now,
	}
}

// socketsCommand is the command sent to the server: the script, run by sh
// whatever the login shell is (POSIX shells and fish; not csh, whose
// quoted strings cannot span lines).
// Extra socket directories go as arguments.
func socketsCommand(socketDirs ...string) string {
	cmd := "sh -c " + shQuote(socketsScript)
	if len(socketDirs) > 0 {
		cmd += " porthole"
		for _, d := range socketDirs {
			cmd += " " + shQuote(d)
		}
	}
	return cmd
}

// shQuote quotes s for a POSIX shell (and fish).
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// remoteListing runs the script through ex and parses its output.
func remoteListing(ctx context.Context, ex Execer, log *slog.Logger, socketDirs ...string) (*listing, error) {
	out, err := ex.Exec(ctx, socketsCommand(socketDirs...))
	if err != nil {
		if ctx.Err() != nil || len(out) == 0 {
			return nil, fmt.Errorf("run the socket listing script on the server: %w", err)
		}
		// The script always exits 0; keep what a noisy shell let through.
		log.Warn("discovery: socket listing command failed; using its output", "err", err)
	}
	l, perr := parseListing(out, log)
	if perr != nil {
		if err != nil {
			return nil, fmt.Errorf("%w (the command failed: %w)", perr, err)
		}
		return nil, perr
	}
	return l, nil
}

// Sockets are the Unix sockets the last Scan found that the login may use:
// Docker's, PostgreSQL's and MySQL's at their usual paths, the user's own
// in their runtime directory, and those in Options.SocketDirs.
func (s *Scanner) Sockets() []Socket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sockets)
}

// Source reports how the last Scan listed the host's sockets (SourceNone
// before the first Scan, or when the host had no tool to list them).
func (s *Scanner) Source() Source {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.source
}

// Scan lists the host's listening TCP ports and identifies them, sorted by
// port. Listeners seen at an earlier Scan are not probed again. Each probe
// is bounded by Options.ProbeTimeout; the listing exec is bounded only by
// ctx, so give ctx a deadline. An error means the listing failed (or ctx
// ended); what was learned before is kept for the next Scan.
func (s *Scanner) Scan(ctx context.Context) ([]Service, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, _, err := s.listJupyter(ctx)
	if err != nil {
		return nil, fmt.Errorf("list listening sockets: %w", err)
	}
	s.source = l.source
	s.sockets = l.unix
	if l.source == SourceNone {
		s.log.Warn("discovery: the host has neither /proc/net/tcp, lsof nor netstat; no listeners can be listed")
	}
	cands := buildCandidates(l)
	if s.opts.Skip != nil {
		cands = slices.DeleteFunc(cands, func(c candidate) bool { return s.opts.Skip(c.svc) })
	}

	probed := make([]*probeResult, len(cands))
	sem := make(chan struct{}, s.opts.Concurrency)
	var wg sync.WaitGroup
launch:
	for i, c := range cands {
		if _, ok := s.cache[c.key]; ok {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break launch
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := s.pr.probe(ctx, c.hosts, c.svc.Port)
			probed[i] = &r
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}

	next := make(map[svcKey]cachedProbe, len(cands))
	out := make([]Service, 0, len(cands))
	for i, c := range cands {
		cp, ok := s.cache[c.key]
		if !ok {
			r := probed[i]
			cp = cachedProbe{
				id:   identify(c.svc.Port, c.svc.Process, r, l.home),
				info: r.info(),
				host: r.host,
			}
			s.log.Debug("discovery: probed", "port", c.svc.Port, "protocol", r.proto, "kind", cp.id.kind, "err", r.err)
			if r.proto == ProtoNone {
				// Could not connect (maybe a transient SSH problem): probe
				// again next time rather than remember the failure.
				out = append(out, s.service(c, cp))
				continue
			}
		}
		next[c.key] = cp
		out = append(out, s.service(c, cp))
	}
	s.cache = next
	return out, nil
}

func (s *Scanner) service(c candidate, cp cachedProbe) Service {
	svc := c.svc
	svc.Kind = cp.id.kind
	svc.Title = cp.id.title
	svc.IsWeb = cp.id.kind.IsWeb()
	svc.OpenPath = cp.id.openPath
	svc.TLS = cp.id.tls
	svc.Probe = cp.info
	if cp.host != "" {
		svc.DialHost = cp.host
	}
	svc.Local = s.local
	return svc
}

// listJupyter lists the host and remembers the Jupyter servers the listing
// verified, unless a listing that started later already did.
func (s *Scanner) listJupyter(ctx context.Context) (*listing, map[int]JupyterServer, error) {
	start := s.now()
	l, err := s.list(ctx)
	if err != nil {
		return nil, nil, err
	}
	ports := verifiedJupyter(l)
	s.jupMu.Lock()
	if !start.Before(s.jup.at) {
		s.jup = jupyterCache{at: start, ports: ports}
	}
	s.jupMu.Unlock()
	return l, ports, nil
}

// DialHost lists the host once (one exec, no probes) and returns where to
// dial port on it, as Service.DialHost would say: "127.0.0.1", "::1" (an
// app bound only to IPv6 loopback), or the specific address it is bound to
// (an app bound only to the host's own LAN address). ok is false when
// nothing that a Scan would list listens on port. It is for a port opened
// before any Scan listed it (a tab restored at start, a typed URL).
func (s *Scanner) DialHost(ctx context.Context, port int) (host string, ok bool, err error) {
	l, _, err := s.listJupyter(ctx)
	if err != nil {
		return "", false, fmt.Errorf("find where port %d listens: %w", port, err)
	}
	for _, c := range buildCandidates(l) {
		if c.svc.Port == port && len(c.hosts) > 0 {
			return c.hosts[0], true, nil
		}
	}
	return "", false, nil
}

// Jupyter returns the Jupyter server listening on port, with its token,
// and whether there is one. Its runtime file counts only if the file's pid
// held every listening socket of port at the listing; a stale file, or a
// port now held by another process, gives nothing.
//
// It answers from the last listing (of a Scan or of an earlier Jupyter
// call), with no round trip, when that listing verified a server on port
// and is at most Options.TokenMaxAge old; a listing that saw another pid
// on the port drops the entry. Otherwise it lists the host once (one exec;
// a Scan running meanwhile is not waited for) and answers from that. The
// error says the listing failed. Never log the returned Token.
func (s *Scanner) Jupyter(ctx context.Context, port int) (JupyterServer, bool, error) {
	if port <= 0 || port > 65535 {
		return JupyterServer{}, false, nil
	}
	s.jupMu.Lock()
	js, ok := s.jup.ports[port]
	fresh := !s.jup.at.IsZero() && s.now().Sub(s.jup.at) <= s.opts.TokenMaxAge
	s.jupMu.Unlock()
	if ok && fresh {
		return js, true, nil
	}
	_, ports, err := s.listJupyter(ctx)
	if err != nil {
		return JupyterServer{}, false, fmt.Errorf("look for a Jupyter server on port %d: %w", port, err)
	}
	js, ok = ports[port]
	return js, ok, nil
}
