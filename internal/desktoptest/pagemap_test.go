package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Two idle processes of one program share their program's and libc's pages:
// the group's distinct pages are fewer than the sum of each one's, no fewer
// than either's, and no process has more distinct pages than it has resident.
func TestGroupMBCountsSharedPagesOnce(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("pagemap shows page frames only to root")
	}
	var pids []int
	for range 2 {
		c := exec.Command("sleep", "60")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
		pids = append(pids, c.Process.Pid)
	}
	// Wait until both have exec'd and mapped their libraries.
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if strings.Contains(string(b), "(sleep) S ") || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	time.Sleep(50 * time.Millisecond) // in nanosleep: their pages stay as they are
	a, okA := groupMB(pids[:1])
	b, okB := groupMB(pids[1:])
	both, ok := groupMB(pids)
	if !okA || !okB || !ok || a <= 0 || b <= 0 {
		t.Fatalf("groupMB: a %v %v, b %v %v, both %v %v", a, okA, b, okB, both, ok)
	}
	if both >= a+b {
		t.Errorf("two sleeps together %.2f MB, apart %.2f + %.2f MB: the shared pages were counted twice", both, a, b)
	}
	if both < max(a, b) {
		t.Errorf("two sleeps together %.2f MB, less than one of them (%.2f, %.2f)", both, a, b)
	}
	if again, _ := groupMB([]int{pids[0], pids[0]}); again != a {
		t.Errorf("the same process twice: %.2f MB, once: %.2f MB", again, a)
	}
	if rss := float64(rssKB(t, pids[0])) * 1024 / 1e6; a > rss {
		t.Errorf("distinct pages %.2f MB exceed Rss %.2f MB", a, rss)
	}
}

func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return kb
		}
	}
	return 0
}
