package faults

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/sshconn"
	"github.com/porthole-app/porthole/internal/testrig"
)

// SoakOptions configure Soak.
type SoakOptions struct {
	// Connections is how many connections the soak sends (half through
	// the web forward, half through the raw one); Concurrency how many at a
	// time (at most 62,500: each worker dials from its own loopback address).
	Connections, Concurrency int
	// AgentExe is the `porthole agent` binary; "" runs this program again
	// (a test binary that serves as the agent when AgentEnv says so).
	AgentExe string
	// AgentEnv is added to the agent's environment.
	AgentEnv []string
	// Logger receives the Supervisor's and the agent's logs; nil discards
	// them.
	Logger *slog.Logger
	// FDSlack and GoroutineSlack are how many more agent fds and app
	// goroutines than before the soak count as no growth; defaults 5, 10.
	FDSlack, GoroutineSlack int
	// SettleLimit is how long Soak waits after the soak for fds and
	// goroutines to come back within the slack; default 30 s.
	SettleLimit time.Duration
	// Timeout bounds each connection (dial to the last byte); default 60 s.
	Timeout time.Duration
}

// SoakResult is what a soak measured. The app side is this process.
type SoakResult struct {
	Connections, Concurrency int
	Failed                   int
	FirstErrors              []string // the first few failures
	Duration                 time.Duration
	ConnsPerSec              float64
	AgentCPU                 time.Duration // CPU time the agent used during the soak

	AgentFDsBefore, AgentFDsAfter         int
	GoroutinesBefore, GoroutinesAfter     int
	AgentRSSBefore, AgentRSSAfter         int64 // VmRSS in bytes
	AgentThreadsBefore, AgentThreadsAfter int
	// Grew is set when agent fds or app goroutines stayed above the slack
	// for SettleLimit after the soak; GoroutineDump then holds every
	// goroutine's stack.
	Grew          bool
	GoroutineDump string
}

// FDDelta and GoroutineDelta are the growth across the soak.
func (r SoakResult) FDDelta() int        { return r.AgentFDsAfter - r.AgentFDsBefore }
func (r SoakResult) GoroutineDelta() int { return r.GoroutinesAfter - r.GoroutinesBefore }

// Soak starts a real sshd, a web app behind it and one agent process
// (through agent.Supervisor) logged in with a web forward and a raw forward
// to the web app; then sends o.Connections connections, each a new TCP
// connection with one GET /small, through the two forwards (half each),
// o.Concurrency at a time, after a warm-up of 200. It measures the agent's
// fds and the app's goroutines before and after (waiting up to SettleLimit
// for them to come back within the slack), and checks that both forwards
// still answer. Failed connections are counted in the result; the error
// is for a rig that would not start, a failed warm-up, or forwards that no
// longer answer after the soak (the result holds what was measured).
func Soak(ctx context.Context, o SoakOptions) (res SoakResult, err error) {
	if o.Connections < 1 || o.Concurrency < 1 {
		return res, fmt.Errorf("soak: want at least one connection and one at a time, got %d and %d", o.Connections, o.Concurrency)
	}
	if o.Concurrency > 250*250 {
		return res, fmt.Errorf("soak: %d at a time: at most %d", o.Concurrency, 250*250)
	}
	if o.FDSlack == 0 {
		o.FDSlack = 5
	}
	if o.GoroutineSlack == 0 {
		o.GoroutineSlack = 10
	}
	if o.SettleLimit == 0 {
		o.SettleLimit = 30 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	res.Connections, res.Concurrency = o.Connections, o.Concurrency

	s, err := startSoakRig(ctx, o)
	if err != nil {
		return res, err
	}
	defer s.close()
	pid := s.login.Process().PID
	fwds := []string{s.webFwd, s.rawFwd}

	// Warm up (pools, buffers, the runtime's threads), then take the baseline.
	if n, first, _ := soakRun(ctx, fwds, 200, 50, 30*time.Second); n > 0 {
		return res, fmt.Errorf("soak: %d of 200 warm-up connections failed: %s", n, strings.Join(first, "; "))
	}
	settle := func() (fds, goroutines int, err error) {
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
		fds, err = countFDs(pid)
		return fds, runtime.NumGoroutine(), err
	}
	if res.AgentFDsBefore, res.GoroutinesBefore, err = settle(); err != nil {
		return res, err
	}
	cpu0, err := cpuTime(pid)
	if err != nil {
		return res, err
	}
	res.AgentRSSBefore, res.AgentThreadsBefore, _ = procMem(pid)

	res.Failed, res.FirstErrors, res.Duration = soakRun(ctx, fwds, o.Connections, o.Concurrency, o.Timeout)
	res.ConnsPerSec = float64(o.Connections) / res.Duration.Seconds()
	if cpu1, err := cpuTime(pid); err == nil {
		res.AgentCPU = cpu1 - cpu0
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}

	// Everything the soak opened must go away again.
	for end := time.Now().Add(o.SettleLimit); ; {
		if res.AgentFDsAfter, res.GoroutinesAfter, err = settle(); err != nil {
			return res, err
		}
		if res.FDDelta() <= o.FDSlack && res.GoroutineDelta() <= o.GoroutineSlack {
			break
		}
		if time.Now().After(end) {
			res.Grew = true
			buf := make([]byte, 1<<20)
			res.GoroutineDump = string(buf[:runtime.Stack(buf, true)])
			break
		}
	}
	res.AgentRSSAfter, res.AgentThreadsAfter, _ = procMem(pid)

	// And it still works.
	for _, a := range fwds {
		if err := soakGet(ctx, &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}, a); err != nil {
			return res, fmt.Errorf("soak: GET through %s after the soak: %w", a, err)
		}
	}
	return res, nil
}

