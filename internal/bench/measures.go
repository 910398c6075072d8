package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

// measureName names one group of measurements (selectable with -only).
type measureName int

const (
	measureGet measureName = iota
	measurePage
	measureCold
	measureBulk
	measureWake
	measureRSS
	measureGuard
	measureSocks
	measureRemote
	measureSoak
	measureB2B
	measureFirstPage
	measureNetChange
	measureApp
)

var measureNameText = [...]string{
	measureGet:       "get",
	measurePage:      "page",
	measureCold:      "cold",
	measureBulk:      "bulk",
	measureWake:      "wake",
	measureRSS:       "rss",
	measureGuard:     "guard",
	measureSocks:     "socks",
	measureRemote:    "remote",
	measureSoak:      "soak",
	measureB2B:       "b2b",
	measureFirstPage: "firstpage",
	measureNetChange: "netchange",
	measureApp:       "app",
}

func (m measureName) String() string {
	if int(m) >= 0 && int(m) < len(measureNameText) {
		return measureNameText[m]
	}
	return "measure(" + strconv.Itoa(int(m)) + ")"
}

func measureNames() []string { return measureNameText[:] }

func lookupMeasure(s string) (measureName, bool) {
	for i, n := range measureNameText {
		if strings.EqualFold(s, n) {
			return measureName(i), true
		}
	}
	return 0, false
}

// params are the iteration counts and sizes; quick mode shrinks them.
type params struct {
	getN          int           // sequential fresh-connection GETs per tool and RTT
	pageLoads     int           // page loads per tool and mode
	pageParallel  int           // connections per page load
	coldN         int           // cold starts per tool
	bulkBytes     int64         // download size
	bulkReps      int           // downloads per tool and cipher at RTT 70
	bulkRepsLAN   int           // downloads per tool and cipher at RTT 0 (short, noisier)
	blackout      time.Duration // sleep length in the wake test
	wakeCap       time.Duration // give up waiting for recovery after this
	wakeN         int           // requests counted for errors and hangs
	wakeHang      time.Duration // a request slower than this is a hang
	wakeReqLimit  time.Duration // per-request timeout in the wake test
	wakeErrPause  time.Duration // pause after a failed request
	remoteCap     time.Duration // give up waiting for a remote forward to come back after this
	rssConns      int           // idle keep-alive connections held open
	rssParallel   int           // how many are opened at once
	rssSettle     time.Duration // wait before reading VmRSS
	guardN        int           // accepted connections checked by the same-user guard
	soakN         int           // connections in the soak
	soakParallel  int           // how many of them at a time
	highRTT       time.Duration // "RTT 70"
	gcmCipher     string
	requestLimit  time.Duration // per-request timeout in latency tests
	maxErrorShare float64       // a latency series with more failures than this is reported as failed
	b2bN          int           // back-to-back GETs measured per series
	b2bWarm       int           // requests before the "after warm-up" series
	firstPageN    int           // first page loads per tool (a new tunnel each)
	netIdle       time.Duration // idle time before the network change without sleep
	appN          int           // app-path repetitions (connect, open, page)
}

func paramsFor(quick bool) params {
	p := params{
		getN:          200,
		pageLoads:     5,
		pageParallel:  6,
		coldN:         5,
		bulkBytes:     100 << 20,
		bulkReps:      3,
		bulkRepsLAN:   5,
		blackout:      20 * time.Second,
		wakeCap:       120 * time.Second,
		wakeN:         20,
		wakeHang:      10 * time.Second,
		wakeReqLimit:  30 * time.Second,
		wakeErrPause:  100 * time.Millisecond,
		remoteCap:     60 * time.Second,
		rssConns:      500,
		rssParallel:   50,
		rssSettle:     2 * time.Second,
		guardN:        5000,
		soakN:         100_000,
		soakParallel:  1000,
		highRTT:       70 * time.Millisecond,
		gcmCipher:     "aes128-gcm@openssh.com",
		requestLimit:  15 * time.Second,
		maxErrorShare: 0.05,
		b2bN:          100,
		b2bWarm:       300,
		firstPageN:    3,
		netIdle:       22 * time.Second,
		appN:          3,
	}
	if quick {
		p.getN = 30
		p.pageLoads = 2
		p.coldN = 2
		p.bulkBytes = 16 << 20
		p.bulkReps = 1
		p.bulkRepsLAN = 1
		p.blackout = 3 * time.Second
		p.wakeCap = 30 * time.Second
		p.wakeN = 10
		p.rssConns = 100
		p.rssSettle = time.Second
		p.guardN = 500
		p.soakN = 10_000
		p.b2bN = 30
		p.b2bWarm = 60
		p.firstPageN = 1
		p.netIdle = 3 * time.Second
		p.appN = 1
	}
	return p
}

