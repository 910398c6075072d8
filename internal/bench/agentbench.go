package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/porthole-app/porthole/backend/agent"
)

// benchAgent measures one server login's sandbox process: the time from exec
// to its answer to init (median of n starts) and its idle RSS. ssh has no
// counterpart (it is one process per tunnel), so that column is n/a.
func benchAgent(ctx context.Context, r *rig, n int, settle time.Duration) []row {
	start := row{measure: fmt.Sprintf("porthole agent (one per server): start, exec → ready (median of %d)", n), unit: unitMS}
	rss := row{measure: "porthole agent: RSS, idle (VmRSS)", unit: unitMB, target: absMax(20, "≤ 20 MB")}
	na := cell{err: "n/a (no agent process)"}
	start.cells[toolSSH], rss.cells[toolSSH] = na, na
	if r.portholeErr != nil {
		start.cells[toolPorthole], rss.cells[toolPorthole] = failed(r.portholeErr), failed(r.portholeErr)
		return []row{start, rss}
	}
	sup := agent.NewSupervisor(agent.SupervisorOptions{Exe: r.cmds.portholePath})
	defer sup.Close()
	spec := agent.LoginSpec{ID: "bench", Host: "127.0.0.1", Port: 22, SSHConfigPath: "none", SystemConfigPath: "none", AgentSocket: "none"}
	var times []float64
	var lastErr error
	var pid int
	for i := 0; i < n && ctx.Err() == nil; i++ {
		l, err := sup.Start(ctx, spec, agent.Secrets{}, nil)
		if err != nil {
			lastErr = err
			continue
		}
		pi := l.Process()
		times = append(times, float64(pi.ReadyIn)/float64(time.Millisecond))
		if i == n-1 {
			pid = pi.PID
			select {
			case <-time.After(settle):
			case <-ctx.Done():
			}
			kb, err := agentRSS(pid)
			if err != nil {
				rss.cells[toolPorthole] = failed(err)
			} else {
				rss.cells[toolPorthole] = value(float64(kb) * 1024 / 1e6)
			}
		}
		_ = l.Close()
	}
	if len(times) == 0 {
		if lastErr == nil {
			lastErr = errors.New("no agent started")
		}
		start.cells[toolPorthole] = failed(lastErr)
		if pid == 0 {
			rss.cells[toolPorthole] = failed(lastErr)
		}
		return []row{start, rss}
	}
	slices.Sort(times)
	start.cells[toolPorthole] = value(times[len(times)/2])
	return []row{start, rss}
}

func agentRSS(pid int) (int64, error) {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read the agent's status: %w", err)
	}
	return parseVmRSS(string(status))
}
