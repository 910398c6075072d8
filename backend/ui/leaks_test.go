package ui

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/porthole-app/porthole/backend/leaks"
	"github.com/porthole-app/porthole/backend/portmap"
	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/internal/testrig"
)

// Issue 13 section 5: a real OpenSSH `ssh -N -L` to a real sshd, orphaned
// (started by a shell that exits), forwarding to the test web app. The
// finder lists it as leaked and open to other users (not other machines);
// adopting it imports the ~/.ssh/config host it names, connects it, saves
// the forward as a rule, ends the ssh and listens on the same port, where
// the web app answers again, now through Porthole (in an agent process).
func TestAdoptLeakedSSHTunnel(t *testing.T) {
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("OpenSSH's ssh client is not installed")
	}
	sshd := testrig.NewSshd(t, testrig.SshdOptions{HostKeyTypes: []string{"ed25519"}})
	web := testrig.NewWebApp(t)
	ta := newTestApp(t, testAppOptions{agents: true, sshConfig: sshd.SSHConfigBlock("leaktest")})
	kh, err := os.ReadFile(sshd.KnownHostsPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ta.home, ".ssh", "known_hosts"), kh, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(ta.home, ".ssh", "config")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	local := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	spec := fmt.Sprintf("%s:127.0.0.1:%d", local, web.Port())

	// Orphan it: setsid sh starts ssh in the background, prints its PID and exits.
	sshLog := filepath.Join(t.TempDir(), "ssh.log")
	script := `"$0" "$@" </dev/null >/dev/null 2>>"$SSH_LOG" & echo $!`
	c := exec.Command("setsid", "sh", "-c", script, sshBin, "-F", cfg, "-N", "-o", "ExitOnForwardFailure=yes", "-L", spec, "leaktest")
	c.Env = append(os.Environ(), "SSH_LOG="+sshLog)
	out, err := c.Output()
	if err != nil {
		t.Fatalf("start ssh: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("sh printed %q", out)
	}
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil && processAlive(pid) {
			_ = p.Signal(syscall.SIGKILL)
		}
		if t.Failed() {
			b, _ := os.ReadFile(sshLog)
			t.Logf("ssh's stderr:\n%s", b)
		}
	})
	hc := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	get := func() (int, string, error) {
		resp, err := hc.Get("http://" + local + "/")
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	waitUntil(t, "the ssh tunnel to answer", func() bool {
		code, _, err := get()
		return err == nil && code == 200
	})
	hc.CloseIdleConnections()

	list, err := ta.app.ListLeakedTunnels()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(list.Tunnels, func(tu leaks.Tunnel) bool { return tu.PID == int32(pid) })
	if i < 0 {
		t.Fatalf("ListLeakedTunnels does not show ssh PID %d: %+v", pid, list)
	}
	tu := list.Tunnels[i]
	if !tu.Leaked || tu.Program != leaks.ProgramSSH || !tu.OtherUsers || tu.OtherMachines || !tu.Adoptable || tu.Destination != "leaktest" || list.Leaked < 1 {
		t.Fatalf("tunnel = %+v; want a leaked, adoptable ssh to leaktest, open to other users, not other machines", tu)
	}
	if len(tu.Forwards) != 1 || tu.Forwards[0].Spec != spec || !slices.Contains(tu.Forwards[0].Listeners, local) || tu.Forwards[0].Reach != leaks.ReachLocalUsers {
		t.Fatalf("forwards = %+v; want the one -L listening on %s", tu.Forwards, local)
	}

	res, err := ta.app.AdoptTunnelProcess(pid)
	if err != nil {
		t.Fatalf("AdoptTunnelProcess: %v (%+v)", err, res)
	}
	if !res.CreatedServer || res.ServerName != "leaktest" || len(res.Forwards) != 1 || res.Forwards[0].Addr != local || res.Ended.PID != int32(pid) {
		t.Fatalf("AdoptTunnelProcess = %+v; want a new server leaktest and the forward on %s", res, local)
	}
	if processAlive(pid) {
		t.Fatal("the ssh process is still running after the adoption")
	}
	code, body, err := get()
	if err != nil || code != 200 || !strings.Contains(body, "<title>"+testrig.WebAppTitle+"</title>") {
		t.Fatalf("GET through the adopted port = %d, %v; want the test web app", code, err)
	}
	if h, ok := portmap.WhoHolds(context.Background(), port); !ok || h.PID == int32(pid) || h.Name == "ssh" {
		t.Errorf("port %d is held by %v (known %v); want Porthole's agent", port, h, ok)
	}
	p, err := ta.app.GetServer(res.ServerID)
	if err != nil {
		t.Fatal(err)
	}
	want := profiles.ForwardRule{Kind: profiles.ForwardLocal, LocalHost: "127.0.0.1", LocalPort: port, RemoteHost: "127.0.0.1", RemotePort: web.Port()}
	if p.SSHConfigAlias != "leaktest" || len(p.Forwards) != 1 || p.Forwards[0].Label == "" {
		t.Fatalf("profile = %+v; want leaktest linked, with the adopted rule", p)
	}
	rl, err := ta.app.ListRules(res.ServerID)
	if err != nil || len(rl.Rules) != 1 || rl.Rules[0].State.String() != "listening" || rl.Rules[0].Local != local {
		t.Fatalf("ListRules = %+v, %v; want the adopted rule listening on %s", rl, err, local)
	}
	got := p.Forwards[0]
	if got.Kind != want.Kind || got.LocalHost != want.LocalHost || got.LocalPort != want.LocalPort || got.RemoteHost != want.RemoteHost || got.RemotePort != want.RemotePort || got.ID == "" {
		t.Errorf("saved rule = %+v, want %+v", got, want)
	}
	if again, _ := ta.app.ListLeakedTunnels(); slices.ContainsFunc(again.Tunnels, func(tu leaks.Tunnel) bool { return tu.PID == int32(pid) }) {
		t.Error("the ended ssh is still listed")
	}
}

// processAlive: pid runs and is not a zombie (an orphan init has not
// reaped yet has exited).
func processAlive(pid int) bool {
	p, err := process.NewProcess(int32(pid))
	if err != nil {
		return false
	}
	st, err := p.Status()
	return err == nil && !slices.Contains(st, process.Zombie)
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out (20 s) waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
