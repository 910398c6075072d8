package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// tool is one of the two forwarders being compared.
type tool int

const (
	toolSSH tool = iota
	toolPorthole
)

func (t tool) String() string {
	switch t {
	case toolSSH:
		return "ssh -N -L"
	case toolPorthole:
		return "porthole forward"
	default:
		return "tool(" + strconv.Itoa(int(t)) + ")"
	}
}

// short is the tool's name in logs.
func (t tool) short() string {
	if t == toolPorthole {
		return "porthole"
	}
	return "ssh"
}

var tools = [2]tool{toolSSH, toolPorthole}

// tunnelSpec is everything needed to build a tunnel command line.
type tunnelSpec struct {
	tool       tool
	localPort  int    // 127.0.0.1:localPort is the forward's listener
	targetPort int    // 127.0.0.1:targetPort on the server (the web app)
	sshPort    int    // the relay's port (the SSH server as the client sees it)
	user       string // login name
	key        string // private key file
	knownHosts string // known_hosts listing [127.0.0.1]:sshPort
	cipher     string // "" for each tool's default
	// dynamic makes the tunnel a SOCKS proxy (-D) on localPort instead of
	// a -L forward; clients then reach the web app as localhost:targetPort
	// through it, the name resolved by sshd.
	dynamic bool
	// remote makes it a -R forward: the server (on this machine) listens on
	// 127.0.0.1:localPort and forwards to 127.0.0.1:targetPort here; the
	// ssh column then runs autossh -M 0.
	remote bool
	// autossh runs the ssh column under autossh -M 0 (as -R does).
	autossh bool
}

// commands builds the command lines of both tools. It is the only place
// that knows their flags.
type commands struct {
	sshPath      string
	autosshPath  string // "" when autossh is not installed
	portholePath string
	aa           bool // run ssh for toolPorthole too
}

func (c commands) build(s tunnelSpec) (string, []string) {
	if s.tool == toolPorthole && !c.aa {
		return c.portholePath, portholeArgs(s)
	}
	if s.remote || s.autossh {
		return c.autosshPath, append([]string{"-M", "0"}, sshArgs(s)...)
	}
	return c.sshPath, sshArgs(s)
}

// forwardFlag is -L, -R or -D with its spec (the same for both tools).
func forwardFlag(s tunnelSpec) (string, string) {
	switch {
	case s.remote:
		return "-R", fmt.Sprintf("%d:127.0.0.1:%d", s.localPort, s.targetPort)
	case s.dynamic:
		return "-D", fmt.Sprintf("127.0.0.1:%d", s.localPort)
	}
	return "-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", s.localPort, s.targetPort)
}

// sshArgs is `ssh -N -L` as an OpenSSH user would run it for a long-lived
// tunnel (the way autossh -M 0 is usually configured).
func sshArgs(s tunnelSpec) []string {
	flag, fwd := forwardFlag(s)
	args := []string{
		"-F", "/dev/null", // do not read ~/.ssh/config or /etc/ssh/ssh_config
		"-N",
		flag, fwd,
		"-p", strconv.Itoa(s.sshPort),
		"-i", s.key,
		"-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + s.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
		"-o", "ExitOnForwardFailure=yes",
		"-o", "ServerAliveInterval=15",
		"-o", "ServerAliveCountMax=3",
	}
	if s.cipher != "" {
		args = append(args, "-c", s.cipher)
	}
	return append(args, s.user+"@127.0.0.1")
}

// portholeArgs is `porthole forward -L`, with ssh's flags.
func portholeArgs(s tunnelSpec) []string {
	flag, fwd := forwardFlag(s)
	args := []string{
		"forward",
		flag, fwd,
		"-p", strconv.Itoa(s.sshPort),
		"-i", s.key,
		"-o", "UserKnownHostsFile=" + s.knownHosts,
	}
	if s.cipher != "" {
		args = append(args, "-o", "Ciphers="+s.cipher)
	}
	return append(args, s.user+"@127.0.0.1")
}

// tunnel is one running forwarder process, leader of its own process group.
type tunnel struct {
	spec    tunnelSpec
	argv    []string
	cmd     *exec.Cmd
	started time.Time // just before exec
	out     *tailBuffer

	exited  chan struct{} // closed when the process has exited and been reaped
	waitErr error         // valid after exited is closed

	closeOnce sync.Once
}

