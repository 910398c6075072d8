package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/porthole-app/porthole/internal/faults"
)

// Growth across the soak that counts as none (as in TestSoak).
const soakFDSlack, soakGoroutineSlack = 5, 10

// benchSoak runs the soak (faults.Soak, what `make soak` checks) with the
// porthole binary as the agent: p.soakN connections, p.soakParallel at a
// time, each a new TCP connection with one GET /small, half through a web
// forward and half through a raw forward of one agent logged in to a real
// sshd (directly, not through the relay). ssh has no agent, so that column
// is n/a.
func benchSoak(ctx context.Context, r *rig, p params) []row {
	head := fmt.Sprintf("soak: %s connections, %s at a time, through one agent's web and raw forwards", thousands(p.soakN), thousands(p.soakParallel))
	fails := row{measure: head + ": failed", unit: unitCount, target: absMax(0, "0")}
	rate := row{measure: "soak: connections per second", unit: unitConnPS, higher: true}
	fds := row{measure: "soak: agent fds, after − before", unit: unitCount, target: absMax(soakFDSlack, fmt.Sprintf("≤ %d", soakFDSlack))}
	gor := row{measure: "soak: app goroutines, after − before", unit: unitCount, target: absMax(soakGoroutineSlack, fmt.Sprintf("≤ %d", soakGoroutineSlack))}
	rss := row{measure: "soak: agent RSS after the soak (VmRSS)", unit: unitMB}
	rows := []*row{&fails, &rate, &fds, &gor, &rss}
	all := func(c cell) []row {
		out := make([]row, len(rows))
		for i, rw := range rows {
			rw.cells[toolPorthole] = c
			out[i] = *rw
		}
		return out
	}
	na := cell{err: "n/a (no agent process)"}
	for _, rw := range rows {
		rw.cells[toolSSH] = na
	}
	if r.portholeErr != nil {
		return all(failed(r.portholeErr))
	}
	res, err := faults.Soak(ctx, faults.SoakOptions{
		Connections:    p.soakN,
		Concurrency:    p.soakParallel,
		AgentExe:       r.cmds.portholePath,
		Logger:         r.log.With("measure", "soak"),
		FDSlack:        soakFDSlack,
		GoroutineSlack: soakGoroutineSlack,
	})
	if res.Duration == 0 {
		if err == nil {
			err = errors.New("no connection sent")
		}
		return all(failed(err))
	}
	r.log.Info("soak", "connections", res.Connections, "failed", res.Failed, "took", res.Duration, "conn/s", int(res.ConnsPerSec),
		"agent fds", fmt.Sprintf("%d → %d", res.AgentFDsBefore, res.AgentFDsAfter),
		"app goroutines", fmt.Sprintf("%d → %d", res.GoroutinesBefore, res.GoroutinesAfter))

	fails.cells[toolPorthole] = value(float64(res.Failed))
	fails.cells[toolPorthole].note = fmt.Sprintf("of %s, in %v", thousands(res.Connections), res.Duration.Round(100*time.Millisecond))
	if res.Failed > 0 {
		fails.cells[toolPorthole].detail = "first failures: " + strings.Join(res.FirstErrors, "; ")
	}
	if err != nil { // the forwards no longer answered after the soak
		fails.cells[toolPorthole] = failed(err)
	}
	rate.cells[toolPorthole] = value(res.ConnsPerSec)
	rate.cells[toolPorthole].note = fmt.Sprintf("agent CPU %v", res.AgentCPU.Round(10*time.Millisecond))
	fds.cells[toolPorthole] = value(float64(res.FDDelta()))
	fds.cells[toolPorthole].note = fmt.Sprintf("%d → %d", res.AgentFDsBefore, res.AgentFDsAfter)
	gor.cells[toolPorthole] = value(float64(res.GoroutineDelta()))
	gor.cells[toolPorthole].note = fmt.Sprintf("%d → %d", res.GoroutinesBefore, res.GoroutinesAfter)
	if res.AgentRSSAfter > 0 {
		rss.cells[toolPorthole] = value(float64(res.AgentRSSAfter) / 1e6)
		rss.cells[toolPorthole].note = fmt.Sprintf("%.1f MB before", float64(res.AgentRSSBefore)/1e6)
	} else {
		rss.cells[toolPorthole] = failed(errors.New("VmRSS not read"))
	}
	return []row{fails, rate, fds, gor, rss}
}

// thousands writes n with commas: 100,000.
func thousands(n int) string {
	if n < 0 {
		return "-" + thousands(-n)
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
