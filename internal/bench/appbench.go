package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

// benchApp measures the app path through `porthole serve`'s HTTP API, the
// API the UI calls: "click Connect → connected" (Connect returns) and
// "click Open on a connected server's app → page loaded" (OpenApp, then the
// page through the endpoint it returns). The ssh column is what an OpenSSH
// user does for the same: exec ssh -N -L until a first response, and the
// first page load through a tunnel that is up.
func benchApp(ctx context.Context, r *rig, p params) []row {
	r.setRTT(p.highRTT)
	rtt := p.highRTT.Milliseconds()
	connect := row{measure: fmt.Sprintf("app: click Connect → connected (serve API Connect returns), RTT %d ms (median of %d; ssh column: exec → first response through -L)", rtt, p.appN), unit: unitMS, target: ratioMax(0.65)}
	open := row{measure: fmt.Sprintf("app: click Open on a connected server's app → page loaded (serve API OpenApp, then / + 50 resources over %d keep-alive connections), RTT %d ms (median of %d; ssh column: first page load through a tunnel that is up)", p.pageParallel, rtt, p.appN), unit: unitMS, target: ratioMax(0.80)}

	var samples [2][2][]float64 // [row][tool]
	var lastErr [2][2]error
	var app *servedApp
	var webs []*testrig.WebApp
	defer func() {
		if app != nil {
			app.Close()
		}
		for _, w := range webs {
			w.Close()
		}
	}()
	if r.cfg.aa {
		r.portholeErrApp = errors.New("not run in an A/A run (-aa)")
	} else if r.available(toolPorthole) {
		var err error
		if app, err = startServed(ctx, r); err != nil {
			r.portholeErrApp = err
			r.log.Warn("porthole serve failed to start", "err", err)
		}
	}
	// One web app per repetition: each Open is the first of that app.
	for range p.appN {
		w, err := testrig.StartWebApp(ctx, testrig.WebAppOptions{})
		if err != nil {
			return []row{withErr(connect, err), withErr(open, err)}
		}
		w.SetKeepAlive(true)
		webs = append(webs, w)
	}
	var appDials []float64
	var trace traceLog
	r.relay.SetTrace(trace.add)
	defer r.relay.SetTrace(nil)
	for i := 0; i < p.appN && ctx.Err() == nil; i++ {
		for _, t := range order(i) {
			switch {
			case t == toolSSH:
				tun, d, err := r.start(ctx, t, "")
				if err != nil {
					lastErr[0][t], lastErr[1][t] = err, err
					continue
				}
				samples[0][t] = append(samples[0][t], ms(d))
				pd, err := loadPage(ctx, "http://"+tun.addr(), p.pageParallel, false)
				tun.Close()
				if err != nil {
					lastErr[1][t] = err
					continue
				}
				samples[1][t] = append(samples[1][t], ms(pd))
			case app != nil:
				began := time.Now()
				dc, do, err := app.connectOpen(ctx, p, webs[i].Port(), i > 0)
				if ct, terr := analyzeCold(trace.since(began), began, began.Add(dc+do)); terr == nil && dc > 0 {
					appDials = append(appDials, ms(ct.dial))
					r.log.Info("app connect", "connect", dc.Round(time.Millisecond), "open+page", do.Round(time.Millisecond),
						"dial", ct.dial.Round(time.Millisecond), "trace", ct.String())
				}
				if err != nil {
					lastErr[0][t], lastErr[1][t] = err, err
					r.log.Warn("app path failed", "err", err)
				}
				if dc > 0 {
					samples[0][t] = append(samples[0][t], ms(dc))
				}
				if do > 0 {
					samples[1][t] = append(samples[1][t], ms(do))
				}
			}
		}
	}
	for ri, rw := range []*row{&connect, &open} {
		for _, t := range tools {
			switch {
			case t == toolPorthole && !r.available(t):
				rw.cells[t] = failed(r.portholeErr)
			case t == toolPorthole && app == nil:
				rw.cells[t] = failed(r.portholeErrApp)
			case len(samples[ri][t]) < p.appN:
				rw.cells[t] = failed(fmt.Errorf("%d of %d failed, last: %w", p.appN-len(samples[ri][t]), p.appN, lastErr[ri][t]))
			default:
				rw.cells[t] = value(median(samples[ri][t]))
			}
		}
	}
	if connect.cells[toolPorthole].ok && len(appDials) > 0 {
		connect.cells[toolPorthole].note = fmt.Sprintf("TCP dial %s after the call", unitMS.format(median(appDials)))
	}
	return []row{connect, open}
}

func withErr(rw row, err error) row {
	rw.cells = failBoth(err)
	return rw
}

