package appview

import (
	"reflect"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/ui"
)

func spec(visible string, ids ...string) ui.AppViewSpec {
	s := ui.AppViewSpec{Visible: visible}
	for _, id := range ids {
		s.Views = append(s.Views, ui.AppViewItem{ID: id, URL: "http://127.0.0.2:8888/"})
	}
	return s
}

func all(string) bool { return true }

// TestSleeperDiscardsHiddenViews: a view hidden for the delay is due, the
// visible one never, and a hidden view's wait starts when it is hidden
// (not when it was opened).
func TestSleeperDiscardsHiddenViews(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newSleeper(30 * time.Minute)
	s.Saw(spec("a", "a", "b"), t0)
	if d := s.Due(t0.Add(29*time.Minute), all); d != nil {
		t.Fatalf("due before the delay: %v", d)
	}
	if d := s.Due(t0.Add(30*time.Minute), all); !reflect.DeepEqual(d, []string{"b"}) {
		t.Fatalf("due at the delay: %v; want [b] (a shows)", d)
	}
	// a stops showing at 40 min: its wait starts then.
	s.Saw(spec("b", "a", "b"), t0.Add(40*time.Minute))
	if d := s.Due(t0.Add(69*time.Minute), all); d != nil {
		t.Fatalf("a hidden 29 min, b showing: due %v; want none", d)
	}
	if d := s.Due(t0.Add(70*time.Minute), all); !reflect.DeepEqual(d, []string{"a"}) {
		t.Fatalf("due %v; want [a]", d)
	}
	// Nothing shows (a dialog covers the views): b's wait starts.
	s.Saw(spec("", "a", "b"), t0.Add(80*time.Minute))
	if d := s.Due(t0.Add(110*time.Minute), all); !reflect.DeepEqual(d, []string{"a", "b"}) {
		t.Fatalf("due %v; want [a b]", d)
	}
	// Views already discarded (not live) are not due again.
	if d := s.Due(t0.Add(110*time.Minute), func(id string) bool { return id != "a" }); !reflect.DeepEqual(d, []string{"b"}) {
		t.Fatalf("due %v; want [b]", d)
	}
}

// TestSleeperSettings: 0 never discards; a closed tab is forgotten; a new
// view's wait starts when it appears; a woken view waits again.
func TestSleeperSettings(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newSleeper(0)
	s.Saw(spec("a", "a", "b"), t0)
	if d := s.Due(t0.Add(1000*time.Hour), all); d != nil {
		t.Fatalf("off: due %v", d)
	}
	s.SetAfter(time.Minute)
	if d := s.Due(t0.Add(time.Minute), all); !reflect.DeepEqual(d, []string{"b"}) {
		t.Fatalf("due %v; want [b]", d)
	}
	s.Saw(spec("a", "a", "c"), t0.Add(2*time.Minute)) // b closed, c opened in the background
	if d := s.Due(t0.Add(2*time.Minute+59*time.Second), all); d != nil {
		t.Fatalf("c just opened: due %v", d)
	}
	if _, ok := s.seen["b"]; ok {
		t.Fatal("a closed tab is still tracked")
	}
	s.Woke("c", t0.Add(3*time.Minute))
	if d := s.Due(t0.Add(3*time.Minute+30*time.Second), all); d != nil {
		t.Fatalf("c woke 30 s ago: due %v", d)
	}
	s.SetAfter(-time.Second)
	if d := s.Due(t0.Add(100*time.Hour), all); d != nil {
		t.Fatalf("negative delay: due %v", d)
	}
}

func TestSleeperTick(t *testing.T) {
	for _, c := range []struct{ after, want time.Duration }{
		{0, time.Minute}, {2 * time.Second, time.Second}, {20 * time.Second, 5 * time.Second}, {30 * time.Minute, time.Minute},
	} {
		if got := newSleeper(c.after).Tick(); got != c.want {
			t.Errorf("Tick(%v) = %v; want %v", c.after, got, c.want)
		}
	}
}

func TestParseScroll(t *testing.T) {
	for _, c := range []struct {
		in   string
		x, y int
		ok   bool
	}{
		{`[0,0]`, 0, 0, true},
		{`[12,3400]`, 12, 3400, true},
		{`[1.5,2]`, 0, 0, false},
		{`[-1,2]`, 0, 0, false},
		{`[1,2,3]`, 0, 0, false},
		{`[1e300,2]`, 0, 0, false},
		{`"x"`, 0, 0, false},
		{``, 0, 0, false},
		{`null`, 0, 0, false},
	} {
		x, y, err := parseScroll(c.in)
		if (err == nil) != c.ok || x != c.x || y != c.y {
			t.Errorf("parseScroll(%q) = %d, %d, %v; want %d, %d, ok %v", c.in, x, y, err, c.x, c.y, c.ok)
		}
	}
}

func FuzzParseScroll(f *testing.F) {
	f.Add(`[1,2]`)
	f.Add(`[1e9,0]`)
	f.Fuzz(func(t *testing.T, s string) {
		x, y, err := parseScroll(s)
		if err != nil {
			return
		}
		if x < 0 || y < 0 || x > maxScroll || y > maxScroll {
			t.Fatalf("parseScroll(%q) = %d, %d", s, x, y)
		}
		if restoreScript(x, y) == "" && (x > 0 || y > 0) {
			t.Fatalf("no restore script for %d, %d", x, y)
		}
	})
}

// TestKeptStateRestores: a woken view loads the page it showed and scrolls
// back, unless the shell gave the tab another URL since.
func TestKeptStateRestores(t *testing.T) {
	k := keptTab{URL: "http://127.0.0.2:8888/tree/work", Title: "work", ScrollY: 640, Shell: "http://127.0.0.2:8888/"}
	if u, scroll := wakeURL(k, "http://127.0.0.2:8888/"); u != k.URL || !scroll {
		t.Fatalf("wakeURL = %q, %v; want the kept page, scrolled", u, scroll)
	}
	if u, scroll := wakeURL(k, "http://127.0.0.2:8888/lab"); u != "http://127.0.0.2:8888/lab" || scroll {
		t.Fatalf("the shell moved the tab: wakeURL = %q, %v", u, scroll)
	}
	if u, _ := wakeURL(keptTab{Shell: "http://127.0.0.2:8888/"}, "http://127.0.0.2:8888/"); u != "http://127.0.0.2:8888/" {
		t.Fatalf("no kept page: wakeURL = %q", u)
	}
	if got := restoreScript(0, 640); got != "window.scrollTo(0, 640)" {
		t.Fatalf("restoreScript = %q", got)
	}
	if got := restoreScript(0, 0); got != "" {
		t.Fatalf("restoreScript at the top = %q", got)
	}
}
