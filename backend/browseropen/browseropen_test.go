package browseropen

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkCases are Check's table (and the fuzz test's seeds).
var checkCases = []struct {
	raw string
	ok  bool
}{
	{"http://127.0.0.2:8888/lab", true},
	{"https://example.com/x?y=1#z", true},
	{"HTTP://example.com/", true},
	{"file:///etc/passwd", false},
	{"javascript:alert(1)", false},
	{"data:text/html,x", false},
	{"", false},
	{"/relative", false},
	{"http:///nohost", false},
	{"http://user:pw@example.com/", false},
	{"http:opaque", false},
}

func TestCheck(t *testing.T) {
	for _, tc := range checkCases {
		t.Run(tc.raw, func(t *testing.T) {
			u, err := Check(tc.raw)
			if tc.ok != (err == nil) {
				t.Fatalf("Check(%q) = %v, %v; want ok %v", tc.raw, u, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrNotWeb) {
				t.Fatalf("Check(%q) = %v, want ErrNotWeb", tc.raw, err)
			}
		})
	}
}

// TestOpenLaunchesOnlyWebURLs: Open runs the platform's opener (here a
// fake xdg-open) with the URL as it is, and refuses anything else without
// running it.
func TestOpenLaunchesOnlyWebURLs(t *testing.T) {
	bin := t.TempDir()
	rec := filepath.Join(t.TempDir(), "argv")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '" + rec + "'\n"
	for _, name := range []string{"xdg-open", "open"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)
	if err := Open("http://user:pw@example.com/"); !errors.Is(err, ErrNotWeb) {
		t.Fatalf("Open with user info = %v, want ErrNotWeb", err)
	}
	if err := Open("https://example.com/x?y=1"); err != nil {
		t.Skipf("no fake opener on this platform: %v", err)
	}
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "https://example.com/x?y=1" {
		t.Fatalf("the opener got %q", got)
	}
}

func FuzzCheck(f *testing.F) {
	for _, tc := range checkCases {
		f.Add(tc.raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := Check(raw)
		if err != nil {
			return
		}
		if u.User != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			t.Fatalf("Check accepted %q as %#v", raw, u)
		}
	})
}
