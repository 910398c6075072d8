package faults

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// envSoak sets the soak's size: unset runs the short soak (2,000
// connections, 200 at a time; part of `make test`), "full" runs 100,000
// connections 1,000 at a time (`make soak`), a number runs that many.
const envSoak = "PORTHOLE_SOAK"

func soakSize(t *testing.T) (total, parallel int) {
	switch v := os.Getenv(envSoak); v {
	case "":
		return 2000, 200
	case "full":
		return 100_000, 1000
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want full or a number of connections", envSoak, v)
		}
		return n, min(1000, max(1, n/10))
	}
}

// TestSoak sends many connections, each a new TCP connection with one
// GET, through one web forward and one raw forward (half each) of an agent
// logged in to a real sshd, many at a time. None may fail, and afterwards
// the agent holds no more file descriptors and the app side runs no more
// goroutines than before (within a small tolerance).
func TestSoak(t *testing.T) {
	total, parallel := soakSize(t)
	r := newRig(t, rigOptions{noRelay: true})
	pid := r.login.Process().PID

	run := func(n, parallel int, timeout time.Duration) (errs int64, first []string, took time.Duration) {
		var next, failed atomic.Int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := time.Now()
		for w := range parallel {
			wg.Go(func() {
				// Each worker dials from its own loopback address, so that
				// 100k connections in a row do not run out of ports.
				src := net.IPv4(127, 0, byte(1+w/250), byte(1+w%250))
				d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: timeout}
				tr := &http.Transport{DisableKeepAlives: true, DialContext: d.DialContext}
				defer tr.CloseIdleConnections()
				c := &http.Client{Transport: tr, Timeout: timeout}
				for {
					i := next.Add(1) - 1
					if i >= int64(n) {
						return
					}
					addr := r.forwards()[i%2]
					if err := getWith(c, addr); err != nil {
						failed.Add(1)
						mu.Lock()
						if len(first) < 5 {
							first = append(first, fmt.Sprintf("#%d via %s: %v", i, addr, err))
						}
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		return failed.Load(), first, time.Since(start)
	}

	// Warm up (pools, buffers, the runtime's threads), then take the baseline.
	if errs, first, _ := run(200, 50, 30*time.Second); errs > 0 {
		t.Fatalf("%d of 200 warm-up connections failed: %s", errs, strings.Join(first, "; "))
	}
	settle := func() (fds, goroutines int) {
		time.Sleep(500 * time.Millisecond)
		return fdCount(t, pid), runtime.NumGoroutine()
	}
	fds0, g0 := settle()
	cpu0 := procCPU(t, pid)
	mem0 := agentMem(pid)

	errs, first, took := run(total, parallel, 60*time.Second)
	cpu := procCPU(t, pid) - cpu0
	t.Logf("soak: %d connections (%d web, %d raw), %d at a time: %d failed, took %v (%.0f conn/s); agent CPU %v",
		total, (total+1)/2, total/2, parallel, errs, took.Round(time.Millisecond), float64(total)/took.Seconds(), cpu.Round(time.Millisecond))
	if errs > 0 {
		t.Errorf("%d of %d connections failed; the first: %s", errs, total, strings.Join(first, "; "))
	}

	// Everything the soak opened must go away again.
	const fdSlack, goroutineSlack = 5, 10
	var fds1, g1 int
	ok := waitUntil(30*time.Second, func() bool {
		fds1, g1 = settle()
		return fds1 <= fds0+fdSlack && g1 <= g0+goroutineSlack
	})
	t.Logf("soak: agent fds %d before, %d after; app goroutines %d before, %d after; agent %s before, %s after", fds0, fds1, g0, g1, mem0, agentMem(pid))
	if !ok {
		t.Errorf("leak: agent fds %d → %d (slack %d), app goroutines %d → %d (slack %d)", fds0, fds1, fdSlack, g0, g1, goroutineSlack)
		buf := make([]byte, 1<<20)
		t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
	}
	// And it still works.
	r.mustWork(t, "after the soak")
}

// getWith is get with a caller's client (it must not keep connections).
func getWith(c *http.Client, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/small", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var b [16]byte
	n, _ := resp.Body.Read(b[:])
	if resp.StatusCode != http.StatusOK || string(b[:n]) != "small\n" {
		return fmt.Errorf("%s: %q", resp.Status, b[:n])
	}
	return nil
}

// agentMem is the agent's VmRSS and thread count, for the log.
func agentMem(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") || strings.HasPrefix(line, "Threads:") {
			parts = append(parts, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(parts, ", ")
}
