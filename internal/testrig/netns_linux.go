//go:build linux

package testrig

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// NetNS is a network namespace a test created (`ip netns add`), removed
// when the test ends. Changes made in it are seen only by sockets opened in
// it: tests can add addresses and links without touching the machine's.
type NetNS struct {
	Name string // what `ip -n` and `ip netns exec` take
	Path string // /run/netns/Name, for setns(2)
}

var netnsSeq atomic.Uint32

// NewNetNS creates a namespace, or skips the test (with the reason) when
// not root or iproute2's `ip` is missing.
func NewNetNS(t testing.TB) *NetNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test creates a network namespace with `ip netns add`")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's `ip` to create a network namespace")
	}
	name := fmt.Sprintf("ph-%d-%d", os.Getpid(), netnsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace (ip netns add %s): %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return &NetNS{Name: name, Path: "/run/netns/" + name}
}

// IP runs `ip -n <ns> args…` and fails the test if it fails.
func (n *NetNS) IP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", n.Name}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", n.Name, strings.Join(args, " "), err, out)
	}
}

// NetNSChild is this test binary run again inside a namespace (`ip netns
// exec`) to run one test there; it talks to its parent in lines on stdout.
type NetNSChild struct {
	t      testing.TB
	cmd    *exec.Cmd
	cancel context.CancelFunc
	ctx    context.Context
	lines  chan string
	seen   []string
	stderr *bytes.Buffer
}

// RunTest starts this test binary in the namespace running only the test
// named test (-test.run=^test$), with env added to this process's
// environment (the test tells the child from its parent by it). The child
// is killed, if still running, when the test ends; it has 2 minutes.
func (n *NetNS) RunTest(t testing.TB, test string, env ...string) *NetNSChild {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.Name, exe, "-test.run=^"+test+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), env...)
	c := &NetNSChild{t: t, cmd: cmd, cancel: cancel, ctx: ctx, lines: make(chan string, 64), stderr: &bytes.Buffer{}}
	cmd.Stderr = c.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cancel()
		for range c.lines {
		}
		_ = cmd.Wait()
	})
	return c
}

// Next reads the child's stdout up to a line that starts with prefix and
// returns the rest of that line; it fails the test if the child ends or
// times out first.
func (c *NetNSChild) Next(prefix string) string {
	c.t.Helper()
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				c.cancel()
				_ = c.cmd.Wait()
				c.t.Fatalf("the child ended before printing %q; stdout:\n%s\nstderr:\n%s", prefix, strings.Join(c.seen, "\n"), c.stderr.String())
			}
			c.seen = append(c.seen, l)
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest
			}
		case <-c.ctx.Done():
			c.t.Fatalf("the child did not print %q in time; stdout:\n%s", prefix, strings.Join(c.seen, "\n"))
		}
	}
}

// Wait waits for the child to end and fails the test if its test failed.
func (c *NetNSChild) Wait() {
	c.t.Helper()
	for l := range c.lines {
		c.seen = append(c.seen, l)
	}
	if err := c.cmd.Wait(); err != nil {
		c.t.Fatalf("the child in the namespace: %v\nstdout:\n%s\nstderr:\n%s", err, strings.Join(c.seen, "\n"), c.stderr.String())
	}
}
