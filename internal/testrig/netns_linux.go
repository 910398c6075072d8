//go:build linux

package testrig

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
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
