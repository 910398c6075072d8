package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// unit is what a row's values measure.
type unit int

const (
	unitMS     unit = iota // milliseconds, lower is better
	unitMBps               // 10^6 bytes per second, higher is better
	unitMB                 // 10^6 bytes, lower is better
	unitCount              // a count (failures, a growth), lower is better
	unitConnPS             // connections per second, higher is better
)

func (u unit) String() string {
	switch u {
	case unitMS:
		return "ms"
	case unitMBps:
		return "MB/s"
	case unitMB:
		return "MB"
	case unitCount:
		return ""
	case unitConnPS:
		return "conn/s"
	default:
		return fmt.Sprintf("unit(%d)", int(u))
	}
}

func (u unit) format(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case u == unitCount:
		return fmt.Sprintf("%.0f", v)
	case u == unitConnPS:
		return fmt.Sprintf("%.0f conn/s", v)
	case u == unitMS && v >= 10000:
		return fmt.Sprintf("%.2f s", v/1000)
	case u == unitMS && v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case u == unitMS && v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	case u == unitMS && v >= 1:
		return fmt.Sprintf("%.2f ms", v)
	case u == unitMS:
		return fmt.Sprintf("%.3f ms", v)
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, u)
	default:
		return fmt.Sprintf("%.1f %s", v, u)
	}
}

// cell is one tool's result in one row.
type cell struct {
	ok         bool
	v          float64
	err        string // why there is no value
	note       string // shown after the value
	detail     string // long explanation, shown as a footnote
	failedReqs int    // failed or hung requests (wake rows)
}

func value(v float64) cell { return cell{ok: !math.IsNaN(v), v: v, err: "no data"} }

func failed(err error) cell {
	if err == nil {
		err = fmt.Errorf("not measured")
	}
	return cell{err: err.Error()}
}

// target is the goal for the porthole column.
type target struct {
	text string
	// check says whether porthole met the target; ok is false when it cannot
	// be judged (missing values).
	check func(ratio float64, hasRatio bool, ph cell) (met, ok bool)
}

func ratioMax(x float64) target {
	return target{
		text:  fmt.Sprintf("≤ %.2g×", x),
		check: func(r float64, has bool, _ cell) (bool, bool) { return has && r <= x, has },
	}
}

func ratioMin(x float64) target {
	return target{
		text:  fmt.Sprintf("≥ %.2g×", x),
		check: func(r float64, has bool, _ cell) (bool, bool) { return has && r >= x, has },
	}
}

func absMax(v float64, text string) target {
	return target{
		text:  text,
		check: func(_ float64, _ bool, ph cell) (bool, bool) { return ph.ok && ph.v <= v, ph.ok || ph.err != "" },
	}
}

func wakeTarget(maxMS float64, zeroFail bool) target {
	text := fmt.Sprintf("≤ %s", unitMS.format(maxMS))
	if zeroFail {
		text += ", 0 failed, 0 hung"
	}
	return target{
		text: text,
		check: func(_ float64, _ bool, ph cell) (bool, bool) {
			if !ph.ok {
				return false, ph.err != ""
			}
			return ph.v <= maxMS && (!zeroFail || ph.failedReqs == 0), true
		},
	}
}

// row is one line of the table.
type row struct {
	measure string
	unit    unit
	higher  bool // higher is better (throughput)
	cells   [2]cell
	target  target
}

func (r row) ratio() (float64, bool) {
	s, p := r.cells[toolSSH], r.cells[toolPorthole]
	if !s.ok || !p.ok || s.v <= 0 {
		return 0, false
	}
	return p.v / s.v, true
}

// report is the whole result.
type report struct {
	date       time.Time
	took       time.Duration
	machine    machine
	quick, aa  bool
	only       map[measureName]bool
	p          params
	rows       []row
	portholeOK bool
}

