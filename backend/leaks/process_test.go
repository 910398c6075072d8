package leaks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/process"
)

// TestMain lets this test binary, copied to a file named ssh, stand in for
// an ssh process: it listens where LEAKS_FAKE_LISTEN says and sleeps.
func TestMain(m *testing.M) {
	if os.Getenv("LEAKS_FAKE_SSH") == "1" {
		fakeSSH()
		return
	}
	os.Exit(m.Run())
}

func fakeSSH() {
	if os.Getenv("LEAKS_FAKE_IGNORE_TERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
	}
	if a := os.Getenv("LEAKS_FAKE_LISTEN"); a != "" {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			os.Exit(3)
		}
		defer ln.Close()
	}
	time.Sleep(2 * time.Minute) // a bound on a crashed test's leftovers
}

// fakeSSHBinary copies this test binary to DIR/ssh, in a directory every
// user can read.
func fakeSSHBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "porthole-leaks-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	path := filepath.Join(dir, "ssh")
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startFake starts the fake ssh with argv[1:] = args, as cred's user when
// cred is set; it is killed and waited for at cleanup.
func startFake(t *testing.T, bin string, env []string, cred *syscall.Credential, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Args[0] = "ssh"
	cmd.Env = append([]string{"LEAKS_FAKE_SSH=1", "PATH=/usr/bin:/bin"}, env...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	waitFor(t, "the fake ssh to run as ssh", func() bool {
		p, err := process.NewProcess(int32(cmd.Process.Pid))
		if err != nil {
			return false
		}
		n, _ := p.Name()
		return n == "ssh"
	})
	return cmd
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out (15 s) waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func alive(pid int) bool {
	p, err := process.NewProcess(int32(pid))
	if err != nil {
		return false
	}
	return !isZombie(context.Background(), p)
}

// A throwaway user runs something that looks like `ssh -N -L …`: the
// finder does not list it, and ending or adopting it is refused however
// privileged Porthole's process is (these tests run as root).
func TestAnotherUsersTunnelIsRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to create a throwaway user")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("useradd is not installed")
	}
	name := fmt.Sprintf("phleak%d", os.Getpid()%100000)
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v\n%s", name, err, out)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)

	bin := fakeSSHBinary(t)
	port := freePort(t)
	spec := fmt.Sprintf("127.0.0.1:%d:127.0.0.1:80", port)
	cmd := startFake(t, bin, []string{"LEAKS_FAKE_LISTEN=127.0.0.1:" + strconv.Itoa(port)}, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
		"-N", "-L", spec, "somewhere")
	pid := cmd.Process.Pid

	f := New(Options{})
	ctx := context.Background()
	_, err = f.End(ctx, pid)
	if !errors.Is(err, ErrNotYours) || !strings.Contains(err.Error(), name) {
		t.Fatalf("End(another user's ssh) = %v; want ErrNotYours naming %s", err, name)
	}
	if _, err := f.Adopt(ctx, pid); !errors.Is(err, ErrNotYours) {
		t.Fatalf("Adopt(another user's ssh) = %v; want ErrNotYours", err)
	}
	if !alive(pid) {
		t.Fatal("the other user's process was ended")
	}
	list, err := f.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(list.Tunnels, func(tu Tunnel) bool { return tu.PID == int32(pid) }) {
		t.Fatalf("List shows another user's process: %+v", list)
	}
}

// A fake ssh of this user, orphaned (its starter exits), listening on its
// -L port: the finder lists it as leaked, exposed to every local user and
// no other machine, and End ends it with SIGTERM; one that ignores SIGTERM
// takes SIGKILL. A process that is not ssh is refused.
func TestListAndEndOwnTunnel(t *testing.T) {
	bin := fakeSSHBinary(t)
	ctx := context.Background()
	f := New(Options{})
	f.termWait = 500 * time.Millisecond

	for _, ignoreTerm := range []bool{false, true} {
		t.Run("ignoreTerm="+strconv.FormatBool(ignoreTerm), func(t *testing.T) {
			port := freePort(t)
			spec := fmt.Sprintf("127.0.0.1:%d:127.0.0.1:80", port)
			// Orphan it: sh starts it in the background, prints its PID and exits.
			script := `"$0" "$@" </dev/null >/dev/null 2>&1 & echo $!`
			c := exec.Command("setsid", "sh", "-c", script, bin, "-N", "-L", spec, "web1")
			c.Env = []string{"LEAKS_FAKE_SSH=1", "LEAKS_FAKE_LISTEN=127.0.0.1:" + strconv.Itoa(port), "LEAKS_FAKE_IGNORE_TERM=" + map[bool]string{true: "1"}[ignoreTerm]}
			out, err := c.Output()
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
			if err != nil {
				t.Fatalf("sh printed %q", out)
			}
			t.Cleanup(func() {
				if alive(pid) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			})
			var tu Tunnel
			waitFor(t, "the finder to list the orphan with its listener", func() bool {
				list, err := f.List(ctx)
				if err != nil {
					t.Fatal(err)
				}
				i := slices.IndexFunc(list.Tunnels, func(tu Tunnel) bool { return tu.PID == int32(pid) })
				if i < 0 || len(list.Tunnels[i].Forwards) == 0 || len(list.Tunnels[i].Forwards[0].Listeners) == 0 {
					return false
				}
				tu = list.Tunnels[i]
				return true
			})
			fw := tu.Forwards[0]
			if !tu.Leaked || tu.Orphan == Attached || !tu.OtherUsers || tu.OtherMachines || !tu.Adoptable || tu.Destination != "web1" {
				t.Errorf("tunnel = %+v; want leaked, other users yes, other machines no, adoptable, to web1", tu)
			}
			if fw.Spec != spec || fw.Reach != ReachLocalUsers || fw.Listeners[0] != "127.0.0.1:"+strconv.Itoa(port) || !strings.Contains(fw.Who, "Every user of this computer") {
				t.Errorf("forward = %+v", fw)
			}
			res, err := f.End(ctx, pid)
			want := map[bool]string{false: "SIGTERM", true: "SIGKILL"}[ignoreTerm]
			if err != nil || res.Signal != want {
				t.Fatalf("End = %+v, %v; want it ended by %s", res, err, want)
			}
			if alive(pid) {
				t.Fatal("the process is still running after End")
			}
			if _, err := net.DialTimeout("tcp", fw.Listeners[0], time.Second); err == nil {
				t.Error("its port still answers after End")
			}
		})
	}

	t.Run("not ssh", func(t *testing.T) {
		c := exec.Command("sleep", "60")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
		if _, err := f.End(ctx, c.Process.Pid); !errors.Is(err, ErrNotTunnel) {
			t.Fatalf("End(sleep) = %v; want ErrNotTunnel", err)
		}
		if _, err := f.End(ctx, 1); err == nil {
			t.Fatal("End(1) was not refused")
		}
	})
}
