package appview

import (
	"strconv"
	"sync"
	"time"

	"github.com/porthole-app/porthole/backend/ui"
)

// A page's alert/confirm/prompt (and HTTP authentication) is the shell's
// dialog, bound to its tab: the page waits for the answer, the rest of
// Porthole does not. A page that asks again and again (a loop of alerts)
// is offered to be silenced, as browsers do, after Flood's few in a short
// while; once silenced, its dialogs are answered "Cancel" at once until it
// loads again.

// Flood tells a page that asks too often. A dialog counts when it is
// answered, so the time a person takes to read one does not hide a loop.
type Flood struct {
	Window time.Duration // default 5 s
	Max    int           // the Max-th dialog within Window offers to stop them; default 3

	mu      sync.Mutex
	times   map[string][]time.Time // view → when its dialogs were answered
	stopped map[string]bool
}

func (f *Flood) window() time.Duration {
	if f.Window <= 0 {
		return 5 * time.Second
	}
	return f.Window
}

func (f *Flood) max() int {
	if f.Max <= 0 {
		return 3
	}
	return f.Max
}

// Opening reports whether a dialog view opens now is one of a flood
// (Max-1 or more answered within Window before it).
func (f *Flood) Opening(view string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.recentLocked(view, now)) >= f.max()-1
}

func (f *Flood) recentLocked(view string, now time.Time) []time.Time {
	ts := f.times[view]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) > f.window() {
		i++
	}
	ts = ts[i:]
	if f.times != nil {
		f.times[view] = ts
	}
	return ts
}

// Answered notes that view's dialog was answered at now.
func (f *Flood) Answered(view string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.times == nil {
		f.times = map[string][]time.Time{}
	}
	ts := append(f.recentLocked(view, now), now)
	if len(ts) > 16 {
		ts = ts[len(ts)-16:]
	}
	f.times[view] = ts
}

// Stop silences view until Reset.
func (f *Flood) Stop(view string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped == nil {
		f.stopped = map[string]bool{}
	}
	f.stopped[view] = true
}

// Stopped: view's dialogs are silenced.
func (f *Flood) Stopped(view string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stopped[view]
}

// Reset forgets view (it loaded a new page, or closed).
func (f *Flood) Reset(view string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.times, view)
	delete(f.stopped, view)
}

// Burst allows at most Max events per view within Window (windows a page
// opens: a loop of window.open opens a few, then nothing).
type Burst struct {
	Window time.Duration
	Max    int

	mu    sync.Mutex
	times map[string][]time.Time
}

// Allow reports whether view may have one more now (and counts it).
func (b *Burst) Allow(view string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.times == nil {
		b.times = map[string][]time.Time{}
	}
	ts := b.times[view]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) > b.Window {
		i++
	}
	ts = ts[i:]
	if len(ts) >= b.Max {
		b.times[view] = ts
		return false
	}
	b.times[view] = append(ts, now)
	return true
}

// Dialogs is the open page dialogs. Answer functions run on GTK's thread:
// the caller of Take runs them there; Open and DropView, which run there,
// call them directly.
type Dialogs struct {
	publish func(ui.PageDialogList) // must not block
	now     func() time.Time
	flood   Flood

	mu   sync.Mutex
	seq  int
	open []*openDialog
}

type openDialog struct {
	ui.PageDialog
	answer func(ui.PageDialogAnswer)
}

// NewDialogs makes the list; publish gets every change.
func NewDialogs(publish func(ui.PageDialogList)) *Dialogs {
	return &Dialogs{publish: publish, now: time.Now}
}

// Open shows d (for its ViewID) unless its page was silenced: then answer
// gets Cancel at once and Open reports false. It returns the dialog as
// listed (its ID, whether it is one of a flood).
func (ds *Dialogs) Open(d ui.PageDialog, answer func(ui.PageDialogAnswer)) (ui.PageDialog, bool) {
	if ds.flood.Stopped(d.ViewID) {
		answer(ui.PageDialogAnswer{})
		return d, false
	}
	d.Flood = d.Kind != ui.DialogAuth && ds.flood.Opening(d.ViewID, ds.now())
	ds.mu.Lock()
	ds.seq++
	d.ID = "pd-" + strconv.Itoa(ds.seq)
	ds.open = append(ds.open, &openDialog{PageDialog: d, answer: answer})
	ds.publishLocked()
	ds.mu.Unlock()
	return d, true
}

// Take removes dialog id and returns its answer function, for the caller
// to run on GTK's thread; a Stop silences the dialog's page.
func (ds *Dialogs) Take(id string, a ui.PageDialogAnswer) (func(ui.PageDialogAnswer), error) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for i, d := range ds.open {
		if d.ID != id {
			continue
		}
		ds.open = append(ds.open[:i], ds.open[i+1:]...)
		if d.Kind != ui.DialogAuth {
			ds.flood.Answered(d.ViewID, ds.now())
			if a.Stop {
				ds.flood.Stop(d.ViewID)
			}
		}
		ds.publishLocked()
		return d.answer, nil
	}
	return nil, ui.ErrUnknownDialog
}

// Stopped: view's page had its dialogs stopped.
func (ds *Dialogs) Stopped(view string) bool { return ds.flood.Stopped(view) }

// PageLoaded: view shows a new page; its dialogs may ask again.
func (ds *Dialogs) PageLoaded(view string) { ds.flood.Reset(view) }

// DropView cancels view's open dialogs (it closes) and forgets it; it runs
// on GTK's thread.
func (ds *Dialogs) DropView(view string) {
	ds.mu.Lock()
	var answers []func(ui.PageDialogAnswer)
	kept := ds.open[:0]
	for _, d := range ds.open {
		if d.ViewID == view {
			answers = append(answers, d.answer)
		} else {
			kept = append(kept, d)
		}
	}
	ds.open = kept
	if len(answers) > 0 {
		ds.publishLocked()
	}
	ds.mu.Unlock()
	ds.flood.Reset(view)
	for _, f := range answers {
		f(ui.PageDialogAnswer{})
	}
}

// List is the open dialogs, oldest first.
func (ds *Dialogs) List() ui.PageDialogList {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	return ds.listLocked()
}

func (ds *Dialogs) listLocked() ui.PageDialogList {
	out := ui.PageDialogList{Dialogs: make([]ui.PageDialog, 0, len(ds.open))}
	for _, d := range ds.open {
		out.Dialogs = append(out.Dialogs, d.PageDialog)
	}
	return out
}

func (ds *Dialogs) publishLocked() {
	if ds.publish != nil {
		ds.publish(ds.listLocked())
	}
}
