package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// The measures of what a user does (issue 11): connections back to back
// with no pause right after start, the first page load after connecting, a
// network change with no sleep. Each tool runs on its own turn, not
// interleaved request by request: a pause of the other tool's request
// between two of one tool's requests is not what a browser does.

// --- back to back -----------------------------------------------------------

// benchBackToBack: one fresh tunnel per tool; right after it works, getB2B
// GETs on new TCP connections with no pause (measured), then
// b2bWarm−getB2B more, then getB2B again (measured: "after b2bWarm
// warm-up requests").
func benchBackToBack(ctx context.Context, r *rig, p params) []row {
	r.setRTT(p.highRTT)
	rtt := p.highRTT.Milliseconds()
	label := fmt.Sprintf("%d GETs back to back, each on a new TCP connection, no pause, RTT %d ms", p.b2bN, rtt)
	fresh := [2]row{
		{measure: label + ", right after start: median", unit: unitMS, target: ratioMax(0.55)},
		{measure: label + ", right after start: p90", unit: unitMS},
	}
	warm := [2]row{
		{measure: fmt.Sprintf("%s, after %d warm-up requests: median", label, p.b2bWarm), unit: unitMS, target: ratioMax(0.55)},
		{measure: fmt.Sprintf("%s, after %d warm-up requests: p90", label, p.b2bWarm), unit: unitMS},
	}
	for _, t := range order(0) {
		if ctx.Err() != nil {
			break
		}
		if !r.available(t) {
			for _, rw := range []*row{&fresh[0], &fresh[1], &warm[0], &warm[1]} {
				rw.cells[t] = failed(r.portholeErr)
			}
			continue
		}
		a, b, err := backToBackTurn(ctx, r, p, t)
		for i, s := range [2][]float64{a, b} {
			rws := [2]*row{&fresh[0], &fresh[1]}
			if i == 1 {
				rws = [2]*row{&warm[0], &warm[1]}
			}
			switch {
			case err != nil && len(s) < p.b2bN:
				rws[0].cells[t], rws[1].cells[t] = failed(err), failed(err)
			default:
				rws[0].cells[t] = value(median(s))
				rws[1].cells[t] = value(percentile(s, 90))
				rws[1].cells[t].note = fmt.Sprintf("min %s", unitMS.format(minOf(s)))
			}
		}
	}
	return []row{fresh[0], fresh[1], warm[0], warm[1]}
}

// backToBackTurn is one tool's turn: a new tunnel, b2bN measured GETs at
// once, warm-up to b2bWarm, b2bN measured GETs.
func backToBackTurn(ctx context.Context, r *rig, p params, t tool) (fresh, warm []float64, err error) {
	tun, _, err := r.start(ctx, t, "")
	if err != nil {
		return nil, nil, err
	}
	defer tun.Close()
	tr := tun.transport(false, 1)
	defer tr.CloseIdleConnections()
	run := func(n int, keep bool) ([]float64, error) {
		var out []float64
		for i := 0; i < n; i++ {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			rctx, cancel := context.WithTimeout(ctx, p.requestLimit)
			start := time.Now()
			_, err := getAll(rctx, tr, tun.url("/small"))
			cancel()
			if err != nil {
				return out, fmt.Errorf("request %d of %d: %w", i+1, n, err)
			}
			if keep {
				out = append(out, ms(time.Since(start)))
			}
		}
		return out, nil
	}
	if fresh, err = run(p.b2bN, true); err != nil {
		return fresh, nil, err
	}
	if _, err = run(p.b2bWarm-p.b2bN, false); err != nil {
		return fresh, nil, fmt.Errorf("warm-up: %w", err)
	}
	warm, err = run(p.b2bN, true)
	return fresh, warm, err
}

func minOf(s []float64) float64 {
	m := s[0]
	for _, x := range s[1:] {
		m = min(m, x)
	}
	return m
}

// --- first page load after connect -----------------------------------------

