package faults

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
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
// logged in to a real sshd, many at a time (Soak, which `make bench` runs
// too). None may fail, and afterwards the agent holds no more file
// descriptors and the app side runs no more goroutines than before (within
// a small tolerance), and both forwards still answer.
func TestSoak(t *testing.T) {
	total, parallel := soakSize(t)
	const fdSlack, goroutineSlack = 5, 10
	logs := &logBuffer{}
	res, err := Soak(context.Background(), SoakOptions{
		Connections: total, Concurrency: parallel,
		AgentEnv:       []string{envAgent + "=1", raceEnv},
		Logger:         slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		FDSlack:        fdSlack,
		GoroutineSlack: goroutineSlack,
	})
	defer func() {
		if t.Failed() {
			t.Logf("supervisor log:\n%s", logs.String())
		}
	}()
	if res.Duration == 0 {
		t.Fatal(err) // the rig or the warm-up failed
	}
	t.Logf("soak: %d connections (%d web, %d raw), %d at a time: %d failed, took %v (%.0f conn/s); agent CPU %v",
		total, (total+1)/2, total/2, parallel, res.Failed, res.Duration.Round(time.Millisecond), res.ConnsPerSec, res.AgentCPU.Round(time.Millisecond))
	if res.Failed > 0 {
		t.Errorf("%d of %d connections failed; the first: %s", res.Failed, total, strings.Join(res.FirstErrors, "; "))
	}
	t.Logf("soak: agent fds %d before, %d after; app goroutines %d before, %d after; agent %s before, %s after",
		res.AgentFDsBefore, res.AgentFDsAfter, res.GoroutinesBefore, res.GoroutinesAfter,
		memText(res.AgentRSSBefore, res.AgentThreadsBefore), memText(res.AgentRSSAfter, res.AgentThreadsAfter))
	if res.Grew {
		t.Errorf("leak: agent fds %d → %d (slack %d), app goroutines %d → %d (slack %d)",
			res.AgentFDsBefore, res.AgentFDsAfter, fdSlack, res.GoroutinesBefore, res.GoroutinesAfter, goroutineSlack)
		t.Logf("goroutines:\n%s", res.GoroutineDump)
	}
	if err != nil {
		t.Fatal(err) // the forwards no longer answer after the soak
	}
}

// memText is an agent's VmRSS and thread count, for the log.
func memText(rss int64, threads int) string {
	return fmt.Sprintf("VmRSS %d kB, Threads %d", rss/1024, threads)
}
