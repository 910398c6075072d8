package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func servicePorts(svcs []Service) []int {
	var ps []int
	for _, s := range svcs {
		ps = append(ps, s.Port)
	}
	return ps
}

func findService(svcs []Service, port int) *Service {
	for i := range svcs {
		if svcs[i].Port == port {
			return &svcs[i]
		}
	}
	return nil
}

func TestScannerProbesOnlyNewListeners(t *testing.T) {
	checkGoroutines(t)
	lab := serve(t, jupyterLabMimic(&requestLog{}))
	tb := serve(t, tensorBoardMimic(&requestLog{}))
	st := serve(t, streamlitMimic(&requestLog{}))
	recLab := procRecords(lab, 4242, 41001, "jupyter-lab", "/home/alice/project", "/usr/bin/python3 /home/alice/.local/bin/jupyter-lab")
	recTB := procRecords(tb, 4343, 41002, "tensorboard", "/home/alice/exp", "python3 /usr/local/bin/tensorboard --logdir runs")
	recST := procRecords(st, 4444, 41003, "streamlit", "/home/alice/dash", "python3 /usr/local/bin/streamlit run app.py")

	ex := &fakeExecer{}
	ex.set(fakeProcListing(recLab, recTB, recST), nil)
	d := newTestDialer()
	s := NewScanner(ex, d, Options{})
	ctx := context.Background()

	svcs, err := s.Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{lab, tb, st}
	slices.Sort(want)
	if !slices.Equal(servicePorts(svcs), want) {
		t.Fatalf("ports %v, want %v", servicePorts(svcs), want)
	}
	if d.count(lab) != 2 || d.count(tb) != 1 || d.count(st) != 1 {
		t.Errorf("first scan dials: lab %d (want 2: / and its redirect), tb %d, st %d", d.count(lab), d.count(tb), d.count(st))
	}
	titles := map[int]string{}
	for _, sv := range svcs {
		titles[sv.Port] = sv.Title
		if !sv.IsWeb || sv.DialHost != "127.0.0.1" || sv.Scope != ScopeLoopback || !sv.Mine || sv.Local || sv.Process == nil {
			t.Errorf("service %+v", sv)
		}
	}
	if titles[lab] != "Jupyter Lab — ~/project" || titles[tb] != "TensorBoard — runs/" || titles[st] != "Streamlit — app.py" {
		t.Errorf("titles %v", titles)
	}
	if sv := findService(svcs, lab); sv.OpenPath != "/lab" || sv.Kind != KindJupyterLab || sv.Probe.Status != 302 {
		t.Errorf("lab = %+v", sv)
	}
	if len(ex.cmds) != 1 || !strings.HasPrefix(ex.cmds[0], "sh -c '") || !strings.Contains(ex.cmds[0], "porthole-sockets v1") {
		t.Errorf("exec'd %d commands; first %.40q", len(ex.cmds), ex.cmds)
	}

	// Unchanged: nothing is probed again, and the results are the same.
	before := d.total()
	again, err := s.Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.total() != before {
		t.Errorf("second scan dialed %d times; unchanged listeners must not be probed", d.total()-before)
	}
	if !slices.EqualFunc(svcs, again, func(a, b Service) bool { return a.Title == b.Title && a.Kind == b.Kind && a.Probe == b.Probe }) {
		t.Errorf("second scan differs:\n%+v\n%+v", svcs, again)
	}

	// TensorBoard restarted (new pid): probed again. Streamlit vanished:
	// dropped, and probed again when it comes back.
	recTB2 := procRecords(tb, 5555, 51002, "tensorboard", "/home/alice/exp2", "python3 /usr/local/bin/tensorboard --logdir runs2")
	ex.set(fakeProcListing(recLab, recTB2), nil)
	third, err := s.Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.count(tb) != 2 || d.count(lab) != 2 || d.count(st) != 1 {
		t.Errorf("after a restart: tb dialed %d (want 2), lab %d (want 2), st %d (want 1)", d.count(tb), d.count(lab), d.count(st))
	}
	if findService(third, st) != nil || findService(third, tb).Title != "TensorBoard — runs2/" {
		t.Errorf("third scan: %+v", third)
	}
	ex.set(fakeProcListing(recLab, recTB2, recST), nil)
	if _, err := s.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if d.count(st) != 2 {
		t.Errorf("streamlit came back: dialed %d times, want 2 (vanished listeners are forgotten)", d.count(st))
	}
}

