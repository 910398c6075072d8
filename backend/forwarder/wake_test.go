package forwarder

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

// fakeClock is a WakeClock whose wall and monotonic readings move separately.
type fakeClock struct {
	mu   sync.Mutex
	wall time.Time
	mono time.Duration
}

func (c *fakeClock) Wall() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall
}

func (c *fakeClock) Mono() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

// advance moves the wall clock by wall and the monotonic clock by mono.
func (c *fakeClock) advance(wall, mono time.Duration) {
	c.mu.Lock()
	c.wall = c.wall.Add(wall)
	c.mono += mono
	c.mu.Unlock()
}

type suspectRecorder struct {
	mu      sync.Mutex
	reasons []string
}

func (r *suspectRecorder) MarkSuspect(reason string) {
	r.mu.Lock()
	r.reasons = append(r.reasons, reason)
	r.mu.Unlock()
}

func (r *suspectRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reasons)
}

func TestWakeDetectorCheck(t *testing.T) {
	cases := []struct {
		name       string
		wall, mono time.Duration
		wake       bool
	}{
		{"normal tick", 2 * time.Second, 2 * time.Second, false},
		{"late tick under load", 9 * time.Second, 9 * time.Second, false},
		{"small drift", 2*time.Second + 500*time.Millisecond, 2 * time.Second, false},
		{"clock set back", -time.Hour, 2 * time.Second, false},
		{"slept ten minutes", 10 * time.Minute, 2 * time.Second, true},
		{"slept just over threshold", 6*time.Second + time.Millisecond, 2 * time.Second, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{wall: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
			var woke []string
			w := NewWakeDetector(WakeOptions{Clock: clk, NoDBus: true, Threshold: 4 * time.Second, OnWake: func(r string) { woke = append(woke, r) }})
			rec := &suspectRecorder{}
			w.Register(rec)
			if w.Check() {
				t.Fatal("the first Check reported a wake")
			}
			clk.advance(tc.wall, tc.mono)
			if got := w.Check(); got != tc.wake {
				t.Fatalf("Check() = %v, want %v", got, tc.wake)
			}
			want := 0
			if tc.wake {
				want = 1
			}
			if rec.count() != want || len(woke) != want || w.Wakes() != uint64(want) {
				t.Fatalf("suspect marks %d, OnWake calls %d, Wakes() %d; want %d each", rec.count(), len(woke), w.Wakes(), want)
			}
		})
	}
}

func TestWakeMarksSessionsSuspect(t *testing.T) {
	srv := newServer(t, nil)
	web := testrig.NewWebApp(t)
	h, p := hostPort(t, web.Addr())
	clk := &fakeClock{wall: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	w := NewWakeDetector(WakeOptions{Clock: clk, NoDBus: true})
	s := newSession(t, srv.Addr(), clientConfig(srv), SessionOptions{Pool: PoolOptions{Disabled: true}})
	other := &suspectRecorder{}
	unregister := w.Register(s)
	defer unregister()
	unregisterOther := w.Register(other)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := s.Dial(ctx, h, p)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	w.Check()
	clk.advance(30*time.Minute, 2*time.Second) // the lid was closed
	if !w.Check() {
		t.Fatal("a 30 min wall-clock jump was not detected as a wake")
	}
	if st := s.State(); st.State != StateSuspect {
		t.Fatalf("session state after wake = %+v, want suspect", st)
	}
	if other.count() != 1 {
		t.Fatalf("second registered session marked %d times, want 1", other.count())
	}
	before := srv.Stats().Keepalives
	c, err = s.Dial(ctx, h, p)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if got := srv.Stats().Keepalives; got != before+1 {
		t.Fatalf("keepalives %d → %d; a suspect session must ping before use", before, got)
	}
	if st := s.State().State; st != StateReady {
		t.Fatalf("state after a good ping = %v, want ready", st)
	}
	unregisterOther()
	clk.advance(time.Hour, time.Second)
	w.Check()
	if other.count() != 1 {
		t.Fatal("an unregistered session was still marked")
	}
}

func TestWakeDetectorStartClose(t *testing.T) {
	baseline := runtime.NumGoroutine()
	w := NewWakeDetector(WakeOptions{Interval: 10 * time.Millisecond}) // real clock, D-Bus if present
	w.Start()
	w.Start() // idempotent
	time.Sleep(50 * time.Millisecond)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Wakes() != 0 {
		t.Fatalf("%d wakes detected in 50ms of normal running", w.Wakes())
	}
	settleGoroutines(t, baseline)
}