// startTunnel execs the forwarder. It does not wait for it to be ready.
func startTunnel(c commands, spec tunnelSpec) (*tunnel, error) {
	path, args := c.build(spec)
	cmd := exec.Command(path, args...)
	out := newTailBuffer(32 << 10)
	cmd.Stdin = nil // /dev/null
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = 2 * time.Second
	if (spec.remote || spec.autossh) && spec.tool == toolSSH {
		// autossh: restart ssh whenever it exits, even right after start.
		cmd.Env = append(os.Environ(), "AUTOSSH_GATETIME=0", "AUTOSSH_LOGFILE=/dev/stderr")
	}
	// Own process group: Ctrl-C on the terminal does not reach it, and we can
	// stop/continue/kill the whole group. Pdeathsig: dies with the bench even
	// if the bench is killed with SIGKILL.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	t := &tunnel{spec: spec, argv: append([]string{path}, args...), cmd: cmd, out: out, exited: make(chan struct{})}
	t.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.tool, err)
	}
	go func() {
		t.waitErr = cmd.Wait()
		close(t.exited)
	}()
	return t, nil
}

func (t *tunnel) pid() int { return t.cmd.Process.Pid }

func (t *tunnel) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(t.spec.localPort)) }

// url is path on the web app through the tunnel: on its local port, or for a
// SOCKS tunnel on localhost:targetPort (fetch it with transport).
func (t *tunnel) url(path string) string {
	if t.spec.dynamic {
		return "http://" + net.JoinHostPort("localhost", strconv.Itoa(t.spec.targetPort)) + path
	}
	return "http://" + t.addr() + path
}

// transport is newTransport, through the tunnel's SOCKS proxy for a SOCKS
// tunnel (socks5h: the host name goes to the proxy unresolved).
func (t *tunnel) transport(keepAlive bool, maxConns int) *http.Transport {
	tr := newTransport(keepAlive, maxConns)
	if t.spec.dynamic {
		tr.Proxy = http.ProxyURL(&url.URL{Scheme: "socks5h", Host: t.addr()})
	}
	return tr
}

func (t *tunnel) hasExited() bool {
	select {
	case <-t.exited:
		return true
	default:
		return false
	}
}

// exitError describes how the process ended, with the tail of its output.
func (t *tunnel) exitError() error {
	return fmt.Errorf("%s exited (%v); its output ends with: %s", filepathBase(t.argv[0]), t.waitErr, t.out.lastLines(5))
}

// signalGroup sends sig to the tunnel's process group and to any descendant
// that left it (a forwarder may start helpers in their own session).
func (t *tunnel) signalGroup(sig syscall.Signal) error {
	others, _ := t.processes()
	if err := syscall.Kill(-t.pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %v to process group %d: %w", sig, t.pid(), err)
	}
	for _, p := range others {
		if p.pgrp != t.pid() {
			_ = syscall.Kill(p.pid, sig)
		}
	}
	return nil
}

// Close stops the whole process group (SIGTERM, then SIGKILL after 2 s) and
// waits for the leader to be reaped. Safe to call more than once.
func (t *tunnel) Close() {
	t.closeOnce.Do(func() {
		procs, _ := t.processes()
		_ = t.signalGroup(syscall.SIGCONT) // a stopped process ignores SIGTERM until continued
		_ = t.signalGroup(syscall.SIGTERM)
		select {
		case <-t.exited:
		case <-time.After(2 * time.Second):
			_ = t.signalGroup(syscall.SIGKILL)
			<-t.exited // bounded: SIGKILL, then WaitDelay
		}
		// Stragglers the leader left behind (found before it exited).
		_ = syscall.Kill(-t.pid(), syscall.SIGKILL)
		for _, p := range procs {
			if p.pid != t.pid() {
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
			}
		}
	})
}

// memory is resident memory in kB, summed over a tunnel's processes.
type memory struct {
	rss, anon, file int64 // VmRSS, RssAnon, RssFile
	procs           int
}

