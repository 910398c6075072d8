//go:build linux

package forwarder

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

// envNetNSChild makes TestNetlinkChangeMarksSessionsSuspect the child that
// runs inside the namespace.
const envNetNSChild = "PORTHOLE_FORWARDER_TEST_NETNS_CHILD"

const (
	netnsReady   = "NETNS-READY"
	netnsSuspect = "NETNS-SUSPECT "
)

// TestNetlinkChangeMarksSessionsSuspect: the WakeDetector as the logins
// build it (the system's network watcher, no injected source) marks its
// registered sessions suspect when an address is added. The detector runs
// in this test binary, re-run with `ip netns exec` in a namespace the test
// creates, so the change touches only that namespace.
func TestNetlinkChangeMarksSessionsSuspect(t *testing.T) {
	if os.Getenv(envNetNSChild) == "1" {
		netnsChild(t)
		return
	}
	ns := testrig.NewNetNS(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns.Name, exe, "-test.run=^TestNetlinkChangeMarksSessionsSuspect$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envNetNSChild+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var seen []string
	next := func(prefix string) string {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					_ = cmd.Wait()
					t.Fatalf("the child ended before %q; stdout:\n%s\nstderr:\n%s", prefix, strings.Join(seen, "\n"), stderr.String())
				}
				seen = append(seen, l)
				if rest, ok := strings.CutPrefix(l, prefix); ok {
					return rest
				}
			case <-ctx.Done():
				t.Fatalf("no %q from the child; stdout:\n%s", prefix, strings.Join(seen, "\n"))
			}
		}
	}
	next(netnsReady)
	ns.IP(t, "link", "add", "pw0", "type", "veth", "peer", "name", "pw1")
	ns.IP(t, "addr", "add", "10.66.0.1/24", "dev", "pw0")
	reason := next(netnsSuspect)
	if want := "network changed: address 10.66.0.1/24 added on pw0"; reason != want {
		t.Errorf("the session was marked suspect with %q, want %q", reason, want)
	}
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\nstdout:\n%s\nstderr:\n%s", err, strings.Join(seen, "\n"), stderr.String())
	}
}

// netnsChild runs inside the namespace: a default WakeDetector with one
// registered Suspecter; it prints the first reason it is marked with.
func netnsChild(t *testing.T) {
	w := NewWakeDetector(WakeOptions{NoDBus: true, Interval: time.Hour, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	w.Start()
	defer w.Close()
	rec := &suspectRecorder{}
	defer w.Register(rec)()
	fmt.Println(netnsReady)
	waitFor(t, 60*time.Second, "a network change", func() bool { return rec.count() > 0 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	fmt.Println(netnsSuspect + rec.reasons[0])
}
