package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

// rig is the set-up shared by every measure: sshd ← relay ← tunnels, and
// the web app on 127.0.0.1 that only the tunnels reach (through sshd).
type rig struct {
	log        *slog.Logger
	cfg        config
	cmds       commands
	sshd       *testrig.Sshd
	relay      *testrig.Relay
	web        *testrig.WebApp
	dir        string // our temp dir (known_hosts)
	knownHosts string // lists the relay's [127.0.0.1]:port with sshd's host keys
	relayPort  int
	webPort    int

	// portholeErr is why the porthole column is empty, or nil.
	portholeErr error
	// portholeErrApp is why `porthole serve` could not be used (app rows).
	portholeErrApp error
}

// startRig starts sshd, the relay and the web app. Close stops them.
func startRig(ctx context.Context, cfg config, log *slog.Logger) (_ *rig, err error) {
	r := &rig{log: log, cfg: cfg}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		return nil, fmt.Errorf("find the OpenSSH client: %w (install openssh-client)", err)
	}
	r.cmds = commands{sshPath: sshPath, portholePath: cfg.porthole, aa: cfg.aa}
	if p, err := exec.LookPath("autossh"); err == nil {
		r.cmds.autosshPath = p
	}
	if !cfg.aa {
		r.portholeErr = checkPorthole(ctx, cfg.porthole)
		if r.portholeErr != nil {
			log.Warn("the porthole column will be empty", "err", r.portholeErr)
		}
	}

	r.dir, err = os.MkdirTemp("", "porthole-bench-")
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r.sshd, err = testrig.StartSshd(sctx, testrig.SshdOptions{
		HostKeyTypes: []string{"ed25519"},
		// DEBUG1 logs the negotiated cipher ("kex: ... cipher: ..."); extra
		// lines come first in sshd_config, so this overrides the rig's level.
		// SetEnv SHLVL: bash skips ~/.bashrc for ssh commands at SHLVL ≥ 2.
		// Porthole's -R reclaim runs a server-side command, and a login
		// shell's rc file (on the bench machine root's hangs for 60 s on a
		// stale pyenv lock) is not what the remote row measures.
		ExtraConfig: []string{"LogLevel DEBUG1", "SetEnv SHLVL=9"},
	})
	if err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	r.relay, err = testrig.StartRelay(sctx, testrig.RelayOptions{Target: r.sshd.Addr})
	if err != nil {
		return nil, fmt.Errorf("start relay: %w", err)
	}
	if r.relayPort, err = port(r.relay.Addr()); err != nil {
		return nil, err
	}
	r.web, err = testrig.StartWebApp(sctx, testrig.WebAppOptions{})
	if err != nil {
		return nil, fmt.Errorf("start web app: %w", err)
	}
	r.web.SetKeepAlive(true)
	r.webPort = r.web.Port()

	kh, err := os.ReadFile(r.sshd.KnownHostsPath)
	if err != nil {
		return nil, fmt.Errorf("read sshd's known_hosts: %w", err)
	}
	lines, err := rehostKnownHosts(string(kh), fmt.Sprintf("[127.0.0.1]:%d", r.relayPort))
	if err != nil {
		return nil, fmt.Errorf("known_hosts for the relay: %w", err)
	}
	r.knownHosts = filepath.Join(r.dir, "known_hosts")
	if err := os.WriteFile(r.knownHosts, []byte(lines), 0o600); err != nil {
		return nil, fmt.Errorf("write known_hosts: %w", err)
	}
	log.Info("rig up", "sshd", r.sshd.Addr, "relay", r.relay.Addr(), "webapp", r.web.URL())
	return r, nil
}

// Close stops everything the rig started. Safe on a partly started rig.
func (r *rig) Close() {
	if r.web != nil {
		r.web.Close()
	}
	if r.relay != nil {
		r.relay.Close()
	}
	if r.sshd != nil {
		r.sshd.Close()
	}
	if r.dir != "" {
		os.RemoveAll(r.dir)
	}
}

// rehostKnownHosts rewrites every key line of a known_hosts file to name
// host instead (keeping key type and key).
func rehostKnownHosts(kh, host string) (string, error) {
	var b strings.Builder
	for line := range strings.Lines(kh) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "@") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return "", fmt.Errorf("known_hosts line %q: want \"host keytype key\"", line)
		}
		fmt.Fprintf(&b, "%s %s %s\n", host, f[1], f[2])
	}
	if b.Len() == 0 {
		return "", errors.New("sshd's known_hosts has no key line")
	}
	return b.String(), nil
}

