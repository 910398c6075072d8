package main

// -memory FILE: a benchmark, not a test (make bench runs it; nothing here is
// asserted). It measures the memory (Pss) of Porthole's window with 0, 1, 3
// and 6 app tabs across two servers, and of Debian's Chromium showing the
// same pages as tabs under the same Xvfb, in the same run, and writes the
// rows into FILE's "Memory of app tabs" section (the rest of the file is
// internal/bench's and is kept).
//
// Porthole's Pss is the sum over the window process and its WebKit children
// (WebKitWebProcess, WebKitNetworkProcess); Chromium's over all of its
// processes. The tabs are restored from tabs.json at start (each loads by
// itself, hidden but for none: Start shows), the test app's /persist page;
// the two servers are two saved servers (two SSH connections, two loopback
// addresses) on the test's sshd.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/porthole-app/porthole/backend/apps"
	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/internal/testrig"
)

type memRow struct {
	What  string  `json:"what"`
	Tabs  int     `json:"tabs"`
	PssMB float64 `json:"pssMB"`
	// AloneMB: the distinct pages the processes map (groupMB), their Pss as
	// if nothing else on the machine shared them; 0 when not measured.
	AloneMB float64 `json:"aloneMB,omitempty"`
	Procs   int     `json:"procs"`
	Note    string  `json:"note,omitempty"`
	// Each process's Pss (MB) by name, from the last sample.
	Parts map[string]float64 `json:"parts,omitempty"`
}

// tabSets: how many tabs of each server (a, b) each row opens.
var tabSets = [][2]int{{0, 0}, {1, 0}, {2, 1}, {3, 3}}

func (t *run) memory(ctx context.Context, bin, file string) error {
	for _, tool := range []string{"Xvfb", "dbus-run-session", "gnome-keyring-daemon"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is missing (scripts/deps.sh test installs it): %w", tool, err)
		}
	}
	var err error
	if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	keyringSession, err := filepath.Abs("frontend/e2e/keyring-session.sh")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(t.out, 0o755); err != nil {
		return err
	}
	if t.tmp, err = os.MkdirTemp("", "porthole-desktop-memory-"); err != nil {
		return err
	}
	t.sshd, err = testrig.StartSshd(ctx, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}})
	if err != nil {
		return fmt.Errorf("start sshd: %w", err)
	}
	port, err := t.startWebApp(ctx)
	if err != nil {
		return err
	}
	t.home = filepath.Join(t.tmp, "home")
	if _, err := t.sshd.WriteClientSSHConfig(filepath.Join(t.home, ".ssh", "config"), "lab", "lab2"); err != nil {
		return err
	}
	t.env = append(os.Environ(), "HOME="+t.home,
		"XDG_CONFIG_HOME="+filepath.Join(t.home, ".config"), "XDG_DATA_HOME="+filepath.Join(t.home, ".local", "share"),
		"XDG_STATE_HOME="+filepath.Join(t.home, ".local", "state"), "XDG_CACHE_HOME="+filepath.Join(t.home, ".cache"),
		"SSH_AUTH_SOCK=", "PORTHOLE_LOG=info", "DBUS_SESSION_BUS_ADDRESS=", "LIBGL_ALWAYS_SOFTWARE=1")
	store, err := profiles.Open(filepath.Join(t.home, ".config", "porthole", "profiles.json"), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	var ids [2]string
	for i, alias := range []string{"lab", "lab2"} {
		p, err := store.Add(profiles.Profile{Name: alias, Host: t.sshd.Host, Port: t.sshd.Port, User: t.sshd.User, SSHConfigAlias: alias})
		if err != nil {
			return fmt.Errorf("save server %s: %w", alias, err)
		}
		ids[i] = p.ID
	}
	disp, err := t.startXvfb(ctx)
	if err != nil {
		return err
	}
	t.env = append(t.env, "DISPLAY="+disp)

	var rows []memRow
	for n, set := range tabSets {
		row, err := t.portholeMemory(ctx, bin, keyringSession, n+10, ids, port, set, false)
		if err != nil {
			return err
		}
		t.logf("memory: Porthole, %d tabs: %.0f MB Pss in %d processes", row.Tabs, row.PssMB, row.Procs)
		rows = append(rows, row)
	}
	// The 6 tabs again, all in the background (Start shows) and discarded.
	row, err := t.portholeMemory(ctx, bin, keyringSession, 20, ids, port, tabSets[len(tabSets)-1], true)
	if err != nil {
		return err
	}
	t.logf("memory: Porthole, %d tabs asleep: %.0f MB Pss in %d processes", row.Tabs, row.PssMB, row.Procs)
	rows = append(rows, row)
	// Chromium as it starts by default (its GPU process, on this machine's
	// software GL, as Porthole's WebKit uses it), and with --disable-gpu.
	for _, noGPU := range []bool{false, true} {
		for _, set := range tabSets[1:] {
			row, err := t.chromiumMemory(ctx, port, set, noGPU)
			if err != nil {
				return err
			}
			t.logf("memory: %s, %d tabs: %.0f MB Pss, %.0f MB alone, in %d processes", row.What, row.Tabs, row.PssMB, row.AloneMB, row.Procs)
			rows = append(rows, row)
		}
	}
	if b, err := json.MarshalIndent(rows, "", "  "); err == nil {
		_ = os.WriteFile(filepath.Join(t.out, "memory.json"), b, 0o644)
	}
	return writeMemorySection(file, memoryMarkdown(rows))
}