func TestScannerConcurrencyLimit(t *testing.T) {
	checkGoroutines(t)
	for _, limit := range []int{1, 2, 4} {
		t.Run("", func(t *testing.T) {
			var recs []string
			slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(100 * time.Millisecond)
				io.WriteString(w, "<title>slow</title>")
			})
			for i := 0; i < 9; i++ {
				port := serve(t, slow)
				recs = append(recs, procRecords(port, 100+i, uint64(7000+i), "python3", "/tmp", "python3 slow.py"))
			}
			ex := &fakeExecer{}
			ex.set(fakeProcListing(recs...), nil)
			d := newTestDialer()
			s := NewScanner(ex, d, Options{Concurrency: limit, ProbeTimeout: 5 * time.Second})
			svcs, err := s.Scan(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(svcs) != 9 || d.total() != 9 {
				t.Fatalf("%d services, %d dials; want 9 and 9", len(svcs), d.total())
			}
			if p := d.peak(); p > limit || p < 1 {
				t.Errorf("%d probes ran at once; the limit is %d", p, limit)
			}
			for _, sv := range svcs {
				if sv.Kind != KindHTTP || sv.Title != "slow" {
					t.Errorf("service %d: %v %q", sv.Port, sv.Kind, sv.Title)
				}
			}
		})
	}
}

func TestScannerDefaultConcurrency(t *testing.T) {
	checkGoroutines(t)
	release := make(chan struct{})
	var recs []string
	for i := 0; i < 8; i++ {
		port := rawServer(t, func(c net.Conn) {
			<-release
			io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\n<title>x</title>")
		})
		recs = append(recs, procRecords(port, 200+i, uint64(8000+i), "x", "/", "x"))
	}
	ex := &fakeExecer{}
	ex.set(fakeProcListing(recs...), nil)
	d := newTestDialer()
	s := NewScanner(ex, d, Options{})
	time.AfterFunc(300*time.Millisecond, func() { close(release) })
	if _, err := s.Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := d.peak(); p != 4 {
		t.Errorf("%d probes at once, want the default 4 (8 servers held their answers)", p)
	}
}

