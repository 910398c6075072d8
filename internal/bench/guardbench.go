package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/porthole-app/porthole/backend/guard"
)

// benchGuard measures the same-user guard (backend/guard) that every
// listener of Porthole's runs on each accepted connection: the time of
// SameUser.Allow, one sock_diag lookup, median of p.guardN accepts. It
// runs in this process (the check is the same code in the agent); ssh has
// no such check, so that column is n/a.
func benchGuard(ctx context.Context, _ *rig, p params) []row {
	med := row{measure: fmt.Sprintf("same-user guard: cost per accepted connection (median of %d)", p.guardN), unit: unitMS, target: absMax(0.2, "≤ 0.2 ms")}
	p95 := row{measure: "same-user guard: cost per accepted connection, p95", unit: unitMS}
	na := cell{err: "n/a (ssh -L does not check who connects)"}
	med.cells[toolSSH], p95.cells[toolSSH] = na, na
	times, err := guardTimes(ctx, p.guardN)
	if err != nil {
		med.cells[toolPorthole], p95.cells[toolPorthole] = failed(err), failed(err)
		return []row{med, p95}
	}
	med.cells[toolPorthole], p95.cells[toolPorthole] = value(median(times)), value(percentile(times, 95))
	return []row{med, p95}
}

// guardTimes accepts n loopback connections, one at a time, and times the
// guard's check of each (in ms).
func guardTimes(ctx context.Context, n int) ([]float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	g := guard.NewSameUser(nil)
	var d net.Dialer
	times := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := d.DialContext(dctx, "tcp", ln.Addr().String())
		cancel()
		if err != nil {
			return nil, fmt.Errorf("dial: %w", err)
		}
		s, err := ln.Accept()
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("accept: %w", err)
		}
		t0 := time.Now()
		err = g.Allow(s)
		took := time.Since(t0)
		s.Close()
		c.Close()
		if err != nil {
			return nil, fmt.Errorf("the guard refused this process's own connection: %w", err)
		}
		times = append(times, ms(took))
	}
	if len(times) == 0 {
		return nil, errors.New("no connection checked")
	}
	return times, nil
}