// persistQuery is tab i's page (each tab its own URL).
func persistPath(i int) string { return fmt.Sprintf("/persist?tab=%d", i) }

func (t *run) portholeMemory(ctx context.Context, bin, keyringSession string, n int, ids [2]string, port int, set [2]int, asleep bool) (memRow, error) {
	discard := 0 // never: the tabs stay awake while measured
	if asleep {
		discard = discardAfterSec
	}
	if b, err := json.Marshal(map[string]int{"tabDiscardSec": discard}); err != nil {
		return memRow{}, err
	} else if err := os.WriteFile(filepath.Join(t.home, ".config", "porthole", "settings.json"), b, 0o600); err != nil {
		return memRow{}, err
	}
	var tabs []apps.SavedTab
	for s, count := range set {
		for range count {
			i := len(tabs) + 1
			tabs = append(tabs, apps.SavedTab{ID: fmt.Sprintf("app-bench-%d", i), ServerID: ids[s], Port: port, Path: persistPath(i), Title: fmt.Sprintf("tab %d", i)})
		}
	}
	b, _ := json.Marshal(tabs)
	if tabs == nil {
		b = []byte("[]")
	}
	if err := os.WriteFile(filepath.Join(t.home, ".config", "porthole", "tabs.json"), b, 0o600); err != nil {
		return memRow{}, err
	}
	mark := t.count()
	win, err := t.startPorthole(ctx, bin, keyringSession, n)
	if err != nil {
		return memRow{}, err
	}
	// (Asleep, a tab may be discarded before its page reports: only the
	// discards are waited for.)
	wait := 90 * time.Second
	if asleep {
		wait = 20 * time.Second
	}
	if err := t.waitReports(ctx, mark, len(tabs), wait); err != nil && !asleep {
		return memRow{}, t.fail(ctx, win, "memory", err)
	}
	sid := t.app.Process.Pid
	if asleep && !waitFor(60*time.Second, func() bool { return len(webProcesses(sid)) == 1 }) {
		return memRow{}, t.fail(ctx, win, "memory", fmt.Errorf("the background tabs were not all discarded within 60 s: %d WebKit web processes", len(webProcesses(sid))))
	}
	pss, alone, procs, parts := settlePss(sid, func(comm string) bool {
		return strings.HasPrefix(comm, "porthole") || strings.HasPrefix(comm, "WebKit")
	})
	row := memRow{What: "Porthole", Tabs: len(tabs), PssMB: pss, AloneMB: alone, Procs: procs, Parts: parts}
	switch {
	case asleep:
		row.What, row.Note = "Porthole, tabs asleep", fmt.Sprintf("the same %d tabs in the background, discarded (tabDiscardSec)", len(tabs))
	case len(tabs) > 0:
		row.Note = fmt.Sprintf("%d on server A, %d on server B", set[0], set[1])
	default:
		row.Note = "the shell alone"
	}
	if err := t.quit(ctx, win, n); err != nil {
		return row, err
	}
	return row, nil
}