// benchFirstPage: a new tunnel, its first GET /small shows it works, then at
// once the page (/ + 50 resources over 6 keep-alive connections) from a
// client with no open connection. Tools alternate ABBA, a new tunnel each.
func benchFirstPage(ctx context.Context, r *rig, p params) []row {
	r.setRTT(p.highRTT)
	rw := row{measure: fmt.Sprintf("first page load after connect: / + 50 resources, %d keep-alive connections, RTT %d ms (median of %d, a new tunnel each)", p.pageParallel, p.highRTT.Milliseconds(), p.firstPageN), unit: unitMS, target: ratioMax(0.80)}
	var samples [2][]float64
	var lastErr [2]error
	for i := 0; i < p.firstPageN && ctx.Err() == nil; i++ {
		for _, t := range order(i) {
			if !r.available(t) {
				continue
			}
			d, err := firstPageOnce(ctx, r, p, t)
			if err != nil {
				lastErr[t] = err
				r.log.Warn("first page load failed", "tool", t.short(), "err", err)
				continue
			}
			samples[t] = append(samples[t], ms(d))
		}
	}
	for _, t := range tools {
		switch {
		case !r.available(t):
			rw.cells[t] = failed(r.portholeErr)
		case len(samples[t]) < p.firstPageN:
			rw.cells[t] = failed(fmt.Errorf("%d of %d failed, last: %w", p.firstPageN-len(samples[t]), p.firstPageN, lastErr[t]))
		default:
			rw.cells[t] = value(median(samples[t]))
		}
	}
	return []row{rw}
}

func firstPageOnce(ctx context.Context, r *rig, p params, t tool) (time.Duration, error) {
	tun, _, err := r.start(ctx, t, "")
	if err != nil {
		return 0, err
	}
	defer tun.Close()
	return loadPage(ctx, "http://"+tun.addr(), p.pageParallel, false)
}

// --- network change without sleep ------------------------------------------

// benchNetChange: both tunnels are up and have carried a request, then stay
// idle for netIdle (under OpenSSH's and Porthole's keepalive thresholds);
// then the network changes: every relayed flow goes silent (bytes
// swallowed, nothing closed), new flows work. No SIGSTOP, no clock jump.
// Then GET /small on new connections, one after another, as in the wake
// rows; both tools recover at the same time, each with its own client.
// The ssh column is autossh -M 0 (ssh -N -L restarted when it exits).
func benchNetChange(ctx context.Context, r *rig, p params) []row {
	r.setRTT(p.highRTT)
	sshName := "autossh -M 0 + ssh -N -L"
	if r.cmds.autosshPath == "" {
		sshName = "ssh -N -L restarted when it exits (autossh is not installed)"
	}
	rw := row{measure: fmt.Sprintf("network changed with no sleep (old flows silent, no SIGSTOP, idle %v, no clock jump): change → first response (failed/hung of first %d; ssh column: %s)", p.netIdle, p.wakeN, sshName), unit: unitMS}
	rw.target = wakeTarget(1000, true)
	var tuns [2]*tunnel
	defer func() {
		for _, tun := range tuns {
			if tun != nil {
				tun.Close()
			}
		}
	}()
	for _, t := range tools {
		if !r.available(t) {
			rw.cells[t] = failed(r.portholeErr)
			continue
		}
		spec, err := r.spec(ctx, t, "")
		if err != nil {
			rw.cells[t] = failed(err)
			continue
		}
		spec.autossh = t == toolSSH && r.cmds.autosshPath != ""
		tun, err := startTunnel(r.cmds, spec)
		if err != nil {
			rw.cells[t] = failed(err)
			continue
		}
		tuns[t] = tun
		if _, err := waitReady(ctx, tun, 30*time.Second); err != nil {
			rw.cells[t] = failed(err)
			tun.Close()
			tuns[t] = nil
		}
	}
	select { // idle: no request through either tunnel
	case <-time.After(p.netIdle):
	case <-ctx.Done():
		return []row{rw}
	}
	r.relay.SilenceFlows()
	changed := time.Now()
	var wg sync.WaitGroup
	for _, t := range tools {
		if tuns[t] == nil {
			continue
		}
		// Plain ssh -L (no autossh) is restarted by the loop when it exits.
		restart := t == toolSSH && !tuns[t].spec.autossh
		wg.Go(func() {
			res := recoverLoop(ctx, r, p, &tuns[t], t, restart, changed)
			if t == toolSSH && tuns[t] != nil && tuns[t].spec.autossh {
				res.restarts = sshRestarts(tuns[t])
			}
			r.log.Info("network change", "tool", t.short(), "recovered", res.recovered,
				"after", res.firstOK.Round(time.Millisecond), "failed", res.failed, "hung", res.hung)
			rw.cells[t] = wakeCell(res, p)
		})
	}
	wg.Wait()
	return []row{rw}
}
