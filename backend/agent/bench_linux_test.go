//go:build linux

package agent

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vmRSSKB reads VmRSS of pid in KiB.
func vmRSSKB(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, os.ErrNotExist
}

// BenchmarkAgentStart measures what `make bench` reports for the agent, with
// the test binary as the agent: the time from exec to ready (its answer to
// init), and its idle RSS. make bench does the same with build/bin/porthole
// (SupervisorOptions.Exe), see the package documentation.
func BenchmarkAgentStart(b *testing.B) {
	sup := NewSupervisor(SupervisorOptions{Env: []string{envTestChild + "=1", raceEnv}})
	defer sup.Close()
	spec := LoginSpec{ID: "bench", Host: "127.0.0.1", Port: 1, SSHConfigPath: "none", AgentSocket: "none"}
	ctx := context.Background()
	var ready time.Duration
	for b.Loop() {
		l, err := sup.Start(ctx, spec, Secrets{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		ready += l.Process().ReadyIn
		_ = l.Close()
	}
	b.ReportMetric(float64(ready.Microseconds())/1000/float64(b.N), "ms-to-ready/op")

	l, err := sup.Start(ctx, spec, Secrets{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	time.Sleep(2 * time.Second) // idle
	kb, err := vmRSSKB(l.Process().PID)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(kb)/1024, "MB-idle-RSS")
}