func (t *run) chromiumMemory(ctx context.Context, port int, set [2]int, noGPU bool) (memRow, error) {
	exe := "/usr/bin/chromium"
	if _, err := os.Stat(exe); err != nil {
		return memRow{}, fmt.Errorf("%s is missing (apt-get install chromium): %w", exe, err)
	}
	dir, err := os.MkdirTemp(t.tmp, "chromium-")
	if err != nil {
		return memRow{}, err
	}
	// The same pages, straight from the test app (Chromium has no tunnel):
	// server A's tabs on 127.0.0.1, server B's on localhost (two sites, as
	// Porthole's two servers are two origins).
	args := []string{"--no-sandbox", "--no-first-run", "--no-default-browser-check", "--password-store=basic",
		"--user-data-dir=" + dir, "--window-size=1280,800"}
	what := "Chromium " + chromiumVersion(exe)
	if noGPU {
		args = append(args, "--disable-gpu")
		what += " --disable-gpu"
	}
	total := 0
	for s, count := range set {
		for range count {
			total++
			args = append(args, fmt.Sprintf("http://%s:%d%s", []string{"127.0.0.1", "localhost"}[s], port, persistPath(total)))
		}
	}
	mark := t.count()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(t.env, "HOME="+dir)
	logf, err := os.Create(filepath.Join(t.out, fmt.Sprintf("memory-chromium-%d-gpu-%v.log", total, !noGPU)))
	if err != nil {
		return memRow{}, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return memRow{}, fmt.Errorf("start chromium: %w", err)
	}
	defer stopGroup(cmd)
	if err := t.waitReports(ctx, mark, total, 90*time.Second); err != nil {
		return memRow{}, fmt.Errorf("chromium: %w", err)
	}
	pss, alone, procs, parts := settlePss(cmd.Process.Pid, func(string) bool { return true })
	return memRow{What: what, Tabs: total, PssMB: pss, AloneMB: alone, Procs: procs, Parts: parts, Note: "the same pages as tabs, in one window"}, nil
}

// waitReports waits for n /persist/report requests after the first `from` records.
func (t *run) waitReports(ctx context.Context, from, n int, timeout time.Duration) error {
	ok := waitFor(timeout, func() bool {
		t.mu.Lock()
		defer t.mu.Unlock()
		got := 0
		for _, r := range t.records[from:] {
			if r.Path == "/persist/report" {
				got++
			}
		}
		return got >= n || ctx.Err() != nil
	})
	if !ok {
		return fmt.Errorf("fewer than %d pages reported within %s", n, timeout)
	}
	return ctx.Err()
}

// settlePss waits for the pages to settle, then takes the median of three
// samples of the Pss (MB) of session sid's processes that keep says, and of
// their memory as if alone (groupMB; 0 when it cannot be read).
func settlePss(sid int, keep func(comm string) bool) (pss, alone float64, procs int, parts map[string]float64) {
	time.Sleep(8 * time.Second)
	var samples, alones []float64
	for i := range 3 {
		if i > 0 {
			time.Sleep(2 * time.Second)
		}
		sum, n := 0.0, 0
		parts = map[string]float64{}
		var pids []int
		for _, p := range sessionProcesses(sid) {
			if !keep(p.comm) {
				continue
			}
			if kb, ok := pssKB(p.pid); ok {
				sum += kb
				n++
				parts[p.comm] += kb * 1024 / 1e6
				pids = append(pids, p.pid)
			}
		}
		samples = append(samples, sum*1024/1e6) // /proc's kB are 1024 bytes; MB are 10^6
		if mb, ok := groupMB(pids); ok {
			alones = append(alones, mb)
		}
		procs = n
	}
	if len(alones) == 3 {
		alone = median3(alones)
	}
	return median3(samples), alone, procs, parts
}

func median3(v []float64) float64 {
	a, b, c := v[0], v[1], v[2]
	return max(min(a, b), min(max(a, b), c))
}

// pssKB is /proc/PID/smaps_rollup's Pss (in kB as /proc says, 1024 bytes).
func pssKB(pid int) (float64, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
			v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return v, err == nil
		}
	}
	return 0, false
}

func chromiumVersion(exe string) string {
	out, err := exec.Command(exe, "--version").Output()
	if err != nil {
		return ""
	}
	f := strings.Fields(string(out))
	for _, w := range f {
		if len(w) > 0 && w[0] >= '0' && w[0] <= '9' {
			return w
		}
	}
	return ""
}

const (
	memBegin = "<!-- memory: begin (written by go run ./internal/desktoptest -memory) -->"
	memEnd   = "<!-- memory: end -->"
)

