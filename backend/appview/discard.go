package appview

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/porthole-app/porthole/backend/ui"
)

// Tabs that cost little memory: an app view that has not shown for a while
// (settings.Settings.TabDiscardSec, 30 min by default) is discarded, as
// browsers do: its web view is destroyed (and with the last view of its app
// the app's WebKit web process ends), while Porthole keeps its URL, title and
// scroll position. When its tab shows again, a new view loads the kept URL
// and scrolls back where the page allows.

// discardAnswerWait is how long a discard waits for the page to tell its
// scroll position (a page busy in a loop never answers): then it goes without.
const discardAnswerWait = 5 * time.Second

// keptTab is what a discarded view keeps.
type keptTab struct {
	URL     string // the page the view showed (its endpoint's URL)
	Title   string
	ScrollX int
	ScrollY int
	Shell   string // the URL the shell had given the view (AppViewItem.URL)
}

// sleeper decides which views to discard: those not visible for at least
// after. It holds no views, only times; the caller owns the clock, so tests
// inject it. Not safe for concurrent use (the Linux host uses it on GTK's
// main thread).
type sleeper struct {
	after time.Duration // 0: never discard
	seen  map[string]time.Time
	shown string // the view that shows now ("" none)
}

func newSleeper(after time.Duration) *sleeper {
	return &sleeper{after: after, seen: map[string]time.Time{}}
}

// SetAfter changes the delay (0 turns discarding off).
func (s *sleeper) SetAfter(d time.Duration) { s.after = max(d, 0) }

// Saw records a spec the shell sent at now: the visible view is in use
// now; a view the sleeper has not seen yet starts its wait now; views no
// longer in the spec are forgotten. A view that stops showing starts its
// wait when it is hidden.
func (s *sleeper) Saw(spec ui.AppViewSpec, now time.Time) {
	want := make(map[string]bool, len(spec.Views))
	for _, v := range spec.Views {
		want[v.ID] = true
		if _, ok := s.seen[v.ID]; !ok {
			s.seen[v.ID] = now
		}
	}
	if s.shown != "" && s.shown != spec.Visible {
		if _, ok := s.seen[s.shown]; ok {
			s.seen[s.shown] = now // hidden now: its wait starts
		}
	}
	if spec.Visible != "" && want[spec.Visible] {
		s.seen[spec.Visible] = now
	}
	s.shown = spec.Visible
	for id := range s.seen {
		if !want[id] {
			delete(s.seen, id)
		}
	}
}

// Woke records that view id was made again at now (it showed).
func (s *sleeper) Woke(id string, now time.Time) {
	if _, ok := s.seen[id]; ok {
		s.seen[id] = now
	}
}

// Due is the views to discard at now, in id order: every view hidden for
// at least the delay, for which live says it still has a web view. The
// view that shows is never due.
func (s *sleeper) Due(now time.Time, live func(id string) bool) []string {
	if s.after <= 0 {
		return nil
	}
	var out []string
	for id, t := range s.seen {
		if id == s.shown || now.Sub(t) < s.after || !live(id) {
			continue
		}
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Tick is how often the host asks Due: often enough that a view is
// discarded within a quarter of the delay of being due, at most every
// second and at least every minute.
func (s *sleeper) Tick() time.Duration {
	if s.after <= 0 {
		return time.Minute
	}
	return min(max(s.after/4, time.Second), time.Minute)
}

// scrollScript asks a page where it is scrolled to; parseScroll reads its
// answer.
const scrollScript = `JSON.stringify([Math.round(window.scrollX||0), Math.round(window.scrollY||0)])`

// maxScroll bounds a scroll position taken from a page.
const maxScroll = 10_000_000

// parseScroll reads scrollScript's answer: two whole, non-negative numbers
// below maxScroll. Anything else is an error (the page's own window.scrollX
// may have been replaced by anything).
func parseScroll(s string) (x, y int, err error) {
	var v []float64
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return 0, 0, fmt.Errorf("scroll position %q: %w", s, err)
	}
	if len(v) != 2 {
		return 0, 0, fmt.Errorf("scroll position %q: want two numbers", s)
	}
	for _, f := range v {
		if math.IsNaN(f) || f < 0 || f > maxScroll || f != math.Trunc(f) {
			return 0, 0, fmt.Errorf("scroll position %q: out of range", s)
		}
	}
	return int(v[0]), int(v[1]), nil
}

// restoreScript scrolls a page back to (x, y); empty when there is nowhere
// to go (the top).
func restoreScript(x, y int) string {
	if x <= 0 && y <= 0 {
		return ""
	}
	return fmt.Sprintf("window.scrollTo(%d, %d)", min(x, maxScroll), min(y, maxScroll))
}

// wakeURL is what a woken view loads: the kept page, unless the shell has
// since given the tab another URL (then that).
func wakeURL(k keptTab, shell string) (url string, restoreScroll bool) {
	if shell != k.Shell || k.URL == "" {
		return shell, false
	}
	return k.URL, true
}
