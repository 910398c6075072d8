package faults

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/forwarder"
)

// TestFaultFlapping30s: a network that flaps every second for 30 s (each
// second the old flows go silent, as after a network change, and nothing
// flows for half a second), with a request through each forward every
// second. The login neither spins nor piles up half-open sessions: the
// agent uses under 5 % of a core over the 30 s (1.5 s of CPU: a bound on
// busy loops, not on speed, so it holds on a loaded 2-core box) and never
// holds more than 2 SSH connections (TCP sockets to the relay, counted in
// the agent's own fds every 20 ms). Afterwards it works again on its own.
func TestFaultFlapping30s(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s of flapping")
	}
	r := newRig(t, rigOptions{})
	pid := r.login.Process().PID
	var misread atomic.Int64 // a flap taken for a server that drops logins
	unsub := r.login.Subscribe(func(e agent.Event) {
		if e.State != nil && errors.Is(e.State.Err, forwarder.ErrDropsAfterLogin) {
			misread.Add(1)
		}
	})
	defer unsub()
	_, portStr, _ := net.SplitHostPort(r.relay.Addr())
	relayPort, _ := strconv.Atoi(portStr)

	const window = 30 * time.Second
	stop := make(chan struct{})
	var most, samples atomic.Int64
	var sampleErr atomic.Value
	var bg sync.WaitGroup
	counter := &connCounter{pid: pid, port: relayPort}
	bg.Go(func() { // count the agent's SSH connections
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			n, err := counter.count()
			if err != nil {
				sampleErr.Store(err)
				continue
			}
			samples.Add(1)
			for m := most.Load(); int64(n) > m && !most.CompareAndSwap(m, int64(n)); m = most.Load() {
			}
		}
	})
	var ok, failed atomic.Int64
	var reqs sync.WaitGroup
	self, child := cpuWindow(t, pid, window, func() {
		for end := time.Now().Add(window - time.Second); time.Now().Before(end); {
			r.relay.SilenceFlows()
			r.relay.Blackhole()
			for _, a := range r.forwards() {
				reqs.Go(func() {
					if get(a, 5*time.Second) == nil {
						ok.Add(1)
					} else {
						failed.Add(1)
					}
				})
			}
			time.Sleep(500 * time.Millisecond)
			r.relay.Resume()
			time.Sleep(500 * time.Millisecond)
		}
	})
	reqs.Wait()
	close(stop)
	bg.Wait()
	if err, _ := sampleErr.Load().(error); err != nil {
		t.Logf("counting connections: %v", err)
	}
	// The app's CPU includes this test's sampling and requests; the
	// engine runs in the agent.
	t.Logf("flapping %v: agent CPU %v, app CPU %v; at most %d SSH connections (%d samples); requests %d ok, %d failed; %d relay flows in all",
		window, child.Round(time.Millisecond), self.Round(time.Millisecond), most.Load(), samples.Load(), ok.Load(), failed.Load(), r.relay.Stats().TotalFlows)
	if samples.Load() < 50 {
		t.Errorf("only %d samples of the connection count", samples.Load())
	}
	if n := most.Load(); n < 1 {
		t.Errorf("never saw the login's SSH connection: the count is broken")
	} else if n > 2 {
		t.Errorf("the login held %d SSH connections at once, want at most 2", n)
	}
	if limit := window / 20; child > limit {
		t.Errorf("the agent used %v of CPU in %v of flapping, want < %v (5 %% of a core)", child, window, limit)
	}
	if n := misread.Load(); n > 0 {
		t.Errorf("%d state events blamed the server for dropping logins on a flapping network", n)
	}
	r.worksAgain(t, 30*time.Second, "after the flapping")
}

// connCounter counts a process's TCP sockets to one remote port. It reads
// the process's fds at each count and the machine's whole TCP table
// (thousands of lines on a shared box) only when a socket it has not
// classified yet appears.
type connCounter struct {
	pid, port int
	known     map[string]bool // socket inode → connected to port
}

// count is the number of pid's sockets to port now (any state while pid
// holds them open).
func (c *connCounter) count() (int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", c.pid))
	if err != nil {
		return 0, err
	}
	var inodes []string
	fresh := false
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", c.pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			ino := strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")
			inodes = append(inodes, ino)
			if _, ok := c.known[ino]; !ok {
				fresh = true
			}
		}
	}
	if fresh {
		if err := c.classify(); err != nil {
			return 0, err
		}
	}
	n := 0
	for _, ino := range inodes {
		if c.known[ino] {
			n++
		}
	}
	return n, nil
}

// classify reads the TCP tables. A socket with no remote port yet (not
// connected, or a listener) is left unclassified unless it listens.
func (c *connCounter) classify() error {
	if c.known == nil {
		c.known = map[string]bool{}
	}
	for _, file := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", c.pid, file))
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			i := strings.LastIndexByte(f[2], ':')
			p, err := strconv.ParseUint(f[2][i+1:], 16, 32)
			if err != nil || p == 0 && f[3] != "0A" {
				continue
			}
			c.known[f[9]] = int(p) == c.port
		}
	}
	return nil
}