// memory sums VmRSS (and its anonymous and file-backed parts) over the
// tunnel's processes (its process group and descendants).
func (t *tunnel) memory() (memory, error) {
	procs, err := t.processes()
	if err != nil {
		return memory{}, err
	}
	var m memory
	for _, p := range procs {
		status, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/status")
		if err != nil {
			continue
		}
		kb, err := parseVmRSS(string(status))
		if err != nil {
			continue // zombie: no VmRSS
		}
		m.rss += kb
		m.procs++
		if kb, err := parseStatusKB(string(status), "RssAnon"); err == nil {
			m.anon += kb
		}
		if kb, err := parseStatusKB(string(status), "RssFile"); err == nil {
			m.file += kb
		}
	}
	if m.procs == 0 {
		return memory{}, fmt.Errorf("no live process of %s (pid %d)", t.spec.tool, t.pid())
	}
	return m, nil
}

// procInfo is one process from /proc.
type procInfo struct{ pid, ppid, pgrp int }

// processes lists the live processes in the tunnel's process group and
// their descendants, wherever they are.
func (t *tunnel) processes() ([]procInfo, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var all []procInfo
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		ppid, pgrp, err := parseStat(string(stat))
		if err != nil {
			continue
		}
		all = append(all, procInfo{pid: pid, ppid: ppid, pgrp: pgrp})
	}
	return familyOf(all, t.pid()), nil
}

// familyOf returns the processes in group pgid plus all their descendants.
func familyOf(all []procInfo, pgid int) []procInfo {
	in := make(map[int]bool)
	for _, p := range all {
		if p.pgrp == pgid || p.pid == pgid {
			in[p.pid] = true
		}
	}
	for changed := true; changed; { // bounded: each pass adds at least one pid
		changed = false
		for _, p := range all {
			if !in[p.pid] && in[p.ppid] {
				in[p.pid] = true
				changed = true
			}
		}
	}
	var out []procInfo
	for _, p := range all {
		if in[p.pid] {
			out = append(out, p)
		}
	}
	return out
}

var errNoField = errors.New("field not found")

// parseVmRSS returns the VmRSS value in kB from the text of /proc/PID/status.
func parseVmRSS(status string) (int64, error) { return parseStatusKB(status, "VmRSS") }

// parseStatusKB returns the value in kB of a "Field:  N kB" line of
// /proc/PID/status.
func parseStatusKB(status, field string) (int64, error) {
	for line := range strings.Lines(status) {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s line %q: want \"%s: N kB\"", field, strings.TrimSpace(line), field)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s line %q: bad number", field, strings.TrimSpace(line))
		}
		return n, nil
	}
	return 0, fmt.Errorf("%s: %w", field, errNoField)
}

// parseStat returns the parent pid (field 4) and process group (field 5)
// from /proc/PID/stat. The command name (field 2) is in parentheses and may
// contain spaces and parentheses, so fields are counted after its last ')'.
func parseStat(stat string) (ppid, pgrp int, err error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("stat: no ')' after the command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0]=state f[1]=ppid f[2]=pgrp
	if len(f) < 3 {
		return 0, 0, fmt.Errorf("stat: %w: pgrp", errNoField)
	}
	if ppid, err = strconv.Atoi(f[1]); err != nil {
		return 0, 0, fmt.Errorf("stat: ppid %q: %w", f[1], err)
	}
	if pgrp, err = strconv.Atoi(f[2]); err != nil {
		return 0, 0, fmt.Errorf("stat: pgrp %q: %w", f[2], err)
	}
	return ppid, pgrp, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// lastLines returns the last n non-empty lines joined by " | ".
func (b *tailBuffer) lastLines(n int) string {
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	s := strings.Join(lines, " | ")
	if s == "" {
		return "(no output)"
	}
	return s
}

// freePort asks the kernel for a free loopback port.
func freePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func filepathBase(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// contains reports whether b holds s (used on command output).
func contains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }

// cpuTime is the user+system CPU time the tunnel's processes have used so
// far (utime + stime of /proc/PID/stat, at USER_HZ = 100 ticks a second).
func (t *tunnel) cpuTime() time.Duration {
	procs, _ := t.processes()
	var ticks int64
	for _, p := range procs {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/stat")
		if err != nil {
			continue
		}
		if n, err := parseStatCPU(string(stat)); err == nil {
			ticks += n
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// parseStatCPU returns utime + stime (fields 14 and 15) of /proc/PID/stat
// in clock ticks.
func parseStatCPU(stat string) (int64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no ')' after the command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %w: utime, stime", errNoField)
	}
	u, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: utime %q: %w", f[11], err)
	}
	s, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: stime %q: %w", f[12], err)
	}
	return u + s, nil
}
