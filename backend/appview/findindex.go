package appview

import "github.com/porthole-app/porthole/backend/ui"

// FindMax is how many matches a find in page counts; more are reported as
// FindMax+1 (the bar shows "1000+").
const FindMax = 1000

// FindReport is what WebKit's find controller said about a view's search.
type FindReport int

const (
	// FindFound: "found-text" (the selection moved to a match). Its count
	// is trusted only while none is known: it may be 1 for a next/previous.
	FindFound FindReport = iota
	// FindCounted: "counted-matches", the page's match count.
	FindCounted
	// FindFailed: "failed-to-find-text", no match.
	FindFailed
)

// FindIndex follows which of a view's find-in-page matches is the current
// one, as a browser's "3 of 12". WebKitGTK's find controller reports how
// many matches there are but not which one it selected, so the index is
// kept here: 1 on a new search text (tools.c clears the page's selection
// first, so WebKit's search starts at the top of the page), one on for
// next and one back for previous, wrapping at either end as WebKit does
// (WRAP_AROUND), and kept within the count when the page's count changes. Beyond FindMax matches
// the index is lost once it passes FindMax or wraps back to the last match
// (whose number is not counted): the bar then shows the count alone. Not
// safe for concurrent use (GTK's main thread owns it).
type FindIndex struct {
	text    string
	count   int // 0: none, or not known yet
	current int // 1-based; 0 while count is 0
	lost    bool
	failed  bool
}

// Start is a new search for text, from the top of the page.
func (f *FindIndex) Start(text string) { *f = FindIndex{text: text} }

// Follow is a report for text: for another text than the search's (a view
// whose state was dropped when its page changed), the search starts over.
func (f *FindIndex) Follow(text string) {
	if text != f.text {
		f.Start(text)
	}
}

// Step moves the current match for next and previous; other ops do nothing
// (FindStart is Start, FindClose is Reset).
func (f *FindIndex) Step(op ui.FindOp) {
	if f.count == 0 || f.lost {
		return
	}
	more := f.count > FindMax
	switch {
	case op == ui.FindNext && more:
		f.current++
		f.lost = f.current > FindMax
	case op == ui.FindNext:
		f.current = f.current%f.count + 1
	case op == ui.FindPrevious && more:
		f.current--
		f.lost = f.current < 1
	case op == ui.FindPrevious:
		f.current = (f.current+f.count-2)%f.count + 1
	}
}

// Report applies what the view said; n is its count (negative or beyond
// FindMax: more than FindMax).
func (f *FindIndex) Report(r FindReport, n int) {
	if n < 0 || n > FindMax {
		n = FindMax + 1
	}
	switch r {
	case FindFailed:
		f.count, f.current, f.lost, f.failed = 0, 0, false, true
		return
	case FindFound:
		if f.count > 0 {
			f.failed = false
			return
		}
	}
	f.failed = false
	f.count = n
	switch {
	case n == 0:
		f.current, f.lost = 0, false
	case f.current == 0:
		f.current = 1
	case f.current > n:
		f.current = n
	}
}

// Reset forgets the search (the bar closed, or the page changed).
func (f *FindIndex) Reset() { *f = FindIndex{} }

// Result is the search's state for the shell.
func (f *FindIndex) Result() ui.FindResult {
	r := ui.FindResult{Text: f.text, Matches: f.count, Current: f.current, Failed: f.failed}
	if f.lost {
		r.Current = 0
	}
	return r
}
