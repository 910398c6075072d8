package appview

import (
	"testing"

	"github.com/porthole-app/porthole/backend/ui"
)

// findStep is one thing that happens to a view's find: the shell's op (with
// text for a search), or the view's report (r with n).
type findStep struct {
	op     ui.FindOp
	text   string
	follow bool // a report's text (Follow), not the shell's search
	r      *FindReport
	n      int
}

func follow(text string) findStep { return findStep{text: text, follow: true} }

func search(text string) findStep         { return findStep{op: ui.FindStart, text: text} }
func step(op ui.FindOp) findStep          { return findStep{op: op} }
func report(r FindReport, n int) findStep { return findStep{r: &r, n: n} }

func repeat(s findStep, n int) []findStep {
	out := make([]findStep, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestFindIndex(t *testing.T) {
	next, prev := step(ui.FindNext), step(ui.FindPrevious)
	counted := func(n int) findStep { return report(FindCounted, n) }
	found := func(n int) findStep { return report(FindFound, n) }
	cases := []struct {
		name  string
		steps []findStep
		want  ui.FindResult
	}{
		{"nothing known yet", []findStep{search("a")}, ui.FindResult{Text: "a"}},
		{"a new search is the first match", []findStep{search("a"), counted(12)}, ui.FindResult{Text: "a", Matches: 12, Current: 1}},
		{"found-text before the count", []findStep{search("a"), found(12)}, ui.FindResult{Text: "a", Matches: 12, Current: 1}},
		{"next", []findStep{search("a"), counted(12), next}, ui.FindResult{Text: "a", Matches: 12, Current: 2}},
		{"next twice", []findStep{search("a"), counted(12), next, next}, ui.FindResult{Text: "a", Matches: 12, Current: 3}},
		{"next wraps to the first", []findStep{search("a"), counted(3), next, next, next}, ui.FindResult{Text: "a", Matches: 3, Current: 1}},
		{"previous from the first wraps to the last", []findStep{search("a"), counted(3), prev}, ui.FindResult{Text: "a", Matches: 3, Current: 3}},
		{"previous after next", []findStep{search("a"), counted(5), next, next, prev}, ui.FindResult{Text: "a", Matches: 5, Current: 2}},
		{"one match stays 1", []findStep{search("a"), counted(1), next, prev, next}, ui.FindResult{Text: "a", Matches: 1, Current: 1}},
		{"found-text of 1 after next does not cut the count", []findStep{search("a"), counted(12), next, found(1)}, ui.FindResult{Text: "a", Matches: 12, Current: 2}},
		{"a new text starts over", []findStep{search("a"), counted(12), next, next, search("ab"), counted(4)}, ui.FindResult{Text: "ab", Matches: 4, Current: 1}},
		{"the same text searched again starts over", []findStep{search("a"), counted(12), next, search("a"), counted(12)}, ui.FindResult{Text: "a", Matches: 12, Current: 1}},
		{"a report for the same text keeps the index", []findStep{search("a"), counted(12), next, follow("a"), found(12)}, ui.FindResult{Text: "a", Matches: 12, Current: 2}},
		{"a report after the state was dropped", []findStep{step(ui.FindClose), follow("a"), counted(4)}, ui.FindResult{Text: "a", Matches: 4, Current: 1}},
		{"the count shrinks under the index", []findStep{search("a"), counted(5), prev, counted(2)}, ui.FindResult{Text: "a", Matches: 2, Current: 2}},
		{"the count grows: the index stays", []findStep{search("a"), counted(3), next, counted(9)}, ui.FindResult{Text: "a", Matches: 9, Current: 2}},
		{"the count drops to none", []findStep{search("a"), counted(3), next, counted(0)}, ui.FindResult{Text: "a"}},
		{"matches again after none", []findStep{search("a"), counted(3), counted(0), counted(2)}, ui.FindResult{Text: "a", Matches: 2, Current: 1}},
		{"not found", []findStep{search("zz"), report(FindFailed, 0)}, ui.FindResult{Text: "zz", Failed: true}},
		{"next with no matches does nothing", []findStep{search("zz"), report(FindFailed, 0), next, prev}, ui.FindResult{Text: "zz", Failed: true}},
		{"a count after a failure clears it", []findStep{search("a"), report(FindFailed, 0), counted(2)}, ui.FindResult{Text: "a", Matches: 2, Current: 1}},
		{"steps before the count are not counted", []findStep{search("a"), next, next, counted(4)}, ui.FindResult{Text: "a", Matches: 4, Current: 1}},
		{"more than FindMax (WebKit's G_MAXUINT)", []findStep{search("e"), counted(-1), next}, ui.FindResult{Text: "e", Matches: FindMax + 1, Current: 2}},
		{"more than FindMax: back from the first is not counted", []findStep{search("e"), counted(-1), prev, next, counted(-1)}, ui.FindResult{Text: "e", Matches: FindMax + 1}},
		{"more than FindMax: the last counted", append([]findStep{search("e"), counted(FindMax + 5)}, repeat(next, FindMax-1)...), ui.FindResult{Text: "e", Matches: FindMax + 1, Current: FindMax}},
		{"more than FindMax: past the last counted", append([]findStep{search("e"), counted(FindMax + 5)}, repeat(next, FindMax)...), ui.FindResult{Text: "e", Matches: FindMax + 1}},
		{"exactly FindMax wraps", append([]findStep{search("e"), counted(FindMax)}, repeat(next, FindMax)...), ui.FindResult{Text: "e", Matches: FindMax, Current: 1}},
		{"more than FindMax: a new text counts again", []findStep{search("e"), counted(-1), prev, search("ee"), counted(3)}, ui.FindResult{Text: "ee", Matches: 3, Current: 1}},
		{"closed", []findStep{search("a"), counted(3), next, step(ui.FindClose)}, ui.FindResult{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var f FindIndex
			for _, s := range c.steps {
				switch {
				case s.r != nil:
					f.Report(*s.r, s.n)
				case s.follow:
					f.Follow(s.text)
				case s.op == ui.FindStart:
					f.Start(s.text)
				case s.op == ui.FindClose:
					f.Reset()
				default:
					f.Step(s.op)
				}
			}
			if got := f.Result(); got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}
