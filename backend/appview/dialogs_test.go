package appview

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/ui"
)

func TestDialogFloodOffersStopThenSilences(t *testing.T) {
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	var last ui.PageDialogList
	ds := NewDialogs(func(l ui.PageDialogList) { mu.Lock(); last = l; mu.Unlock() })
	ds.now = func() time.Time { return now }
	var answers []ui.PageDialogAnswer
	answer := func(a ui.PageDialogAnswer) { answers = append(answers, a) }
	open := func(view string) ui.PageDialog {
		t.Helper()
		if _, shown := ds.Open(ui.PageDialog{ViewID: view, Kind: ui.DialogAlert, Message: "hi"}, answer); !shown {
			t.Fatal("a dialog was silenced")
		}
		l := ds.List().Dialogs
		return l[len(l)-1]
	}
	// A page looping alert(): the first two are plain, the third offers to stop.
	for i, wantFlood := range []bool{false, false, true} {
		d := open("t1")
		if d.Flood != wantFlood {
			t.Fatalf("dialog %d: Flood %v", i+1, d.Flood)
		}
		now = now.Add(time.Second) // the person reads it
		f, err := ds.Take(d.ID, ui.PageDialogAnswer{OK: true, Stop: d.Flood})
		if err != nil {
			t.Fatal(err)
		}
		f(ui.PageDialogAnswer{OK: true})
	}
	// Stopped: the next one is answered Cancel at once and never listed.
	if _, shown := ds.Open(ui.PageDialog{ViewID: "t1", Kind: ui.DialogConfirm}, answer); shown {
		t.Fatal("a silenced page's dialog was shown")
	}
	if a := answers[len(answers)-1]; a.OK || len(ds.List().Dialogs) != 0 {
		t.Fatalf("silenced answer %+v, list %+v", a, ds.List())
	}
	// Another tab is not affected; a new page in t1 may ask again.
	if d := open("t2"); d.Flood {
		t.Fatal("another tab's first dialog is a flood")
	}
	ds.PageLoaded("t1")
	if d := open("t1"); d.Flood {
		t.Fatal("a reloaded page's first dialog is a flood")
	}
	// Slow answers are not a flood.
	ds2 := NewDialogs(nil)
	ds2.now = func() time.Time { return now }
	for range 5 {
		ds2.Open(ui.PageDialog{ViewID: "v", Kind: ui.DialogAlert}, answer)
		d := ds2.List().Dialogs[0]
		if d.Flood {
			t.Fatal("dialogs 10 s apart called a flood")
		}
		now = now.Add(10 * time.Second)
		if _, err := ds2.Take(d.ID, ui.PageDialogAnswer{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ds.Take("pd-999", ui.PageDialogAnswer{}); !errors.Is(err, ui.ErrUnknownDialog) {
		t.Fatalf("unknown dialog: %v", err)
	}
	// A closing tab cancels its dialogs.
	n := len(answers)
	ds.DropView("t2")
	if len(answers) != n+1 || answers[n].OK {
		t.Fatal("DropView did not cancel the tab's dialog")
	}
	for _, d := range ds.List().Dialogs {
		if d.ViewID == "t2" {
			t.Fatal("a dropped tab's dialog is still listed")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(last.Dialogs) != len(ds.List().Dialogs) {
		t.Fatal("the published list differs from the list")
	}
}

func TestBurstLimitsWindows(t *testing.T) {
	b := Burst{Window: 5 * time.Second, Max: 3}
	now := time.Unix(0, 0)
	got := 0
	for range 100 {
		if b.Allow("t1", now) {
			got++
		}
	}
	if got != 3 || !b.Allow("t2", now) {
		t.Fatalf("allowed %d of a loop of 100", got)
	}
	if !b.Allow("t1", now.Add(6*time.Second)) {
		t.Fatal("still refused after the window")
	}
}

func TestZoomIsKeptPerApp(t *testing.T) {
	p := filepath.Join(t.TempDir(), "appzoom.json")
	z, err := OpenZoom(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := "http://127.0.0.2:8888", "http://127.0.0.2:8889"
	for _, step := range []struct {
		op   ui.ZoomOp
		want float64
	}{{ui.ZoomIn, 1.1}, {ui.ZoomIn, 1.25}, {ui.ZoomOut, 1.1}} {
		if got, err := z.Step(a, step.op); err != nil || got != step.want {
			t.Fatalf("Step(%s) = %v, %v; want %v", step.op, got, err, step.want)
		}
	}
	if _, err := z.Step(b, ui.ZoomOut); err != nil {
		t.Fatal(err)
	}
	z2, err := OpenZoom(p, nil)
	if err != nil || z2.Get(a) != 1.1 || z2.Get(b) != 0.9 || z2.Get("http://127.0.0.3:1") != 1 {
		t.Fatalf("after reopening: %v %v %v", z2.Get(a), z2.Get(b), err)
	}
	if got, _ := z2.Step(a, ui.ZoomReset); got != 1 {
		t.Fatalf("reset: %v", got)
	}
	if b, _ := os.ReadFile(p); strings.Contains(string(b), "8888") {
		t.Fatalf("a reset level is still saved: %s", b)
	}
	for range 30 {
		z2.Step(a, ui.ZoomIn)
	}
	if z2.Get(a) != 3 {
		t.Fatalf("zoom past the top: %v", z2.Get(a))
	}
	// A damaged file: reported, kept aside, zoom at 100 %.
	if err := os.WriteFile(p, []byte("{oops"), 0o600); err != nil {
		t.Fatal(err)
	}
	z3, err := OpenZoom(p, nil)
	if !errors.Is(err, ErrZoomFile) || !strings.Contains(err.Error(), "a copy is kept at") || z3.Get(b) != 1 {
		t.Fatalf("damaged file: %v", err)
	}
	if m, _ := filepath.Glob(p + ".corrupt-*"); len(m) != 1 {
		t.Fatalf("no copy of the damaged file: %v", m)
	}
}
