package apps

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/apperr"
)

func TestTabsPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "porthole", "tabs.json")
	a := OpenTabs(path, nil)
	if got := a.Get(); got == nil || len(got) != 0 {
		t.Fatalf("GetTabs without a file = %#v, want []", got)
	}
	tabs := []SavedTab{
		{ID: "t1", ServerID: "k3xq7", Port: 8888, Path: "/lab?token=abc&x=1", Title: "Jupyter Lab — ~/p",
			LocalURL: "http://127.0.0.2:8888/lab?token=abc&x=1#cell", RemoteURL: "http://localhost:8888/lab?x=1"},
		{ID: "t2", ServerID: "local", Port: 6006, Path: "/", Title: "TensorBoard", LocalURL: "http://127.0.0.1:6006/", RemoteURL: "http://localhost:6006/"},
	}
	if err := a.Save(tabs); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("tabs.json: %v, mode %v; want 0600", err, fi.Mode())
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("abc")) {
		t.Errorf("the Jupyter token was written to disk: %s", raw)
	}
	// A restart reads them back.
	b := OpenTabs(path, nil)
	got := b.Get()
	if len(got) != 2 || got[0].Path != "/lab?x=1" || got[0].LocalURL != "http://127.0.0.2:8888/lab?x=1#cell" || got[1] != tabs[1] {
		t.Fatalf("after a restart: %+v", got)
	}
	if err := b.Save([]SavedTab{}); err != nil {
		t.Fatal(err)
	}
	if got := OpenTabs(path, nil).Get(); len(got) != 0 {
		t.Fatalf("after saving none: %+v", got)
	}
}

func TestTabsRefuseBadTabs(t *testing.T) {
	a := OpenTabs(filepath.Join(t.TempDir(), "tabs.json"), nil)
	for _, tc := range []struct {
		name string
		tabs []SavedTab
		want string
	}{
		{"no id", []SavedTab{{ServerID: "s", Port: 1}}, "id is empty"},
		{"duplicate id", []SavedTab{{ID: "a", ServerID: "s", Port: 1}, {ID: "a", ServerID: "s", Port: 2}}, "used twice"},
		{"no server", []SavedTab{{ID: "a", Port: 1}}, "serverId is empty"},
		{"bad port", []SavedTab{{ID: "a", ServerID: "s", Port: 70000}}, "not a TCP port"},
		{"huge title", []SavedTab{{ID: "a", ServerID: "s", Port: 1, Title: strings.Repeat("x", maxTabField+1)}}, "longer than"},
		{"too many", make([]SavedTab, maxSavedTabs+1), "more than"},
		{"bad remote host", []SavedTab{{ID: "a", ServerID: "s", Port: 1, RemoteHost: "a b"}}, "remoteHost"},
		{"remote host with a user", []SavedTab{{ID: "a", ServerID: "s", Port: 1, RemoteHost: "u@h"}}, "remoteHost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := a.Save(tc.tabs)
			if !errors.Is(err, apperr.ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SaveTabs = %v; want a 400 saying %q", err, tc.want)
			}
		})
	}
}

// TestTabsRemoteHost: a tab opened through its server keeps the remote
// host; a file written before tabs had one still reads (empty: the
// server's localhost), and a tab without one writes no remoteHost.
func TestTabsRemoteHost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tabs.json")
	old := `[{"id":"t1","serverId":"s","port":8888,"path":"/","title":"x","localUrl":"http://127.0.0.2:8888/","remoteUrl":"http://localhost:8888/"}]`
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	a := OpenTabs(path, nil)
	got := a.Get()
	if len(got) != 1 || got[0].RemoteHost != "" {
		t.Fatalf("an older tabs.json: %+v", got)
	}
	through := SavedTab{ID: "t2", ServerID: "s", Port: 3000, Path: "/d/x", Title: "grafana.internal:3000",
		LocalURL: "http://127.0.0.2:20417/d/x", RemoteURL: "http://grafana.internal:3000/d/x", RemoteHost: "grafana.internal"}
	if err := a.Save(append(got, through)); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if n := bytes.Count(raw, []byte(`"remoteHost"`)); n != 1 {
		t.Errorf("remoteHost written %d times, want once (only the tab through the server): %s", n, raw)
	}
	if got := OpenTabs(path, nil).Get(); len(got) != 2 || got[1] != through || got[0].RemoteHost != "" {
		t.Fatalf("after a restart: %+v", got)
	}
}

// TestTabsBrokenFileKept: a tabs.json that does not parse is reported, not
// restored, and kept (copied aside) before a new one is written.
func TestTabsBrokenFileKept(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tabs.json")
	broken := "[{\"id\": \"t1\", \"serverId\": \"s\",\n  \"port\": \"eighty\"}]\n"
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer // OpenTabs logs from this goroutine only
	f := OpenTabs(path, slog.New(slog.NewTextHandler(&logs, nil)))
	f.now = func() time.Time { return time.Date(2025, 11, 21, 10, 40, 0, 0, time.UTC) }
	a := f
	if got := a.Get(); len(got) != 0 {
		t.Fatalf("GetTabs of a broken file = %+v", got)
	}
	if !strings.Contains(logs.String(), "tabs.json") || !strings.Contains(logs.String(), "line 2") {
		t.Errorf("the log does not name the file and line: %s", logs.String())
	}
	if b, _ := os.ReadFile(path); string(b) != broken {
		t.Fatal("opening changed the broken file")
	}
	if err := a.Save([]SavedTab{{ID: "n", ServerID: "s", Port: 80}}); err != nil {
		t.Fatal(err)
	}
	backup := path + ".broken-20251121T104000Z"
	if b, err := os.ReadFile(backup); err != nil || string(b) != broken {
		t.Fatalf("backup %s = %q, %v; want the broken file as it was", backup, b, err)
	}
	if got := OpenTabs(path, nil).Get(); len(got) != 1 || got[0].ID != "n" {
		t.Fatalf("the new file: %+v", got)
	}
}