// soakRig is Soak's world: sshd, the web app, the agent and its forwards.
type soakRig struct {
	sshd           *testrig.Sshd
	web            *testrig.WebApp
	sup            *agent.Supervisor
	login          *agent.RemoteLogin
	home           string
	webFwd, rawFwd string
}

func startSoakRig(ctx context.Context, o SoakOptions) (s *soakRig, err error) {
	s = &soakRig{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if s.sshd, err = testrig.StartSshd(sctx, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}}); err != nil {
		return s, fmt.Errorf("soak: start sshd: %w", err)
	}
	if s.web, err = testrig.StartWebApp(sctx, testrig.WebAppOptions{}); err != nil {
		return s, fmt.Errorf("soak: start the web app: %w", err)
	}
	if s.home, err = os.MkdirTemp("", "porthole-soak-"); err != nil {
		return s, fmt.Errorf("soak: %w", err)
	}
	spec, err := rigLoginSpec(s.sshd, s.sshd.Addr, s.home, s.web.Port(), agent.SessionSettings{})
	if err != nil {
		return s, fmt.Errorf("soak: %w", err)
	}
	s.sup = agent.NewSupervisor(agent.SupervisorOptions{Exe: o.AgentExe, Env: o.AgentEnv, Logger: o.Logger})
	if s.login, err = s.sup.Start(sctx, spec, agent.Secrets{}, nil); err != nil {
		return s, fmt.Errorf("soak: start the agent: %w", err)
	}
	if err := s.login.Connect(sctx); err != nil {
		return s, fmt.Errorf("soak: connect through sshd: %w", err)
	}
	if s.webFwd, s.rawFwd, err = forwardAddrs(sctx, s.login); err != nil {
		return s, fmt.Errorf("soak: %w", err)
	}
	c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, a := range []string{s.webFwd, s.rawFwd} {
		if err := soakGet(sctx, c, a); err != nil {
			return s, fmt.Errorf("soak: GET through %s before the soak: %w", a, err)
		}
	}
	return s, nil
}

func (s *soakRig) close() {
	if s.sup != nil {
		_ = s.sup.Close()
	}
	if s.web != nil {
		_ = s.web.Close()
	}
	if s.sshd != nil {
		_ = s.sshd.Close()
	}
	if s.home != "" {
		_ = os.RemoveAll(s.home)
	}
}

