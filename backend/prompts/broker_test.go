package prompts

import (
	"testing"
	"time"
)

func TestFmtWait(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{2 * time.Minute, "2 minutes"}, {time.Minute, "1 minute"}, {90 * time.Second, "90 seconds"}, {1500 * time.Millisecond, "1.5s"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			if got := FmtWait(tt.d); got != tt.want {
				t.Fatalf("FmtWait(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

var hostKeyChoiceCases = []struct {
	in   string
	want HostKeyChoice
	ok   bool
}{
	{"reject", HostKeyReject, true},
	{"accept-once", HostKeyAcceptOnce, true},
	{"accept-always", HostKeyAcceptAlways, true},
	{"", 0, false},
	{"yes", 0, false},
	{"Accept-Once", 0, false},
}

func TestParseHostKeyChoice(t *testing.T) {
	for _, tt := range hostKeyChoiceCases {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseHostKeyChoice(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("parseHostKeyChoice(%q) = %v, %v", tt.in, got, err)
			}
			if tt.ok {
				b, _ := got.MarshalText()
				if string(b) != tt.in {
					t.Fatalf("round trip: %q", b)
				}
			}
		})
	}
}

func FuzzParseHostKeyChoice(f *testing.F) {
	for _, tt := range hostKeyChoiceCases {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseHostKeyChoice(s)
		if err != nil {
			if c != 0 {
				t.Fatalf("error with a value: %v", c)
			}
			return
		}
		b, _ := c.MarshalText()
		if string(b) != s {
			t.Fatalf("%q parsed to %v, which writes %q", s, c, b)
		}
	})
}