// servedApp is a `porthole serve` process with a profile for the rig's sshd
// (through the relay), in a home directory of its own.
type servedApp struct {
	proc  *tunnel // the process (tunnel's process-group handling)
	base  string  // http://127.0.0.1:PORT
	token string
	id    string // the profile's id
	home  string
	log   *slog.Logger
}

// startServed starts `porthole serve` with HOME in a temp dir holding the
// relay's known_hosts line, and adds a profile (key auth, the rig's key).
func startServed(ctx context.Context, r *rig) (_ *servedApp, err error) {
	home, err := os.MkdirTemp(r.dir, "home-")
	if err != nil {
		return nil, fmt.Errorf("serve: temp home: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	kh, err := os.ReadFile(r.knownHosts)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), kh, 0o600); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	cmd := exec.Command(r.cmds.portholePath, "serve", "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"), "XDG_STATE_HOME="+filepath.Join(home, ".local", "state"),
		"DBUS_SESSION_BUS_ADDRESS=disabled:", "SSH_AUTH_SOCK=")
	if r.cfg.verbose {
		cmd.Env = append(cmd.Env, "PORTHOLE_LOG=debug")
	}
	logs := newTailBuffer(256 << 10)
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	cmd.WaitDelay = 2 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	proc := &tunnel{argv: cmd.Args, cmd: cmd, out: logs, exited: make(chan struct{}), started: time.Now()}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start porthole serve: %w", err)
	}
	go func() {
		proc.waitErr = cmd.Wait()
		close(proc.exited)
	}()
	a := &servedApp{proc: proc, home: home, log: r.log}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	lines := make(chan string, 1)
	go func() {
		br := bufio.NewReader(stdout)
		line, _ := br.ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, br)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("porthole serve printed no URL within 30 s; its output ends with: %s", logs.lastLines(5))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	u, tok, ok := strings.Cut(strings.TrimSpace(line), "/#token=")
	if !ok {
		return nil, fmt.Errorf("porthole serve's first line %q is not its URL; output: %s", line, logs.lastLines(5))
	}
	a.base, a.token = u, tok
	var prof struct {
		ID string `json:"id"`
	}
	if err := a.call(ctx, "AddServer", &prof, map[string]any{
		"name": "bench", "host": "127.0.0.1", "port": r.relayPort, "user": r.sshd.User,
		"auth": []string{"key"}, "keyPath": r.sshd.ClientKeyPath, "options": map[string]any{},
	}); err != nil {
		return nil, err
	}
	a.id = prof.ID
	return a, nil
}

// call POSTs an API method with JSON arguments and decodes the answer into out.
func (a *servedApp) call(ctx context.Context, method string, out any, args ...any) error {
	if args == nil {
		args = []any{}
	}
	body, err := json.Marshal(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/api/"+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("serve API %s: %w", method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("serve API %s: %w", method, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("serve API %s: %s: %s", method, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("serve API %s: %w in %.200s", method, err, b)
		}
	}
	return nil
}

// connectOpen is one repetition: (Disconnect first when again,) Connect,
// timed; ListApps as the server's page does, not timed; then OpenApp on
// port and the page through its endpoint, timed.
func (a *servedApp) connectOpen(ctx context.Context, p params, port int, again bool) (dConnect, dOpen time.Duration, err error) {
	if again {
		if err := a.call(ctx, "Disconnect", nil, a.id); err != nil {
			return 0, 0, err
		}
	}
	var sum struct {
		State string `json:"state"`
		Error string `json:"error"`
	}
	start := time.Now()
	if err := a.call(ctx, "Connect", &sum, a.id); err != nil {
		return 0, 0, err
	}
	dConnect = time.Since(start)
	if sum.State != "" && sum.State != "connected" {
		return 0, 0, fmt.Errorf("Connect returned state %q (%s)", sum.State, sum.Error)
	}
	if err := a.call(ctx, "ListApps", nil, a.id); err != nil {
		return dConnect, 0, err
	}
	var opened struct {
		LocalURL    string `json:"localUrl"`
		LocalOrigin string `json:"localOrigin"`
	}
	start = time.Now()
	if err := a.call(ctx, "OpenApp", &opened, a.id, port, "/"); err != nil {
		return dConnect, 0, err
	}
	if opened.LocalOrigin == "" {
		return dConnect, 0, errors.New("OpenApp returned no localOrigin")
	}
	if _, err := loadPage(ctx, opened.LocalOrigin, p.pageParallel, false); err != nil {
		return dConnect, 0, err
	}
	return dConnect, time.Since(start), nil
}

// Close stops serve (and its agent) and removes its home.
func (a *servedApp) Close() {
	a.proc.Close()
	a.log.Debug("porthole serve's log", "text", a.proc.out.String())
	os.RemoveAll(a.home)
}
