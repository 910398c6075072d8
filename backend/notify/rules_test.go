package notify

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/porthole-app/porthole/backend/apperr"
)

var rangeCases = []struct {
	in   string
	want string // canonical; "" with bad: refused
	bad  bool
}{
	{"", "", false},
	{"   ", "", false},
	{"8080", "8080", false},
	{"8000-8100", "8000-8100", false},
	{"9000, 8000-8100", "8000-8100, 9000", false},
	{"8000-8100,8050-8200 8201", "8000-8201", false},
	{"1-65535", "1-65535", false},
	{"7,7,7", "7", false},
	{"0", "", true},
	{"65536", "", true},
	{"9000-8000", "", true},
	{"80-", "", true},
	{"-80", "", true},
	{"http", "", true},
	{"+80", "", true},
	{"1e3", "", true},
	{"80-90-100", "", true},
	{"000080", "", true},
	{strings.Repeat("1,", 65), "", true},
}

func TestParsePortRanges(t *testing.T) {
	for _, c := range rangeCases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParsePortRanges(c.in)
			if c.bad {
				if !errors.Is(err, apperr.ErrBadInput) {
					t.Fatalf("ParsePortRanges(%q) = %v, %v; want a bad-input error", c.in, got, err)
				}
				return
			}
			if err != nil || got.String() != c.want {
				t.Fatalf("ParsePortRanges(%q) = %q, %v; want %q", c.in, got.String(), err, c.want)
			}
		})
	}
}

func FuzzParsePortRanges(f *testing.F) {
	for _, c := range rangeCases {
		f.Add(c.in, 8080)
	}
	f.Fuzz(func(t *testing.T, s string, port int) {
		rs, err := ParsePortRanges(s)
		if err != nil {
			return
		}
		// Sorted, merged, in 1–65535.
		for i, r := range rs {
			if r.From < 1 || r.To > 65535 || r.From > r.To || (i > 0 && r.From <= rs[i-1].To+1) {
				t.Fatalf("ParsePortRanges(%q) = %v: not sorted, merged ranges of ports", s, rs)
			}
		}
		// The canonical text reads back the same.
		again, err := ParsePortRanges(rs.String())
		if err != nil || again.String() != rs.String() {
			t.Fatalf("%q → %q → %q, %v", s, rs.String(), again.String(), err)
		}
		// Contains agrees with the ranges.
		in := false
		for _, r := range rs {
			in = in || (port >= r.From && port <= r.To)
		}
		if rs.Contains(port) != in {
			t.Fatalf("%v.Contains(%d) = %v", rs, port, !in)
		}
	})
}

func TestDecide(t *testing.T) {
	r := ServerRules{IgnorePorts: "9000-9100, 3000", Ports: map[int]AppAttributes{
		9050:  {OnAppear: OnAppearNotify},
		40000: {OnAppear: OnAppearOpenTab},
		8080:  {OnAppear: OnAppearIgnore},
		8081:  {Label: "only a label"},
	}}
	for _, c := range []struct {
		rules ServerRules
		port  int
		want  OnAppear
	}{
		{r, 8888, OnAppearNotify},
		{r, 32767, OnAppearNotify},
		{r, 32768, OnAppearIgnore}, // ephemeral
		{r, 60999, OnAppearIgnore},
		{r, 9000, OnAppearIgnore}, // ignored range
		{r, 9100, OnAppearIgnore},
		{r, 9101, OnAppearNotify},
		{r, 3000, OnAppearIgnore},
		{r, 9050, OnAppearNotify},   // the port's own rule wins over the range
		{r, 40000, OnAppearOpenTab}, // and over the ephemeral rule
		{r, 8080, OnAppearIgnore},
		{r, 8081, OnAppearNotify},
		{ServerRules{NotifyEphemeral: true}, 50000, OnAppearNotify},
		{ServerRules{}, 50000, OnAppearIgnore},
	} {
		if got := c.rules.Decide(c.port); got != c.want {
			t.Errorf("Decide(%d) with %+v = %v; want %v", c.port, c.rules, got, c.want)
		}
	}
}

func TestRulesFileRoundTripAndBrokenFileKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app-rules.json")
	f, err := OpenRules(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.SetPort("s1", 6006, AppAttributes{Label: "Board", OnAppear: OnAppearOpenTab}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.SetIgnore("s1", "9000-9100,8000", true); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, %v; want 0600", fi.Mode(), err)
	}
	f2, err := OpenRules(path)
	if err != nil {
		t.Fatal(err)
	}
	got := f2.Server("s1")
	if got.Ports[6006] != (AppAttributes{Label: "Board", OnAppear: OnAppearOpenTab}) || got.IgnorePorts != "8000, 9000-9100" || !got.NotifyEphemeral {
		t.Fatalf("reopened: %+v", got)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"onAppear": "open-tab"`) {
		t.Fatalf("the file names actions by name:\n%s", b)
	}
	// The zero attributes remove a port; Forget removes a server.
	if _, err := f2.SetPort("s1", 6006, AppAttributes{}); err != nil || len(f2.Server("s1").Ports) != 0 {
		t.Fatalf("clear: %+v, %v", f2.Server("s1"), err)
	}
	if err := f2.Forget("s1"); err != nil || f2.Server("s1").IgnorePorts != "" {
		t.Fatalf("forget: %+v, %v", f2.Server("s1"), err)
	}

	for _, broken := range []string{`{"servers": {"s1": {"ignorePorts": "9000-8000"}}}`, `{"servers": {"s1": {"ports": {"80": {"onAppear": "explode"}}}}}`, "{oops"} {
		if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
			t.Fatal(err)
		}
		f3, err := OpenRules(path)
		if !errors.Is(err, ErrRulesBroken) {
			t.Fatalf("%s: err = %v; want ErrRulesBroken", broken, err)
		}
		if _, err := f3.SetPort("s1", 80, AppAttributes{Label: "x"}); !errors.Is(err, ErrRulesBroken) {
			t.Fatalf("a broken file was written over: %v", err)
		}
		if b, _ := os.ReadFile(path); string(b) != broken {
			t.Fatalf("the broken file changed: %s", b)
		}
	}
}