// checkPorthole reports whether path supports `forward`.
func checkPorthole(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("porthole binary %s: %w (run make build)", path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "forward", "-h")
	cmd.WaitDelay = time.Second
	out, _ := cmd.CombinedOutput() // -h may exit 0 or 2
	if contains(out, "not available") || !contains(out, "-L") {
		return fmt.Errorf("%s does not support `forward` yet (forward -h says: %s)", path, firstLine(string(out)))
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// available reports whether a tool's column is measured.
func (r *rig) available(t tool) bool { return t == toolSSH || r.portholeErr == nil }

// spec is a tunnel of tool t to the web app on a fresh local port.
func (r *rig) spec(ctx context.Context, t tool, cipher string) (tunnelSpec, error) {
	lp, err := freePort(ctx)
	if err != nil {
		return tunnelSpec{}, err
	}
	return tunnelSpec{
		tool:       t,
		localPort:  lp,
		targetPort: r.webPort,
		sshPort:    r.relayPort,
		user:       r.sshd.User,
		key:        r.sshd.ClientKeyPath,
		knownHosts: r.knownHosts,
		cipher:     cipher,
	}, nil
}

// setRTT sets the relay's round-trip time.
func (r *rig) setRTT(rtt time.Duration) { r.relay.SetDelay(rtt / 2) }

// start execs a tunnel and waits until a GET through it succeeds. It
// returns the time from exec to that first response.
func (r *rig) start(ctx context.Context, t tool, cipher string) (*tunnel, time.Duration, error) {
	return r.startSpec(ctx, t, cipher, false)
}

// startSpec is start, for a SOCKS (-D) tunnel when dynamic is set.
func (r *rig) startSpec(ctx context.Context, t tool, cipher string, dynamic bool) (*tunnel, time.Duration, error) {
	spec, err := r.spec(ctx, t, cipher)
	if err != nil {
		return nil, 0, err
	}
	spec.dynamic = dynamic
	tun, err := startTunnel(r.cmds, spec)
	if err != nil {
		return nil, 0, err
	}
	r.log.Debug("tunnel started", "tool", t.short(), "pid", tun.pid(), "argv", strings.Join(tun.argv, " "))
	d, err := waitReady(ctx, tun, 30*time.Second)
	if err != nil {
		tun.Close()
		return nil, 0, err
	}
	r.log.Debug("tunnel ready", "tool", t.short(), "after", d)
	return tun, d, nil
}

// waitReady polls GET /small through the tunnel until it succeeds, and
// returns the time since exec.
func waitReady(ctx context.Context, tun *tunnel, limit time.Duration) (time.Duration, error) {
	tr := tun.transport(false, 1)
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last error
	for {
		if tun.hasExited() {
			return 0, fmt.Errorf("wait for the tunnel to work: %w", tun.exitError())
		}
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := getAll(rctx, tr, tun.url("/small"))
		rcancel()
		if err == nil {
			return time.Since(tun.started), nil
		}
		last = err
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%s not working after %v: last error: %v; its output ends with: %s",
				tun.spec.tool, limit, last, tun.out.lastLines(5))
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// pair is one tunnel per tool, up at the same time.
type pair struct {
	tun [2]*tunnel
	err [2]error
}

// startPair starts both tools' tunnels (those available) with cipher.
func (r *rig) startPair(ctx context.Context, cipher string) *pair {
	return r.startPairSpec(ctx, cipher, false)
}

// startPairSpec is startPair, of SOCKS (-D) tunnels when dynamic is set.
func (r *rig) startPairSpec(ctx context.Context, cipher string, dynamic bool) *pair {
	p := &pair{}
	for _, t := range tools {
		if !r.available(t) {
			p.err[t] = r.portholeErr
			continue
		}
		p.tun[t], _, p.err[t] = r.startSpec(ctx, t, cipher, dynamic)
		if p.err[t] != nil {
			r.log.Warn("tunnel failed to start", "tool", t.short(), "err", p.err[t])
		}
	}
	return p
}

func (p *pair) Close() {
	for _, t := range p.tun {
		if t != nil {
			t.Close()
		}
	}
}

// order returns the two tools in an order that alternates with i (ABBA…),
// so that neither always goes first.
func order(i int) [2]tool {
	if i%4 == 1 || i%4 == 2 {
		return [2]tool{toolPorthole, toolSSH}
	}
	return [2]tool{toolSSH, toolPorthole}
}

// machine describes the computer the bench ran on.
type machine struct {
	cpu, kernel, goVersion, openssh, os, porthole string
	load                                          string // /proc/loadavg's 1, 5 and 15 min averages at the start
	cores                                         int
	ramBytes                                      int64
}

func probeMachine(ctx context.Context, r *rig, goVersion string) machine {
	m := machine{goVersion: goVersion, cpu: "unknown", kernel: "unknown", openssh: "unknown", os: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.cpu, m.cores = parseCPUInfo(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kb, err := parseMemTotal(string(b)); err == nil {
			m.ramBytes = kb * 1024
		}
	}
	m.load = "unknown"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.load = strings.Join(f[:3], ", ")
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		m.os = parseOSRelease(string(b))
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, r.cmds.sshPath, "-V").CombinedOutput(); err == nil {
		m.openssh = firstLine(string(out))
	}
	switch {
	case r.cfg.aa:
		m.porthole = "not run (-aa: OpenSSH in both columns)"
	case r.portholeErr != nil:
		m.porthole = "not run: " + r.portholeErr.Error()
	default:
		m.porthole = r.cfg.porthole
		if out, err := exec.CommandContext(ctx, r.cfg.porthole, "version").Output(); err == nil {
			m.porthole = firstLine(string(out))
		}
	}
	return m
}

// parseCPUInfo returns the first "model name" and the number of processors.
func parseCPUInfo(s string) (model string, cores int) {
	model = "unknown"
	for line := range strings.Lines(s) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "processor":
			cores++
		case "model name":
			if model == "unknown" {
				if v = strings.TrimSpace(v); v != "" {
					model = v
				}
			}
		}
	}
	return model, cores
}

// parseMemTotal returns MemTotal in kB from /proc/meminfo.
func parseMemTotal(s string) (int64, error) {
	for line := range strings.Lines(s) {
		rest, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("MemTotal line %q: want \"MemTotal: N kB\"", strings.TrimSpace(line))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("MemTotal line %q: bad number", strings.TrimSpace(line))
		}
		return n, nil
	}
	return 0, fmt.Errorf("MemTotal: %w", errNoField)
}

// parseOSRelease returns PRETTY_NAME from /etc/os-release.
func parseOSRelease(s string) string {
	for line := range strings.Lines(s) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "PRETTY_NAME="); ok {
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
			return strings.Trim(v, `"'`)
		}
	}
	return "unknown"
}