func memoryMarkdown(rows []memRow) string {
	var b strings.Builder
	b.WriteString(memBegin + "\n## Memory of app tabs (Linux window) vs Chromium\n\n")
	fmt.Fprintf(&b, "Measured %s on %s, %d cores (load %s), under Xvfb. Each tab is the test app's /persist page, on two servers (two origins). Porthole's rows sum its window process, its WebKit processes and its login processes; Chromium's all of Chromium's processes. Median of three samples, 8 s after the last page reported. MB are 10^6 bytes.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.GOOS, runtime.NumCPU(), loadAvg())
	b.WriteString("- **alone**: the distinct physical pages the processes map (from /proc/PID/pagemap), which is what their Pss adds up to when nothing else on the machine shares their pages. It does not move when other programs run, so the targets are judged on it.\n")
	b.WriteString("- **Pss** as /proc says on this machine: it splits a shared page among every process that maps it, so other WebKit or Chromium processes running at the same time (a build, another test) lower it.\n\n")
	b.WriteString("| browser | tabs | alone | Pss | processes | note |\n|---|---:|---:|---:|---:|---|\n")
	mem := map[string]map[int]float64{}
	for _, r := range rows {
		key := "porthole"
		switch {
		case strings.HasPrefix(r.What, "Chromium") && strings.HasSuffix(r.What, "--disable-gpu"):
			key = "chromium-nogpu"
		case strings.HasPrefix(r.What, "Chromium"):
			key = "chromium"
		case r.What != "Porthole":
			key = "other"
		}
		if mem[key] == nil {
			mem[key] = map[int]float64{}
		}
		mem[key][r.Tabs] = r.judged()
		alone := "–"
		if r.AloneMB > 0 {
			alone = fmt.Sprintf("%.0f MB", r.AloneMB)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %.0f MB | %d | %s |\n", r.What, r.Tabs, alone, r.PssMB, r.Procs, partsText(r))
	}
	ph, ch := mem["porthole"], mem["chromium"]
	b.WriteString("\nTargets (issue 15):\n\n")
	if a, ok1 := ph[3]; ok1 {
		if c, ok2 := ph[6]; ok2 {
			per := (c - a) / 3
			fmt.Fprintf(&b, "- each additional tab of an already-open app ≤ 60 MB: from 3 to 6 tabs (2 more on server B's open app, 1 more on A's) %.0f MB per tab — %s\n", per, metText(per <= 60))
		}
	}
	if p, ok1 := ph[6]; ok1 {
		if c, ok2 := ch[6]; ok2 && c > 0 {
			fmt.Fprintf(&b, "- 6 tabs across 2 servers ≤ 0.8× Chromium (as it starts by default: with its GPU process, on the same software OpenGL that Porthole's WebKit must load): %.0f MB / %.0f MB = %.2f× — %s\n", p, c, p/c, metText(p/c <= 0.8))
		}
		if c, ok2 := mem["chromium-nogpu"][6]; ok2 && c > 0 {
			fmt.Fprintf(&b, "- the same against Chromium --disable-gpu (no OpenGL at all; WebKitGTK 2.50 aborts without an EGL display, so Porthole cannot do the same): %.0f MB / %.0f MB = %.2f×%s\n", p, c, p/c, map[bool]string{true: "", false: " (over 0.8×)"}[p/c <= 0.8])
		}
	}
	b.WriteString("\n" + memEnd + "\n")
	return b.String()
}

// judged is what the targets use: alone when measured, else Pss.
func (r memRow) judged() float64 {
	if r.AloneMB > 0 {
		return r.AloneMB
	}
	return r.PssMB
}

func metText(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// writeMemorySection replaces the memory section of file (or appends it).
func writeMemorySection(file, section string) error {
	old, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	if i, j := strings.Index(s, memBegin), strings.Index(s, memEnd); i >= 0 && j > i {
		s = s[:i] + section + strings.TrimPrefix(s[j+len(memEnd):], "\n")
	} else {
		if s != "" && !strings.HasSuffix(s, "\n\n") {
			s = strings.TrimRight(s, "\n") + "\n\n"
		}
		s += section
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// partsText is a row's note and its processes' Pss by name.
func partsText(r memRow) string {
	names := make([]string, 0, len(r.Parts))
	for n := range r.Parts {
		names = append(names, n)
	}
	sort.Strings(names)
	var p []string
	for _, n := range names {
		p = append(p, fmt.Sprintf("%s %.0f", n, r.Parts[n]))
	}
	if len(p) == 0 {
		return r.Note
	}
	return r.Note + " (Pss MB by process: " + strings.Join(p, ", ") + ")"
}
