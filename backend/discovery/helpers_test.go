package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testDialer dials on this machine and counts: dials per port, and how many
// probe connections are open at once.
type testDialer struct {
	mu          sync.Mutex
	dials       map[int]int
	open        int
	maxOpen     int
	refuseHosts map[string]bool
	// noDeadlines makes conns ignore deadlines, like the forwarder's SSH
	// channel conns.
	noDeadlines bool
}

func newTestDialer() *testDialer {
	return &testDialer{dials: map[int]int{}, refuseHosts: map[string]bool{}}
}

func (d *testDialer) Dial(ctx context.Context, host string, port int) (net.Conn, error) {
	d.mu.Lock()
	d.dials[port]++
	refuse := d.refuseHosts[host]
	d.mu.Unlock()
	if refuse {
		return nil, errors.New("test dialer: refused")
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.open++
	d.maxOpen = max(d.maxOpen, d.open)
	d.mu.Unlock()
	cc := &countedConn{Conn: c, d: d}
	if d.noDeadlines {
		return noDeadlineConn{cc}, nil
	}
	return cc, nil
}

// noDeadlineConn accepts and ignores deadlines.
type noDeadlineConn struct{ net.Conn }

func (noDeadlineConn) SetDeadline(time.Time) error      { return nil }
func (noDeadlineConn) SetReadDeadline(time.Time) error  { return nil }
func (noDeadlineConn) SetWriteDeadline(time.Time) error { return nil }

func (d *testDialer) total() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, v := range d.dials {
		n += v
	}
	return n
}

func (d *testDialer) count(port int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials[port]
}

func (d *testDialer) peak() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.maxOpen
}

type countedConn struct {
	net.Conn
	d    *testDialer
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.d.mu.Lock()
		c.d.open--
		c.d.mu.Unlock()
	})
	return c.Conn.Close()
}

// fakeExecer answers every Exec with out/err and records the commands.
type fakeExecer struct {
	mu   sync.Mutex
	out  []byte
	err  error
	cmds []string
}

func (f *fakeExecer) set(out string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.out, f.err = []byte(out), err
}

func (f *fakeExecer) Exec(ctx context.Context, cmd string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, cmd)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return f.out, f.err
}

// shellExecer runs commands on this machine like an SSH exec would, through
// /bin/sh -c; a leading "sh " of the command is replaced by shell, so that
// the script itself runs under dash or busybox sh.
type shellExecer struct {
	shell string   // e.g. "sh", "dash", "busybox sh"
	env   []string // extra environment
}

func (e shellExecer) Exec(ctx context.Context, cmd string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(cmd, "sh "); ok {
		cmd = e.shell + " " + rest
	}
	c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
	c.Env = append(os.Environ(), e.env...)
	out, err := c.Output()
	if err != nil {
		return out, fmt.Errorf("%s: %w", e.shell, err)
	}
	return out, nil
}

// shells returns the POSIX shells to run the scripts under: sh, and dash
// and busybox sh when installed.
func shells() []string {
	s := []string{"sh"}
	if _, err := exec.LookPath("dash"); err == nil {
		s = append(s, "dash")
	}
	if _, err := exec.LookPath("busybox"); err == nil {
		s = append(s, "busybox sh")
	}
	return s
}

// checkGoroutines fails the test if goroutines started during it are still
// running (within 5 s) after its other cleanups. Call it first.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines leaked:\n%s", n-before, buf)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// serve starts an httptest server on 127.0.0.1 and returns its port.
func serve(t *testing.T, h http.Handler) int {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

// rawServer accepts connections on 127.0.0.1 and runs handle on each; it
// stops (closing open connections) at cleanup.
func rawServer(t *testing.T, handle func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// procRecords writes the L, F and P records of a proc listing for one
// listener on 127.0.0.1.
func procRecords(port, pid int, inode uint64, comm, cwd, cmdline string) string {
	return fmt.Sprintf("L 4 %s 1000 %d\nF %d %d\nP %d\t1000\t%s\t%s\t%s\n",
		procHex(netip.MustParseAddr("127.0.0.1"), port), inode, pid, inode, pid, comm, cwd, cmdline)
}

// fakeProcListing is a proc listing of the given records.
func fakeProcListing(records ...string) string {
	return "porthole-sockets v1\nT 1741083667\nU 1000 alice\nH /home/alice\nM x86_64\nS proc\nK 1741000000 100\n" +
		strings.Join(records, "") + "E\n"
}