// rigLoginSpec is the login of the fault rig and the soak: sshd reached at
// addr (sshd's own or a relay's), key auth, a known_hosts in home, and two
// forwards to the web app on the server: "web" (a web forward) and "raw"
// (a local forward).
func rigLoginSpec(sshd *testrig.Sshd, addr, home string, webPort int, session agent.SessionSettings) (agent.LoginSpec, error) {
	known := filepath.Join(home, "known_hosts")
	if err := sshconn.AppendKnownHost(known, addr, sshd.HostKeys[0], false); err != nil {
		return agent.LoginSpec{}, err
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return agent.LoginSpec{}, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return agent.LoginSpec{}, fmt.Errorf("port of %s: %w", addr, err)
	}
	if session.ConnectTimeout == 0 {
		session.ConnectTimeout = 5 * time.Second
	}
	return agent.LoginSpec{
		ID: "faults", Name: "faults", Host: host, Port: port, User: sshd.User,
		IdentityFiles: []string{sshd.ClientKeyPath}, AuthMethods: []agent.AuthMethod{agent.AuthKey},
		SSHConfigPath: "none", SystemConfigPath: "none", HomeDir: home, KnownHostsFiles: []string{known}, AgentSocket: "none",
		Session: session,
		Forwards: []agent.ForwardSpec{
			{ID: "web", Web: &forwarder.WebSpec{BindAddress: "127.0.0.1", TargetHost: "localhost", TargetPort: webPort,
				ServerName: "faults", AllowedFrameAncestors: forwarder.WailsFrameAncestors}},
			{ID: "raw", Local: forwarder.LocalSpec{BindAddress: "127.0.0.1", TargetHost: "127.0.0.1", TargetPort: webPort}},
		},
	}, nil
}

// forwardAddrs are the local addresses of rigLoginSpec's two forwards.
func forwardAddrs(ctx context.Context, l *agent.RemoteLogin) (web, raw string, err error) {
	st, err := l.Stats(ctx)
	if err != nil {
		return "", "", err
	}
	for _, f := range st.Forwards {
		switch f.ID {
		case "web":
			web = f.Addr
		case "raw":
			raw = f.Addr
		}
	}
	if web == "" || raw == "" {
		return "", "", fmt.Errorf("forwards not listening: %+v", st.Forwards)
	}
	return web, raw, nil
}

// soakRun sends n connections through fwds (in turn), parallel at a time,
// each a new TCP connection with one GET /small within timeout.
func soakRun(ctx context.Context, fwds []string, n, parallel int, timeout time.Duration) (failed int, first []string, took time.Duration) {
	var next, errs atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for w := range parallel {
		wg.Go(func() {
			// Each worker dials from its own loopback address, so that
			// 100k connections in a row do not run out of ports.
			src := net.IPv4(127, 0, byte(1+w/250), byte(1+w%250))
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: timeout}
			tr := &http.Transport{DisableKeepAlives: true, DialContext: d.DialContext}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: timeout}
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				addr := fwds[i%int64(len(fwds))]
				if err := soakGet(ctx, c, addr); err != nil {
					errs.Add(1)
					mu.Lock()
					if len(first) < 5 {
						first = append(first, fmt.Sprintf("#%d via %s: %v", i, addr, err))
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return int(errs.Load()), first, time.Since(start)
}

// soakGet fetches /small through addr with c (which must not keep
// connections) within c.Timeout.
func soakGet(ctx context.Context, c *http.Client, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/small", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var b [16]byte
	n, _ := resp.Body.Read(b[:])
	if resp.StatusCode != http.StatusOK || string(b[:n]) != "small\n" {
		return fmt.Errorf("%s: %q", resp.Status, b[:n])
	}
	return nil
}

// countFDs counts pid's open file descriptors.
func countFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, fmt.Errorf("list the fds of %d: %w", pid, err)
	}
	return len(ents), nil
}

// cpuTime is the CPU time (user + system) pid used so far, from
// /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read the CPU time of %d: %w", pid, err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command", pid, len(f))
	}
	// Fields after the command: state(0) … utime(11) stime(12), in clock ticks.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz, nil
}

// procMem is pid's VmRSS (bytes) and thread count, from /proc/PID/status.
func procMem(pid int) (rss int64, threads int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	var haveRSS bool
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB":
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("/proc/%d/status: VmRSS: %w", pid, err)
			}
			rss, haveRSS = kb*1024, true
		case len(f) == 2 && f[0] == "Threads:":
			threads, _ = strconv.Atoi(f[1])
		}
	}
	if !haveRSS {
		return 0, threads, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	return rss, threads, nil
}