func TestScannerErrors(t *testing.T) {
	checkGoroutines(t)
	port := serve(t, streamlitMimic(&requestLog{}))
	good := fakeProcListing(procRecords(port, 4444, 41003, "streamlit", "/srv", "streamlit run app.py"))
	ex := &fakeExecer{}
	d := newTestDialer()
	s := NewScanner(ex, d, Options{})
	ctx := context.Background()

	ex.set(good, nil)
	if _, err := s.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Source() != SourceProc {
		t.Errorf("source = %v", s.Source())
	}

	boom := errors.New("ssh: session closed")
	ex.set("", boom)
	if _, err := s.Scan(ctx); !errors.Is(err, boom) {
		t.Errorf("exec failure: err = %v, want it wrapped", err)
	}
	ex.set("Unmatched '''.\n", nil)
	if _, err := s.Scan(ctx); !errors.Is(err, ErrBadOutput) {
		t.Errorf("csh output: err = %v, want ErrBadOutput", err)
	}
	// Non-zero exit but a full listing (a noisy shell): the listing is used.
	ex.set(good, errors.New("exit status 1"))
	svcs, err := s.Scan(ctx)
	if err != nil || len(svcs) != 1 {
		t.Errorf("listing with an exec error: %v, %v", svcs, err)
	}
	// What was learned survived the failed scans.
	if d.count(port) != 1 {
		t.Errorf("dialed %d times; failed scans must keep the cache", d.count(port))
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Scan(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled scan: err = %v", err)
	}
}

func TestScannerUnreachableIsRetried(t *testing.T) {
	checkGoroutines(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // listed, but nothing answers (it went away between listing and probe)
	ex := &fakeExecer{}
	ex.set(fakeProcListing(procRecords(port, 9, 9, "jupyter-lab", "/home/alice/nb", "jupyter-lab")), nil)
	d := newTestDialer()
	s := NewScanner(ex, d, Options{})
	for i := 1; i <= 2; i++ {
		svcs, err := s.Scan(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(svcs) != 1 || svcs[0].Probe.Protocol != ProtoNone || svcs[0].Probe.Error == "" || svcs[0].Kind != KindJupyterLab {
			t.Fatalf("scan %d: %+v", i, svcs)
		}
		if d.count(port) != i {
			t.Errorf("scan %d: dialed %d times; a failed connect is not remembered", i, d.count(port))
		}
	}
}

func TestScannerSkip(t *testing.T) {
	checkGoroutines(t)
	a := serve(t, streamlitMimic(&requestLog{}))
	b := serve(t, streamlitMimic(&requestLog{}))
	ex := &fakeExecer{}
	ex.set(fakeProcListing(procRecords(a, 1, 1, "streamlit", "/", "streamlit run a.py"), procRecords(b, 2, 2, "porthole", "/", "/usr/bin/porthole agent")), nil)
	d := newTestDialer()
	s := NewScanner(ex, d, Options{Skip: func(s Service) bool { return s.Process != nil && s.Process.Name == "porthole" }})
	svcs, err := s.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 1 || svcs[0].Port != a || d.count(b) != 0 {
		t.Errorf("skip: services %v, port %d dialed %d times", servicePorts(svcs), b, d.count(b))
	}
}

// fakeClock is a settable clock for a Scanner's token cache.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestScannerJupyterCache: a token the last Scan verified costs no round
// trip; a new pid on the port, an unknown port or an old listing cost one.
func TestScannerJupyterCache(t *testing.T) {
	const port = 8888
	lab := func(pid int) string {
		return procRecords(port, pid, uint64(41000+pid), "jupyter-lab", "/home/alice", "jupyter-lab")
	}
	ex := &fakeExecer{}
	d := newTestDialer()
	d.refuseHosts["127.0.0.1"] = true // the fake listeners are not there to probe
	s := NewScanner(ex, d, Options{TokenMaxAge: time.Minute})
	clock := &fakeClock{t: time.Unix(1741083667, 0)}
	s.now = clock.now
	ctx := context.Background()
	execs := func() int {
		ex.mu.Lock()
		defer ex.mu.Unlock()
		return len(ex.cmds)
	}
	step := 0
	check := func(wantToken string, wantFound bool, wantExecs int) {
		t.Helper()
		step++
		js, ok, err := s.Jupyter(ctx, port)
		if err != nil || ok != wantFound || js.Token != wantToken || execs() != wantExecs {
			t.Errorf("step %d: Jupyter = %v, %v, %v (token %q) after %d execs; want found %v, token %q, %d execs",
				step, js, ok, err, js.Token, execs(), wantFound, wantToken, wantExecs)
		}
	}

	// Before any Scan: one listing.
	ex.set(fakeProcListing(lab(4242), jrec("jpserver-4242.json", jfile(4242, port, "tok-4242"))), nil)
	check("tok-4242", true, 1)
	check("tok-4242", true, 1) // that listing is remembered

	// A Scan lists; the lookup after it is free.
	if _, err := s.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	check("tok-4242", true, 2)

	// The server restarted under a new pid; its old file remains, the new
	// one is not written yet: the next Scan drops the entry and the lookup
	// lists again (and finds nothing: the old file is stale).
	ex.set(fakeProcListing(lab(4300), jrec("jpserver-4242.json", jfile(4242, port, "tok-4242"))), nil)
	if _, err := s.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	check("", false, 4)

	// The new server's file appears: the next Scan verifies it.
	ex.set(fakeProcListing(lab(4300), jrec("jpserver-4242.json", jfile(4242, port, "tok-4242")), jrec("jpserver-4300.json", jfile(4300, port, "tok-4300"))), nil)
	if _, err := s.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	check("tok-4300", true, 5)

	// An old listing is not trusted: list again.
	clock.add(2 * time.Minute)
	check("tok-4300", true, 6)
	check("tok-4300", true, 6)

	// A failed listing is an error, not a stale answer.
	clock.add(2 * time.Minute)
	ex.set("", errors.New("ssh: disconnected"))
	if js, ok, err := s.Jupyter(ctx, port); err == nil || ok || js.Token != "" {
		t.Errorf("failed listing: %v, %v, %v", js, ok, err)
	}
	if _, ok, err := s.Jupyter(ctx, 0); ok || err != nil {
		t.Errorf("port 0: %v, %v", ok, err)
	}
}

// TestScannerDialHost (issue 15): where a port no Scan has seen is dialed,
// from one listing without probes: ::1 for an app bound only to IPv6
// loopback, the host's own address for one bound only to it, 127.0.0.1
// for the usual cases; nothing for a port nobody listens on.
func TestScannerDialHost(t *testing.T) {
	rec := func(addr string, port, pid int, inode uint64) string {
		a := netip.MustParseAddr(addr)
		fam := 4
		if a.Is6() {
			fam = 6
		}
		return fmt.Sprintf("L %d %s 1000 %d\nF %d %d\nP %d\t1000\tapp\t/home/alice\tapp\n", fam, procHex(a, port), inode, pid, inode, pid)
	}
	ex := &fakeExecer{}
	ex.set(fakeProcListing(rec("::1", 5000, 11, 501), rec("192.0.2.10", 5001, 12, 502), rec("0.0.0.0", 5002, 13, 503), rec("127.0.0.1", 5003, 14, 504)), nil)
	d := newTestDialer()
	s := NewScanner(ex, d, Options{})
	for _, c := range []struct {
		port int
		want string
		ok   bool
	}{{5000, "::1", true}, {5001, "192.0.2.10", true}, {5002, "127.0.0.1", true}, {5003, "127.0.0.1", true}, {5004, "", false}} {
		h, ok, err := s.DialHost(context.Background(), c.port)
		if err != nil || ok != c.ok || h != c.want {
			t.Errorf("DialHost(%d) = %q, %v, %v; want %q, %v", c.port, h, ok, err, c.want, c.ok)
		}
	}
	if d.total() != 0 {
		t.Errorf("DialHost probed %d times; it only lists", d.total())
	}
	ex.set("", errors.New("ssh: session closed"))
	if _, _, err := s.DialHost(context.Background(), 5000); err == nil || !strings.Contains(err.Error(), "port 5000") {
		t.Errorf("a failed listing: %v; want an error naming the port", err)
	}
}
