package discovery

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// listenersForScript opens a loopback listener and an all-interfaces one
// (dual-stack "::" where the machine has IPv6) and returns their ports.
func listenersForScript(t *testing.T) (loop, all int) {
	t.Helper()
	l1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l1.Close() })
	l2, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l2.Close() })
	return l1.Addr().(*net.TCPAddr).Port, l2.Addr().(*net.TCPAddr).Port
}

// checkOwnListener asserts that the candidates hold port, owned by this
// test process with its cwd and a plausible start time.
func checkOwnListener(t *testing.T, cands []candidate, port int, scope Scope, withStart bool) {
	t.Helper()
	wd, _ := os.Getwd()
	for _, c := range cands {
		if c.svc.Port != port {
			continue
		}
		p := c.svc.Process
		if p == nil || p.PID != os.Getpid() {
			t.Fatalf("port %d: process %+v, want pid %d", port, p, os.Getpid())
		}
		if p.Cwd != wd {
			t.Errorf("port %d: cwd %q, want %q", port, p.Cwd, wd)
		}
		if !strings.Contains(p.Cmdline, "discovery.test") {
			t.Errorf("port %d: cmdline %q", port, p.Cmdline)
		}
		if withStart {
			now := time.Now()
			if p.Started.IsZero() || p.Started.After(now.Add(5*time.Second)) || p.Started.Before(now.Add(-24*time.Hour)) {
				t.Errorf("port %d: start time %v (now %v)", port, p.Started, now)
			}
		}
		if c.svc.Scope != scope {
			t.Errorf("port %d: scope %v, want %v", port, c.svc.Scope, scope)
		}
		return
	}
	t.Errorf("port %d not listed", port)
}

func TestSocketScriptRealShells(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the proc branch needs Linux")
	}
	loop, all := listenersForScript(t)
	for _, sh := range shells() {
		t.Run(sh, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			l, err := remoteListing(ctx, shellExecer{shell: sh}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if l.source != SourceProc || l.skipped != 0 || l.uid != os.Getuid() || l.home != os.Getenv("HOME") {
				t.Errorf("listing: source %v skipped %d uid %d home %q", l.source, l.skipped, l.uid, l.home)
			}
			cands := buildCandidates(l)
			checkOwnListener(t, cands, loop, ScopeLoopback, true)
			checkOwnListener(t, cands, all, ScopeAll, true)
		})
	}
}

// TestSocketScriptFallbacks runs the lsof and netstat branches on this
// machine by making the script believe /proc/net/tcp (and lsof) are missing.
func TestSocketScriptFallbacks(t *testing.T) {
	loop, all := listenersForScript(t)
	noProc := strings.Replace(socketsScript, "[ -r /proc/net/tcp ]", "[ -r /nonexistent/porthole ]", 1)
	noLsof := strings.Replace(noProc, "command -v lsof", "command -v no-such-lsof-porthole", 1)
	if noProc == socketsScript || noLsof == noProc {
		t.Fatal("the script's branch conditions changed; update this test")
	}
	for _, tc := range []struct {
		name, tool, script string
		source             Source
	}{
		{"lsof", "lsof", noProc, SourceLsof},
		{"netstat", "netstat", noLsof, SourceNetstat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := exec.LookPath(tc.tool); err != nil {
				t.Skipf("%s is not installed", tc.tool)
			}
			for _, sh := range shells() {
				t.Run(sh, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					out, err := shellExecer{shell: sh}.Exec(ctx, "sh -c "+shQuote(tc.script))
					if err != nil {
						t.Fatal(err)
					}
					l, err := parseListing(out, nil)
					if err != nil {
						t.Fatal(err)
					}
					if l.source != tc.source {
						t.Fatalf("source = %v, want %v", l.source, tc.source)
					}
					cands := buildCandidates(l)
					if tc.source == SourceLsof {
						// lsof gives the process, ps its command line and start
						// (busybox ps has no elapsed time).
						withStart := !strings.HasPrefix(sh, "busybox")
						checkOwnListener(t, cands, loop, ScopeLoopback, withStart)
						checkOwnListener(t, cands, all, ScopeAll, withStart)
						return
					}
					found := 0
					for _, c := range cands {
						if c.svc.Port == loop || c.svc.Port == all {
							found++
						}
					}
					if found != 2 {
						t.Errorf("netstat listed %d of our 2 listeners", found)
					}
				})
			}
		})
	}
}

// TestSocketScriptScan runs a whole Scan through the real script and a
// plain dialer: the listener is found, probed and identified.
func TestSocketScriptScan(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the proc branch needs Linux")
	}
	checkGoroutines(t)
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "Werkzeug/3.0.4 Python/3.11.7")
		w.Write([]byte("<!doctype html><title>TensorBoard</title><tb-webapp></tb-webapp>"))
	}))
	// Probe only this test's server: other packages' tests run in parallel
	// on this machine and count the connections their listeners get.
	s := NewScanner(shellExecer{shell: "sh"}, netDialer{}, Options{ProbeTimeout: time.Second, Skip: func(svc Service) bool { return svc.Port != port }})
	svcs, err := s.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sv := findService(svcs, port)
	if sv == nil {
		t.Fatalf("port %d not found among %v", port, servicePorts(svcs))
	}
	if sv.Kind != KindTensorBoard || !sv.IsWeb || sv.Process == nil || sv.Process.PID != os.Getpid() || sv.DialHost != "127.0.0.1" {
		t.Errorf("service = %+v", sv)
	}
}