func (p params) bulkRepsFor(rtt time.Duration) int {
	if rtt == 0 {
		return p.bulkRepsLAN
	}
	return p.bulkReps
}

// runBench sets up the rig, runs the selected measures and returns the report.
func runBench(ctx context.Context, cfg config, log *slog.Logger) (*report, error) {
	began := time.Now()
	r, err := startRig(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	p := paramsFor(cfg.quick)
	rep := &report{
		date:    began.UTC(),
		machine: probeMachine(ctx, r, runtime.Version()),
		quick:   cfg.quick,
		aa:      cfg.aa,
		only:    cfg.only,
		p:       p,
	}
	steps := []struct {
		m   measureName
		run func(context.Context, *rig, params) []row
	}{
		{measureGet, benchGet},
		{measureB2B, benchBackToBack},
		{measurePage, benchPage},
		{measureFirstPage, benchFirstPage},
		{measureApp, benchApp},
		{measureCold, benchCold},
		{measureBulk, benchBulk},
		{measureWake, benchWake},
		{measureNetChange, benchNetChange},
		{measureRSS, benchRSS},
		{measureGuard, benchGuard},
		{measureSocks, benchSocks},
		{measureRemote, benchRemote},
		{measureSoak, benchSoak},
	}
	for _, s := range steps {
		if !cfg.wants(s.m) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		log.Info("measuring", "measure", s.m)
		rows := s.run(ctx, r, p)
		rep.rows = append(rep.rows, rows...)
		log.Info("measured", "measure", s.m, "took", time.Since(t0).Round(time.Second))
		fmt.Fprint(os.Stderr, renderTable(rows, r.portholeErr == nil || cfg.aa, cfg.aa))
	}
	rep.took = time.Since(began)
	rep.portholeOK = r.portholeErr == nil || cfg.aa
	return rep, nil
}

// failAll returns a pair of failed cells.
func failBoth(err error) [2]cell { return [2]cell{failed(err), failed(err)} }

// --- 1. GET on a fresh TCP connection --------------------------------------

func benchGet(ctx context.Context, r *rig, p params) []row {
	var rows []row
	for _, rtt := range []time.Duration{0, p.highRTT} {
		rows = append(rows, getAtRTT(ctx, r, p, rtt)...)
	}
	return rows
}

// benchSocks is benchGet's RTT-70 row through a SOCKS proxy: `ssh -N -D`
// against `porthole forward -D`, the client naming localhost (resolved by
// sshd) in a SOCKS5 request on a fresh connection each time.
func benchSocks(ctx context.Context, r *rig, p params) []row {
	return getThrough(ctx, r, p, p.highRTT, true)
}

func getAtRTT(ctx context.Context, r *rig, p params, rtt time.Duration) []row {
	return getThrough(ctx, r, p, rtt, false)
}

// getThrough measures GETs on fresh connections through -L tunnels or,
// with dynamic, through -D (SOCKS5) tunnels.
func getThrough(ctx context.Context, r *rig, p params, rtt time.Duration, dynamic bool) []row {
	r.setRTT(rtt)
	label := fmt.Sprintf("GET /small, new TCP connection each, RTT %d ms", rtt.Milliseconds())
	if dynamic {
		label = fmt.Sprintf("GET /small through SOCKS5 (-D, name resolved by sshd), new connection each, RTT %d ms", rtt.Milliseconds())
	}
	med := row{measure: label + ": median", unit: unitMS}
	p95 := row{measure: label + ": p95", unit: unitMS}
	if rtt == 0 {
		p95.target = absMax(2, "≤ 2 ms")
	} else {
		med.target = ratioMax(0.55)
	}

	pr := r.startPairSpec(ctx, "", dynamic)
	defer pr.Close()
	var trs [2]*http.Transport
	for _, t := range tools {
		if pr.tun[t] != nil {
			trs[t] = pr.tun[t].transport(false, 1)
			defer trs[t].CloseIdleConnections()
		}
	}
	var samples [2][]float64
	var errs [2]int
	var lastErr [2]error
	one := func(t tool) {
		if pr.tun[t] == nil {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, p.requestLimit)
		defer cancel()
		start := time.Now()
		_, err := getAll(rctx, trs[t], pr.tun[t].url("/small"))
		if err != nil {
			errs[t]++
			lastErr[t] = err
			return
		}
		samples[t] = append(samples[t], ms(time.Since(start)))
	}
	for i := range 5 { // warm-up, not counted
		for _, t := range order(i) {
			one(t)
		}
	}
	samples, errs = [2][]float64{}, [2]int{}
	for i := 0; i < p.getN && ctx.Err() == nil; i++ {
		for _, t := range order(i) {
			one(t)
		}
	}
	for _, t := range tools {
		switch {
		case pr.tun[t] == nil:
			med.cells[t], p95.cells[t] = failed(pr.err[t]), failed(pr.err[t])
		case len(samples[t]) == 0 || float64(errs[t]) > p.maxErrorShare*float64(p.getN):
			err := fmt.Errorf("%d of %d requests failed, last: %w", errs[t], p.getN, lastErr[t])
			med.cells[t], p95.cells[t] = failed(err), failed(err)
		default:
			m := median(samples[t])
			med.cells[t] = value(m)
			p95.cells[t] = value(percentile(samples[t], 95))
			slow := 0
			for _, x := range samples[t] {
				if x > m+20 {
					slow++
				}
			}
			p95.cells[t].note = fmt.Sprintf("%d of %d > median + 20 ms", slow, len(samples[t]))
			if errs[t] > 0 {
				med.cells[t].note = fmt.Sprintf("%d failed", errs[t])
			}
		}
	}
	return []row{med, p95}
}

// --- 2. A page of 50 resources over 6 connections --------------------------

func benchPage(ctx context.Context, r *rig, p params) []row {
	r.setRTT(p.highRTT)
	rtt := p.highRTT.Milliseconds()
	newRow := row{measure: fmt.Sprintf("page: / + 50 resources, %d parallel connections, new connection per request, RTT %d ms (median of %d)", p.pageParallel, rtt, p.pageLoads), unit: unitMS, target: ratioMax(0.4)}
	kaRow := row{measure: fmt.Sprintf("page: / + 50 resources, %d parallel connections, keep-alive, RTT %d ms (median of %d)", p.pageParallel, rtt, p.pageLoads), unit: unitMS, target: ratioMax(0.85)}

	pr := r.startPair(ctx, "")
	defer pr.Close()
	var samples [2][2][]float64 // [mode][tool]
	var lastErr [2][2]error
	load := func(mode int, t tool) {
		if pr.tun[t] == nil {
			return
		}
		d, err := loadPage(ctx, "http://"+pr.tun[t].addr(), p.pageParallel, mode == 0)
		if err != nil {
			lastErr[mode][t] = err
			r.log.Warn("page load failed", "tool", t.short(), "err", err)
			return
		}
		samples[mode][t] = append(samples[mode][t], ms(d))
	}
	for _, t := range tools { // warm-up: one keep-alive load each
		load(1, t)
	}
	samples = [2][2][]float64{}
	for i := 0; i < p.pageLoads && ctx.Err() == nil; i++ {
		for mode := range 2 {
			for _, t := range order(i + mode) {
				load(mode, t)
			}
		}
	}
	rows := [2]*row{&newRow, &kaRow}
	for mode, rw := range rows {
		for _, t := range tools {
			switch {
			case pr.tun[t] == nil:
				rw.cells[t] = failed(pr.err[t])
			case len(samples[mode][t]) < p.pageLoads:
				rw.cells[t] = failed(fmt.Errorf("%d of %d page loads failed, last: %w", p.pageLoads-len(samples[mode][t]), p.pageLoads, lastErr[mode][t]))
			default:
				rw.cells[t] = value(median(samples[mode][t]))
			}
		}
	}
	return []row{newRow, kaRow}
}

// --- 3. Cold start ----------------------------------------------------------

func benchCold(ctx context.Context, r *rig, p params) []row {
	r.setRTT(p.highRTT)
	rw := row{measure: fmt.Sprintf("cold start: exec → first response, RTT %d ms (median of %d)", p.highRTT.Milliseconds(), p.coldN), unit: unitMS, target: ratioMax(0.65)}
	dialRow := row{measure: "cold start: exec → TCP connection to the SSH server (median)", unit: unitMS}
	flightRow := row{measure: "cold start: round trips from that connection to the first response (client flights seen by the relay, median)", unit: unitCount}
	var trace traceLog
	r.relay.SetTrace(trace.add)
	defer r.relay.SetTrace(nil)
	var samples, dials, flights [2][]float64
	var lastErr [2]error
	for i := 0; i < p.coldN && ctx.Err() == nil; i++ {
		for _, t := range order(i) {
			if !r.available(t) {
				continue
			}
			before := time.Now()
			tun, d, err := r.start(ctx, t, "")
			if err != nil {
				lastErr[t] = err
				continue
			}
			tun.Close()
			samples[t] = append(samples[t], ms(d))
			ct, err := analyzeCold(trace.since(before), tun.started, tun.started.Add(d))
			if err != nil {
				r.log.Warn("cold start trace", "tool", t.short(), "err", err)
				continue
			}
			dials[t] = append(dials[t], ms(ct.dial))
			flights[t] = append(flights[t], float64(ct.flights))
			r.log.Info("cold start", "tool", t.short(), "took", d.Round(time.Millisecond), "dial", ct.dial.Round(time.Millisecond),
				"first byte", ct.firstUp.Round(time.Millisecond), "flights", ct.flights, "trace", ct.String())
		}
	}
	for _, t := range tools {
		switch {
		case !r.available(t):
			rw.cells[t] = failed(r.portholeErr)
			dialRow.cells[t], flightRow.cells[t] = failed(r.portholeErr), failed(r.portholeErr)
			continue
		case len(samples[t]) < p.coldN:
			rw.cells[t] = failed(fmt.Errorf("%d of %d starts failed, last: %w", p.coldN-len(samples[t]), p.coldN, lastErr[t]))
		default:
			rw.cells[t] = value(median(samples[t]))
		}
		if len(dials[t]) == 0 {
			dialRow.cells[t], flightRow.cells[t] = failed(errors.New("no trace")), failed(errors.New("no trace"))
			continue
		}
		dialRow.cells[t] = value(median(dials[t]))
		flightRow.cells[t] = value(median(flights[t]))
	}
	return []row{rw, dialRow, flightRow}
}

// --- 4. Bulk download -------------------------------------------------------

func benchBulk(ctx context.Context, r *rig, p params) []row {
	rtts := []time.Duration{0, p.highRTT}
	ciphers := []string{"", p.gcmCipher}
	// rows[cipher][rtt]
	var rows [2][2]row
	for ci, c := range ciphers {
		name := "default cipher"
		if c != "" {
			name = c
		}
		for ri, rtt := range rtts {
			rw := row{
				measure: fmt.Sprintf("download %s, %s, RTT %d ms (median of %d)", sizeText(p.bulkBytes), name, rtt.Milliseconds(), p.bulkRepsFor(rtt)),
				unit:    unitMBps,
				higher:  true,
			}
			if rtt > 0 || c != "" {
				rw.target = ratioMin(1.0)
			}
			rows[ci][ri] = rw
		}
	}
	for ci, c := range ciphers {
		if ctx.Err() != nil {
			break
		}
		r.setRTT(0)
		var pr pair
		var negotiated [2]string
		for _, t := range tools {
			if !r.available(t) {
				pr.err[t] = r.portholeErr
				continue
			}
			off := r.sshdLogSize()
			pr.tun[t], _, pr.err[t] = r.start(ctx, t, c)
			negotiated[t] = r.cipherSince(off)
		}
		for ri, rtt := range rtts {
			r.setRTT(rtt)
			var samples [2][]float64
			var lastErr [2]error
			var cpu [2]time.Duration // the tunnel's CPU time over all downloads
			reps := p.bulkRepsFor(rtt)
			url := "/big"
			if p.bulkBytes != testrig.WebAppBigSize {
				url = "/big?size=" + strconv.FormatInt(p.bulkBytes, 10)
			}
			for i := 0; i < reps && ctx.Err() == nil; i++ {
				for _, t := range order(i + ri) {
					if pr.tun[t] == nil {
						continue
					}
					cpu0 := pr.tun[t].cpuTime()
					mbps, err := download(ctx, pr.tun[t].url(url), p.bulkBytes)
					cpu[t] += pr.tun[t].cpuTime() - cpu0
					if err != nil {
						lastErr[t] = err
						r.log.Warn("download failed", "tool", t.short(), "err", err)
						continue
					}
					samples[t] = append(samples[t], mbps)
				}
			}
			rw := &rows[ci][ri]
			for _, t := range tools {
				switch {
				case pr.tun[t] == nil:
					rw.cells[t] = failed(pr.err[t])
				case len(samples[t]) < reps:
					rw.cells[t] = failed(fmt.Errorf("%d of %d downloads failed, last: %w", reps-len(samples[t]), reps, lastErr[t]))
				default:
					rw.cells[t] = value(median(samples[t]))
					var notes []string
					if negotiated[t] != "" && c == "" {
						notes = append(notes, negotiated[t])
					}
					mb := float64(p.bulkBytes) * float64(len(samples[t])) / 1e6
					notes = append(notes, fmt.Sprintf("CPU %.2f ms/MB", ms(cpu[t])/mb))
					rw.cells[t].note = strings.Join(notes, "; ")
				}
			}
		}
		pr.Close()
	}
	return []row{rows[0][0], rows[1][0], rows[0][1], rows[1][1]}
}

// download GETs url and returns MB/s (10^6 bytes per second), timed from the
// request to the last byte.
func download(ctx context.Context, url string, want int64) (float64, error) {
	tr := newTransport(false, 1)
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	start := time.Now()
	n, err := getAll(ctx, tr, url)
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if n != want {
		return 0, fmt.Errorf("download %s: got %d bytes, want %d", url, n, want)
	}
	return float64(n) / 1e6 / d.Seconds(), nil
}

func sizeText(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// sshdLogSize is the current size of sshd's log, to read what follows.
func (r *rig) sshdLogSize() int64 {
	fi, err := os.Stat(r.sshd.LogPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// cipherSince returns the server→client cipher sshd logged after offset
// (needs LogLevel DEBUG1), or "".
func (r *rig) cipherSince(off int64) string {
	f, err := os.Open(r.sshd.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(off, 0); err != nil {
		return ""
	}
	b := make([]byte, 1<<20)
	n, _ := f.Read(b)
	return parseKexCipher(string(b[:n]))
}

var kexCipherRE = regexp.MustCompile(`kex: server->client cipher: (\S+)`)

// parseKexCipher finds sshd's "kex: server->client cipher: X" debug line.
func parseKexCipher(log string) string {
	m := kexCipherRE.FindStringSubmatch(log)
	if m == nil {
		return ""
	}
	return m[1]
}

// --- 5. Recovery after sleep ------------------------------------------------

type wakeKind int

const (
	wakePathIntact wakeKind = iota
	wakeNetworkChanged
	wakeNetworkSilent
)

func (k wakeKind) String() string {
	switch k {
	case wakeNetworkChanged:
		return "network changed"
	case wakeNetworkSilent:
		return "network changed, old path silent"
	}
	return "path intact"
}

// wakeResult is what happened after SIGCONT.
type wakeResult struct {
	recovered bool
	firstOK   time.Duration // SIGCONT → first successful response
	counted   int           // requests counted (at most wakeN)
	failed    int           // among counted: failed within the hang limit
	hung      int           // among counted: took longer than the hang limit
	exited    bool          // the tunnel process exited (and was not restarted)
	restarts  int           // autossh-style restarts
	lastErr   error
}

func benchWake(ctx context.Context, r *rig, p params) []row {
	r.setRTT(p.highRTT)
	blk := p.blackout.Round(time.Second)
	intact := row{measure: fmt.Sprintf("wake after %v asleep, path intact: SIGCONT → first response (failed/hung of first %d)", blk, p.wakeN), unit: unitMS}
	intact.target = wakeTarget(250, false)
	changed := row{measure: fmt.Sprintf("wake after %v asleep, network changed: SIGCONT → first response (failed/hung of first %d)", blk, p.wakeN), unit: unitMS}
	changed.target = wakeTarget(1500, true)
	autossh := row{measure: "same, network changed, ssh restarted when it exits (what autossh -M 0 adds)", unit: unitMS}
	autossh.target = wakeTarget(1500, true)
	silent := row{measure: fmt.Sprintf("wake after %v asleep, network changed, old flows silent (no reset), ssh restarted when it exits: SIGCONT → first response (failed/hung of first %d)", blk, p.wakeN), unit: unitMS}
	silent.target = wakeTarget(1500, true)

	type run struct {
		kind    wakeKind
		t       tool
		restart bool
		rw      *row
	}
	runs := []run{
		{wakePathIntact, toolSSH, false, &intact},
		{wakePathIntact, toolPorthole, false, &intact},
		{wakeNetworkChanged, toolPorthole, false, &changed},
		{wakeNetworkChanged, toolSSH, false, &changed},
		{wakeNetworkChanged, toolSSH, true, &autossh},
		{wakeNetworkSilent, toolPorthole, false, &silent},
		{wakeNetworkSilent, toolSSH, true, &silent},
	}
	for _, rn := range runs {
		if ctx.Err() != nil {
			rn.rw.cells[rn.t] = failed(ctx.Err())
			continue
		}
		if !r.available(rn.t) {
			rn.rw.cells[rn.t] = failed(r.portholeErr)
			continue
		}
		res, err := wakeOnce(ctx, r, p, rn.t, rn.kind, rn.restart)
		if err != nil {
			rn.rw.cells[rn.t] = failed(err)
			continue
		}
		r.log.Info("wake", "tool", rn.t.short(), "kind", rn.kind, "restart", rn.restart, "recovered", res.recovered,
			"after", res.firstOK.Round(time.Millisecond), "failed", res.failed, "hung", res.hung, "exited", res.exited)
		rn.rw.cells[rn.t] = wakeCell(res, p)
	}
	autossh.cells[toolPorthole] = changed.cells[toolPorthole]
	if n := autossh.cells[toolPorthole].note; n != "" {
		autossh.cells[toolPorthole].note = "same run as above; " + n
	}
	return []row{intact, changed, autossh, silent}
}

func wakeCell(res wakeResult, p params) cell {
	counts := fmt.Sprintf("%d failed, %d hung of %d", res.failed, res.hung, res.counted)
	if res.restarts > 0 {
		counts += fmt.Sprintf("; restarted %d×", res.restarts)
	}
	if !res.recovered {
		why := fmt.Sprintf("> %v", p.wakeCap)
		if res.exited {
			why = "never: it exited on wake"
		}
		c := failed(errors.New(why))
		if res.counted > 1 || !res.exited {
			c.note = counts
		}
		if res.lastErr != nil {
			c.detail = res.lastErr.Error()
		}
		return c
	}
	c := value(ms(res.firstOK))
	c.note = counts
	c.failedReqs = res.failed + res.hung
	return c
}

// wakeOnce starts a tunnel, puts it (and the path) to sleep for the blackout,
// wakes it and measures the recovery.
func wakeOnce(ctx context.Context, r *rig, p params, t tool, kind wakeKind, restart bool) (wakeResult, error) {
	tun, _, err := r.start(ctx, t, "")
	if err != nil {
		return wakeResult{}, err
	}
	defer func() { tun.Close() }() // tun may be replaced by a restart
	defer r.relay.Resume()

	// The session is up and has carried traffic (start did a GET).
	if err := tun.signalGroup(syscall.SIGSTOP); err != nil {
		return wakeResult{}, err
	}
	r.relay.Blackhole()
	select {
	case <-time.After(p.blackout):
	case <-ctx.Done():
		return wakeResult{}, ctx.Err()
	}
	switch kind {
	case wakeNetworkChanged:
		r.relay.CutFlows()
	case wakeNetworkSilent:
		r.relay.SilenceFlows()
	}
	r.relay.Resume()
	if err := tun.signalGroup(syscall.SIGCONT); err != nil {
		return wakeResult{}, err
	}
	woke := time.Now()
	return recoverLoop(ctx, r, p, &tun, t, restart, woke), nil
}

// recoverLoop GETs /small through *tunp on new connections, one after
// another, from since until the first success and at least wakeN requests
// (or wakeCap). With restart, the tunnel is exec-ed again when it exits
// (what autossh -M 0 does); *tunp is then the new one.
func recoverLoop(ctx context.Context, r *rig, p params, tunp **tunnel, t tool, restart bool, since time.Time) wakeResult {
	tun := *tunp
	woke := since
	var res wakeResult
	tr := newTransport(false, 1)
	defer tr.CloseIdleConnections()
	deadline := woke.Add(p.wakeCap)
	for i := 0; ; i++ {
		if res.recovered && i >= p.wakeN {
			break
		}
		now := time.Now()
		if !now.Before(deadline) || ctx.Err() != nil {
			break
		}
		if tun.hasExited() {
			if !restart {
				res.exited = true
				if !res.recovered {
					res.lastErr = tun.exitError()
					break
				}
			} else if res.restarts < 5 {
				// autossh: exec ssh again at once, same forward.
				res.restarts++
				spec := tun.spec
				tun.Close()
				r.log.Debug("restarting after exit", "tool", t.short(), "at", time.Since(woke).Round(time.Millisecond))
				nt, err := startTunnel(r.cmds, spec)
				if err != nil {
					res.lastErr = err
					return res
				}
				tun, *tunp = nt, nt
			}
		}
		limit := min(p.wakeReqLimit, time.Until(deadline))
		rctx, cancel := context.WithTimeout(ctx, limit)
		start := time.Now()
		_, err := getAll(rctx, tr, tun.url("/small"))
		cancel()
		took := time.Since(start)
		r.log.Debug("wake request", "tool", t.short(), "i", i, "at", start.Sub(woke).Round(time.Millisecond), "took", took.Round(time.Millisecond), "err", err)
		if i < p.wakeN {
			res.counted++
			switch {
			case took > p.wakeHang:
				res.hung++
			case err != nil:
				res.failed++
			}
		}
		if err == nil {
			if !res.recovered {
				res.recovered = true
				res.firstOK = time.Since(woke)
			}
			continue
		}
		res.lastErr = err
		select {
		case <-time.After(p.wakeErrPause):
		case <-ctx.Done():
		}
	}
	return res
}

// --- 5b. Remote forward after a network change ------------------------------

// benchRemote: a -R forward is up (the server listens, connections come
// back to the web app here); the network changes with the old flows left
// silent; how long until the server side accepts connections again? The
// ssh column is autossh -M 0 with ServerAliveInterval=15 and
// ServerAliveCountMax=3 and ExitOnForwardFailure=yes, the usual setup.
func benchRemote(ctx context.Context, r *rig, p params) []row {
	r.setRTT(p.highRTT)
	rw := row{
		measure: fmt.Sprintf("remote forward (-R), network changed, old flows silent: change → server side accepts again (RTT %v; ssh column: autossh -M 0 -R, ServerAliveInterval=15, ServerAliveCountMax=3)", p.highRTT),
		unit:    unitMS,
		target:  absMax(5000, "≤ 5 s"),
	}
	for _, t := range []tool{toolPorthole, toolSSH} {
		switch {
		case ctx.Err() != nil:
			rw.cells[t] = failed(ctx.Err())
			continue
		case !r.available(t):
			rw.cells[t] = failed(r.portholeErr)
			continue
		case t == toolSSH && r.cmds.autosshPath == "" && !r.cfg.aa:
			rw.cells[t] = failed(errors.New("autossh is not installed (apt-get install autossh)"))
			continue
		}
		d, restarts, err := remoteOnce(ctx, r, p, t)
		switch {
		case errors.Is(err, errNotBack):
			c := failed(fmt.Errorf("> %v", p.remoteCap))
			c.detail = err.Error()
			rw.cells[t] = c
		case err != nil:
			rw.cells[t] = failed(err)
		default:
			rw.cells[t] = value(ms(d))
		}
		if t == toolSSH && restarts > 0 {
			rw.cells[t].note = fmt.Sprintf("ssh restarted %d×", restarts)
		}
		r.log.Info("remote", "tool", t.short(), "back after", d.Round(time.Millisecond), "err", err)
	}
	return []row{rw}
}

var errNotBack = errors.New("the server side did not accept connections again")

// remoteOnce starts a -R tunnel, waits until the server side answers,
// silences the relay's flows and measures until it answers again.
func remoteOnce(ctx context.Context, r *rig, p params, t tool) (time.Duration, int, error) {
	spec, err := r.spec(ctx, t, "")
	if err != nil {
		return 0, 0, err
	}
	spec.remote = true
	tun, err := startTunnel(r.cmds, spec)
	if err != nil {
		return 0, 0, err
	}
	defer tun.Close()
	if _, err := waitReady(ctx, tun, 30*time.Second); err != nil {
		return 0, 0, err
	}
	time.Sleep(2 * time.Second) // past the first keepalive and Porthole's look at the server
	r.relay.SilenceFlows()
	changed := time.Now()
	tr := newTransport(false, 1)
	defer tr.CloseIdleConnections()
	var last error
	for time.Since(changed) < p.remoteCap && ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := getAll(rctx, tr, tun.url("/small"))
		cancel()
		if err == nil {
			return time.Since(changed), sshRestarts(tun), nil
		}
		last = err
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	if tun.hasExited() {
		return 0, 0, fmt.Errorf("%w within %v: it exited: %v; output: %s", errNotBack, p.remoteCap, tun.exitError(), tun.out.lastLines(3))
	}
	return 0, sshRestarts(tun), fmt.Errorf("%w within %v (last error: %v); output: %s", errNotBack, p.remoteCap, last, tun.out.lastLines(3))
}

// sshRestarts counts autossh's restarts of ssh from its output.
func sshRestarts(tun *tunnel) int {
	return max(strings.Count(tun.out.String(), "starting ssh (count")-1, 0)
}

// --- 6. Memory --------------------------------------------------------------

func benchRSS(ctx context.Context, r *rig, p params) []row {
	r.setRTT(p.highRTT)
	idle := row{measure: "RSS, idle after the tunnel is up (VmRSS, whole process group)", unit: unitMB, target: absMax(20, "≤ 20 MB")}
	busy := row{measure: fmt.Sprintf("RSS with %d idle keep-alive connections open through the tunnel", p.rssConns), unit: unitMB, target: absMax(40, "≤ 40 MB")}
	pr := r.startPair(ctx, "")
	defer pr.Close()
	select {
	case <-time.After(p.rssSettle):
	case <-ctx.Done():
	}
	for _, t := range tools {
		if pr.tun[t] == nil {
			idle.cells[t] = failed(pr.err[t])
			continue
		}
		m, err := pr.tun[t].memory()
		if err != nil {
			idle.cells[t] = failed(err)
			continue
		}
		idle.cells[t] = memCell(m)
	}
	for _, t := range order(0) {
		if pr.tun[t] == nil {
			busy.cells[t] = failed(pr.err[t])
			continue
		}
		conns, err := openManyHeld(ctx, pr.tun[t].addr(), "/small", p.rssConns, p.rssParallel)
		if err != nil {
			busy.cells[t] = failed(err)
			continue
		}
		select {
		case <-time.After(p.rssSettle):
		case <-ctx.Done():
		}
		m, err := pr.tun[t].memory()
		closeHeld(conns)
		if err != nil {
			busy.cells[t] = failed(err)
			continue
		}
		busy.cells[t] = memCell(m)
	}
	return append([]row{idle, busy}, benchAgent(ctx, r, 5, p.rssSettle)...)
}

// memCell shows VmRSS in MB with its anonymous/file-backed split.
func memCell(m memory) cell {
	mb := func(kb int64) float64 { return float64(kb) * 1024 / 1e6 }
	c := value(mb(m.rss))
	c.note = fmt.Sprintf("anon %.1f + file %.1f", mb(m.anon), mb(m.file))
	if m.procs > 1 {
		c.note += fmt.Sprintf(", %d processes", m.procs)
	}
	return c
}