// renderTable renders rows as a Markdown table; footnotes hold long errors.
func renderTable(rows []row, portholeOK, aa bool) string {
	var b strings.Builder
	var notes []string
	cellText := func(c cell, u unit) string {
		var s string
		if c.ok {
			s = u.format(c.v)
		} else {
			s = c.err
			if len(s) > 60 {
				notes = append(notes, c.err)
				s = fmt.Sprintf("failed [%d]", len(notes))
			}
		}
		if c.note != "" {
			s += " (" + c.note + ")"
		}
		if c.detail != "" {
			notes = append(notes, c.detail)
			s += fmt.Sprintf(" [%d]", len(notes))
		}
		return mdEscape(s)
	}
	col2 := toolPorthole.String()
	if aa {
		col2 = "ssh -N -L again (A/A run)"
	}
	fmt.Fprintf(&b, "| measure | %s | %s | ratio (porthole ÷ ssh) | target | met? |\n", toolSSH, col2)
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, r := range rows {
		ratio := "—"
		if x, ok := r.ratio(); ok {
			ratio = fmt.Sprintf("%.2f×", x)
			if r.higher {
				ratio += " (MB/s: higher is better)"
			}
		}
		tgt, met := "—", "—"
		if r.target.check != nil {
			tgt = r.target.text
			x, has := r.ratio()
			if m, ok := r.target.check(x, has, r.cells[toolPorthole]); ok && portholeOK {
				met = "no"
				if m {
					met = "yes"
				}
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", mdEscape(r.measure),
			cellText(r.cells[toolSSH], r.unit), cellText(r.cells[toolPorthole], r.unit), ratio, mdEscape(tgt), met)
	}
	if len(notes) > 0 {
		b.WriteString("\n")
		for i, n := range notes {
			fmt.Fprintf(&b, "[%d] %s\n", i+1, mdEscape(n))
		}
	}
	return b.String()
}

func (rep *report) allRows() []row { return append([]row(nil), rep.rows...) }

// table is what is printed to stdout.
func (rep *report) table() string {
	var b strings.Builder
	b.WriteString("\n")
	b.WriteString(rep.modeLine())
	b.WriteString("\n\n")
	b.WriteString(renderTable(rep.allRows(), rep.portholeOK, rep.aa))
	return b.String()
}

func (rep *report) modeLine() string {
	var parts []string
	if rep.quick {
		parts = append(parts, "QUICK run (-quick: few iterations; numbers are rough)")
	}
	if rep.aa {
		parts = append(parts, "A/A run (-aa): OpenSSH in BOTH columns, a self-test of the rig; ratios should be ≈ 1")
	}
	if rep.only != nil {
		var names []string
		for _, n := range measureNames() {
			if m, _ := lookupMeasure(n); rep.only[m] {
				names = append(names, n)
			}
		}
		parts = append(parts, "subset: -only "+strings.Join(names, ","))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("Full run, %s UTC, took %v.", rep.date.Format("2006-01-02 15:04"), rep.took.Round(time.Second))
	}
	return strings.Join(parts, "; ") + fmt.Sprintf(". %s UTC, took %v.", rep.date.Format("2006-01-02 15:04"), rep.took.Round(time.Second))
}

// markdown is docs/BENCHMARKS.md.
func (rep *report) markdown() string {
	m := rep.machine
	p := rep.p
	var b strings.Builder
	b.WriteString("# Benchmarks: porthole forward vs ssh -N -L\n\n")
	b.WriteString("<!-- Generated by `make bench` (internal/bench). Do not edit by hand: re-run it. -->\n\n")
	b.WriteString(rep.modeLine() + "\n\n")
	b.WriteString("Reproduce with `make bench` (it builds `build/bin/porthole`, then runs\n")
	b.WriteString("`go run ./internal/bench -porthole build/bin/porthole -out docs/BENCHMARKS.md`; about 15 minutes\n")
	b.WriteString("on a busy 2-core machine, 4 of them for the 100,000-connection soak;\n")
	b.WriteString("`-quick` takes about 3 minutes, `-only " + strings.Join(measureNames(), ",") + "` picks measures).\n\n")
	b.WriteString("## Machine\n\n")
	fmt.Fprintf(&b, "- date: %s UTC\n", rep.date.Format("2006-01-02 15:04:05"))
	fmt.Fprintf(&b, "- CPU: %s, %d cores\n", m.cpu, m.cores)
	fmt.Fprintf(&b, "- RAM: %.1f GiB\n", float64(m.ramBytes)/(1<<30))
	fmt.Fprintf(&b, "- load average at the start (1, 5, 15 min): %s (other work on this machine shares the cores)\n", m.load)
	fmt.Fprintf(&b, "- OS: %s, kernel %s\n", m.os, m.kernel)
	fmt.Fprintf(&b, "- Go: %s\n", m.goVersion)
	fmt.Fprintf(&b, "- OpenSSH (client and sshd): %s\n", m.openssh)
	fmt.Fprintf(&b, "- porthole: %s\n\n", m.porthole)
	b.WriteString("## Results\n\n")
	b.WriteString("ratio = porthole's value ÷ ssh's value. For times and memory lower is better; for the\n")
	b.WriteString("MB/s rows it is porthole's throughput ÷ ssh's (= ssh's time ÷ porthole's), higher is better.\n")
	b.WriteString("\"met?\" judges the porthole column against the target. MB = 10^6 bytes.\n\n")
	b.WriteString(renderTable(rep.allRows(), rep.portholeOK, rep.aa))
	b.WriteString("\n## Method\n\n")
	fmt.Fprintf(&b, `- Everything runs on this machine over loopback (127.0.0.1) only. A test web app
  (internal/testrig) listens on 127.0.0.1 and is reached only through SSH: both tools forward
  127.0.0.1:LPORT to 127.0.0.1:WEBPORT through a real OpenSSH sshd (throwaway ed25519 keys).
- The SSH leg goes client → relay → sshd. The relay is internal/testrig's user-space TCP relay
  (this kernel has no netem): "RTT 70 ms" adds 35 ms to each direction of every byte without
  cutting bandwidth. The local leg (client → forwarder) and sshd → web app have no added delay.
- Commands (LPORT, WEBPORT, RELAYPORT, KEY and KNOWN are per run):
  - `+"`ssh -F /dev/null -N -L 127.0.0.1:LPORT:127.0.0.1:WEBPORT -p RELAYPORT -i KEY -o IdentitiesOnly=yes -o UserKnownHostsFile=KNOWN -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes -o ExitOnForwardFailure=yes -o ServerAliveInterval=15 -o ServerAliveCountMax=3 root@127.0.0.1`"+`
  - `+"`porthole forward -L 127.0.0.1:LPORT:127.0.0.1:WEBPORT -p RELAYPORT -i KEY -o UserKnownHostsFile=KNOWN root@127.0.0.1`"+`
  - the cipher rows add `+"`-c aes128-gcm@openssh.com`"+` to ssh and `+"`-o Ciphers=aes128-gcm@openssh.com`"+` to porthole;
    "default cipher" rows name the cipher each tool negotiated (from sshd's log).
- The two tools run in the same run and are interleaved (ABBA order) request by request,
  page by page and start by start, so machine noise hits both alike.
- Client: Go net/http, HTTP/1.1, TCP_NODELAY on (as in browsers and curl).
- GET: %d sequential GET /small per tool and RTT, each on a new TCP connection (after 5 warm-up
  requests); time from dial to the last body byte. At RTT 0 the times are bimodal: about 1 ms, or
  about 40 ms when a small segment waits for a delayed ACK (Nagle's algorithm on a socket without
  TCP_NODELAY somewhere on the path), so the p95 cell also counts the requests slower than the
  median + 20 ms.
- Page: GET / (an HTML page referencing 50 resources) then its 50 resources over %d parallel
  connections, from a client with no open connection; "new connection" opens one TCP connection
  per request, "keep-alive" reuses up to %d. Median of %d loads, after one warm-up load.
- Back to back (issue 11): each tool on its own turn (not interleaved request by request, which
  would hand each tool a pause of one request of the other): a new tunnel, and as soon as one GET
  went through, %d GET /small one after another with no pause, each on a new TCP connection
  (measured); then more until %d requests, then %d again (measured, "after warm-up"). p90 cells
  give the fastest request too.
- First page load after connect: a new tunnel per load; right after its first GET /small went
  through, the page (as above, keep-alive) from a client with no open connection. Tools alternate.
- App path, through `+"`porthole serve`"+`'s HTTP API (the API the UI calls; serve runs as the user would
  run it, HOME in a temp dir, with a profile for the rig's sshd through the relay, key auth):
  "click Connect" is the time for the Connect call to return connected; then ListApps (what the
  server's page shows, not timed); "click Open" is OpenApp on a port of a fresh web app (one per
  repetition) plus the page through the endpoint it returns (keep-alive, as above). Between
  repetitions the server is disconnected. The ssh column is what an OpenSSH user does instead:
  exec `+"`ssh -N -L`"+` until the first response, and the first page load through that tunnel.
  Median of %d.
- Network change with no sleep: both tunnels up (each carried one request), then idle for %v
  (under both tools' keepalive thresholds), then every relayed flow goes silent (bytes swallowed,
  nothing closed; new flows work). No SIGSTOP, so no clock jump. Then GET /small as in the wake
  rows, both tools at the same time, each with its own client. The ssh column is
  `+"`autossh -M 0`"+` running the same `+"`ssh -N -L`"+` command (AUTOSSH_GATETIME=0).
- Cold start: from exec of the tunnel command to the first successful GET through it (polled
  every 5 ms; connection refused until the listener is up). Median of %d.
- Download: GET of %s, timed from the request to the last byte; median of %d at RTT 0 and %d at
  RTT 70 ms. At RTT 0 the numbers swing by ±20%% between runs on a busy 2-core machine (and by
  far more when other work shares the cores), so each cell also gives the tunnel process's CPU time
  (utime + stime of its processes, /proc/PID/stat) per MB moved: what the tool costs, whatever the load.
- Wake: the tunnel carries a request, then its whole process group gets SIGSTOP and the relay
  blackholes (laptop asleep: nothing flows, nothing closes) for %v. "path intact": the relay
  resumes; "network changed": every relayed flow is reset (RST both ways), then the relay resumes;
  "old flows silent": every relayed flow is silenced instead (bytes swallowed, nothing closed, as
  when the old network's packets stop arriving), new flows work.
  Then SIGCONT, and GET /small on a new connection, one after another (timeout %v each, %v
  pause after a failure), until the first success and at least %d requests, or for at most %v.
  RTT 70 ms throughout.
  A request slower than %v counts as hung. ssh runs as OpenSSH users run it for long-lived
  tunnels (ServerAliveInterval=15, ServerAliveCountMax=3). Plain ssh exits when its connection is
  reset and does not come back; autossh -M 0 is that plus exec-ing ssh again, which the
  "ssh restarted" row emulates by re-exec-ing the same command as soon as ssh exits.
- RSS: VmRSS from /proc/PID/status summed over the tunnel's process group (and descendants), with
  its split into RssAnon (heap, stacks) and RssFile (binary and shared libraries), %v after the tunnel
  came up, and with %d TCP connections open through the tunnel, each having done one keep-alive
  GET /small and then idle (opened %d at a time, at RTT 70 ms).
- Guard: the same-user check (backend/guard, one netlink sock_diag lookup of the peer socket's
  owner) that every Porthole listener runs on each accepted connection, timed in the bench process
  around SameUser.Allow for %d loopback connections accepted one at a time (also
  `+"`go test -bench BenchmarkGuard ./backend/guard`"+`).
- Soak: what `+"`make soak`"+` checks (internal/faults, Soak), with this porthole binary as the agent:
  one agent process (through the Supervisor, as the app runs it) logged in to a real sshd (directly,
  no relay, no added RTT), with a web forward and a raw (-L) forward to the test web app.
  %s connections, %s at a time, each a new TCP connection with one GET /small, half through
  each forward, after 200 warm-up connections; a connection fails on any error or a wrong answer
  (60 s limit each). Agent fds (/proc/PID/fd) and the app side's goroutines (the bench process:
  the client, the rig's sshd, relay and web app) are counted 0.5 s after the warm-up and again
  after the soak, until they are back within the target (at most 30 s); both forwards must still
  answer afterwards. Agent RSS is VmRSS of the agent process at that point.
- Limits of the method: loopback only, so the local leg costs nothing and throughput at RTT 0 is
  bound by CPU (2 tools + relay + sshd + client share the cores). SIGSTOP does not make the
  monotonic clock jump, so a forwarder that detects sleep from wall-clock vs monotonic time sees
  no sleep here; the relay's reset is kinder than a real network change, where old flows usually
  go silent instead of being reset.
`, p.getN, p.pageParallel, p.pageParallel, p.pageLoads,
		p.b2bN, p.b2bWarm, p.b2bN, p.appN, p.netIdle, p.coldN, sizeText(p.bulkBytes), p.bulkRepsLAN, p.bulkReps,
		p.blackout, p.wakeReqLimit, p.wakeErrPause, p.wakeN, p.wakeCap, p.wakeHang,
		p.rssSettle, p.rssConns, p.rssParallel, p.guardN, thousands(p.soakN), thousands(p.soakParallel))
	return b.String()
}

// mdEscape makes s safe inside a Markdown table cell.
func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}