func TestTabsUnreadableFileNotReplaced(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	path := filepath.Join(t.TempDir(), "tabs.json")
	if err := os.WriteFile(path, []byte("[]"), 0o000); err != nil {
		t.Fatal(err)
	}
	a := OpenTabs(path, nil)
	if err := a.Save(nil); !errors.Is(err, apperr.ErrConflict) {
		t.Fatalf("SaveTabs over an unreadable file = %v, want a 409", err)
	}
}

var stripTokenCases = []struct{ in, want string }{
	{"/lab?token=abc", "/lab"},
	{"/lab?x=1&token=abc&y=2", "/lab?x=1&y=2"},
	{"/lab?token=abc#frag", "/lab#frag"},
	{"http://127.0.0.2:8888/tree?tok%65n=abc", "http://127.0.0.2:8888/tree"},
	{"/lab?tokens=1", "/lab?tokens=1"},
	{"/lab", "/lab"},
	{"", ""},
	{"/a?&&", "/a"},
	{"?#?", "#?"}, // fuzz: a '?' in the fragment is not a query (stripToken was not idempotent)
	{"/lab#/x?token=abc", "/lab#/x?token=abc"},
}

func TestStripToken(t *testing.T) {
	for _, tc := range stripTokenCases {
		if got := stripToken(tc.in); got != tc.want {
			t.Errorf("stripToken(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzStripToken(f *testing.F) {
	for _, tc := range stripTokenCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := stripToken(s)
		if hasQueryParam(out, "token") && !strings.Contains(out, "#") {
			t.Fatalf("stripToken(%q) = %q still has a token", s, out)
		}
		if stripToken(out) != out {
			t.Fatalf("stripToken is not idempotent on %q: %q", s, out)
		}
	})
}

// FuzzOpenTabs: whatever tabs.json holds, opening it never panics; a file
// that opens holds only valid tabs, which save (without tokens) and read back
// the same; a file that does not open is kept as it was, and backed up
// before the next save replaces it. Seeded from the table tests' files.
func FuzzOpenTabs(f *testing.F) {
	f.Add([]byte(`[{"id":"t1","serverId":"s","port":8888,"path":"/lab","title":"x","localUrl":"http://127.0.0.2:8888/lab","remoteUrl":"http://localhost:8888/lab"}]`))
	f.Add([]byte(`[{"id":"t1","serverId":"k3xq7","port":8888,"path":"/lab?token=abc&x=1","title":"Jupyter Lab — ~/p","localUrl":"http://127.0.0.2:8888/lab?token=abc&x=1#cell","remoteUrl":"http://localhost:8888/lab?x=1"},` +
		`{"id":"t2","serverId":"local","port":6006,"path":"/","title":"TensorBoard","localUrl":"http://127.0.0.1:6006/","remoteUrl":"http://localhost:6006/"}]`))
	f.Add([]byte("[{\"id\": \"t1\", \"serverId\": \"s\",\n  \"port\": \"eighty\"}]\n"))
	f.Add([]byte(`[{"id":"a","serverId":"s","port":1},{"id":"a","serverId":"s","port":2}]`))
	f.Add([]byte(`[{"id":"a","serverId":"s","port":70000}]`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[{"id":"a","serverId":"s","port":1,"extra":1}]`))
	for _, tc := range stripTokenCases {
		f.Add([]byte(`[{"id":"a","serverId":"s","port":1,"path":` + strconv.Quote(tc.in) + `}]`))
	}
	now := func() time.Time { return time.Date(2025, 11, 21, 10, 40, 0, 0, time.UTC) }
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "tabs.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		tf := OpenTabs(path, nil)
		tf.now = now
		got := tf.Get()
		if err := validateTabs(got); err != nil {
			t.Fatalf("opened invalid tabs: %v", err)
		}
		if tf.broken == nil && tf.raw != nil {
			t.Fatal("a good file kept raw bytes")
		}
		if tf.broken != nil {
			if len(got) != 0 {
				t.Fatalf("a broken file restored %d tabs", len(got))
			}
			if strings.ContainsAny(tf.broken.Error(), "\r\n") || !strings.Contains(tf.broken.Error(), path) {
				t.Fatalf("the error is not one line naming the file: %q", tf.broken)
			}
			if b, _ := os.ReadFile(path); !bytes.Equal(b, data) {
				t.Fatal("opening changed the broken file")
			}
			if err := tf.Save([]SavedTab{{ID: "n", ServerID: "s", Port: 80}}); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(path + ".broken-20251121T104000Z"); err != nil || !bytes.Equal(b, data) {
				t.Fatalf("backup = %q, %v; want the broken file as it was", b, err)
			}
			return
		}
		if err := tf.Save(got); err != nil {
			t.Fatalf("saving the tabs just read: %v", err)
		}
		saved := tf.Get()
		for _, st := range saved {
			for _, u := range []string{st.Path, st.LocalURL, st.RemoteURL} {
				if hasQueryParam(u, "token") && !strings.Contains(u, "#") {
					t.Fatalf("a token was saved: %q", u)
				}
			}
		}
		again := OpenTabs(path, nil)
		if again.broken != nil || !slices.Equal(again.Get(), saved) {
			t.Fatalf("round trip: %+v → %+v (%v)", saved, again.Get(), again.broken)
		}
	})
}
