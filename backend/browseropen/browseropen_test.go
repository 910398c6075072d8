package browseropen

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBrowser records every argv target it was given.
type fakeBrowser struct {
	mu      sync.Mutex
	targets []string
	err     error
}

func (f *fakeBrowser) launch(target string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.targets = append(f.targets, target)
	return f.err
}

func (f *fakeBrowser) last(t *testing.T) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.targets) == 0 {
		t.Fatal("the browser was not started")
	}
	return f.targets[len(f.targets)-1]
}

// pagePath turns the file:// target back into the page's path.
func pagePath(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "file" || u.RawQuery != "" || u.Fragment != "" {
		t.Fatalf("browser target %q is not a plain file:// URL", target)
	}
	return u.Path
}

func waitGone(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still there", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSecretsNeverInArgv: a URL with a token reaches the browser only
// through a private page; the argv target names just that page's path.
func TestSecretsNeverInArgv(t *testing.T) {
	const secret = "c0ffee5ecret"
	for i, raw := range []string{
		"http://127.0.0.2:8888/lab?token=" + secret,
		"http://127.0.0.2:8888/lab/tree/x.ipynb?a=1&token=" + secret + "&b=<x>",
		"https://example.com/#token=" + secret,
		"http://user:" + secret + "@127.0.0.2:8888/",
	} {
		t.Run(strconv.Itoa(i), func(t *testing.T) { // (not the URL: the temp dir is named after the test)
			base := t.TempDir()
			fb := &fakeBrowser{}
			o := New(Options{Launch: fb.launch, Dir: base, TTL: 100 * time.Millisecond})
			t.Cleanup(o.Close)
			if err := o.Open(raw); err != nil {
				t.Fatal(err)
			}
			target := fb.last(t)
			if strings.Contains(target, secret) {
				t.Fatalf("the browser's argv holds the secret: %q", target)
			}
			page := pagePath(t, target)
			dir := filepath.Dir(page)
			if filepath.Dir(dir) != base {
				t.Errorf("page %s is not in a directory of its own under %s", page, base)
			}
			st, err := os.Lstat(dir)
			if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
				t.Fatalf("page dir %s: %v, %v; want a 0700 directory", dir, st.Mode(), err)
			}
			fst, err := os.Lstat(page)
			if err != nil || !fst.Mode().IsRegular() || fst.Mode().Perm() != 0o600 {
				t.Fatalf("page %s: %v, %v; want a 0600 file", page, fst.Mode(), err)
			}
			b, err := os.ReadFile(page)
			if err != nil {
				t.Fatal(err)
			}
			html := string(b)
			if !strings.Contains(html, secret) || !strings.Contains(html, "location.replace(") || !strings.Contains(html, `http-equiv="refresh"`) {
				t.Fatalf("page does not redirect to the URL:\n%s", html)
			}
			if strings.Contains(html, "<x>") {
				t.Errorf("page does not escape the URL:\n%s", html)
			}
			waitGone(t, dir) // removed once its time is up
		})
	}
}

// TestPageRedirectsToTheURL: the page's script goes to exactly the URL.
func TestPageRedirectsToTheURL(t *testing.T) {
	fb := &fakeBrowser{}
	o := New(Options{Launch: fb.launch, Dir: t.TempDir()})
	t.Cleanup(o.Close)
	raw := "http://127.0.0.2:8888/lab?token=abc&x=1"
	if err := o.Open(raw); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pagePath(t, fb.last(t)))
	if err != nil {
		t.Fatal(err)
	}
	if want := `location.replace("http://127.0.0.2:8888/lab?token=abc\u0026x=1")`; !strings.Contains(string(b), want) {
		t.Fatalf("page lacks %s:\n%s", want, b)
	}
	if want := `content="0;url=http://127.0.0.2:8888/lab?token=abc&amp;x=1"`; !strings.Contains(string(b), want) {
		t.Fatalf("page lacks %s:\n%s", want, b)
	}
}

func TestPlainURLsGoStraightAndOthersAreRefused(t *testing.T) {
	fb := &fakeBrowser{}
	base := t.TempDir()
	o := New(Options{Launch: fb.launch, Dir: base})
	t.Cleanup(o.Close)
	if err := o.Open("http://127.0.0.2:8888/lab"); err != nil || fb.last(t) != "http://127.0.0.2:8888/lab" {
		t.Fatalf("plain URL: %v, browser got %v", err, fb.targets)
	}
	for _, raw := range []string{"file:///etc/passwd", "javascript:alert(1)", "", "/relative", "http:///nohost", "data:text/html,x"} {
		if err := o.Open(raw); !errors.Is(err, ErrNotWeb) {
			t.Errorf("Open(%q) = %v, want ErrNotWeb", raw, err)
		}
	}
	if len(fb.targets) != 1 {
		t.Errorf("browser started for refused URLs: %v", fb.targets)
	}
	if ents, _ := os.ReadDir(base); len(ents) != 0 {
		t.Errorf("pages written for plain or refused URLs: %v", ents)
	}
}

// TestCloseRemovesPages: quitting deletes pages before their time, and a
// page whose browser did not start is deleted at once.
func TestCloseRemovesPages(t *testing.T) {
	fb := &fakeBrowser{}
	base := t.TempDir()
	o := New(Options{Launch: fb.launch, Dir: base, TTL: time.Hour})
	if err := o.Open("http://127.0.0.2:8888/?token=x"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(pagePath(t, fb.last(t)))
	o.Close()
	waitGone(t, dir)
	if err := o.Open("http://127.0.0.2:8888/?token=x"); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after Close = %v, want ErrClosed", err)
	}
	o.Close() // twice is fine

	fail := &fakeBrowser{err: errors.New("no browser")}
	o2 := New(Options{Launch: fail.launch, Dir: base, TTL: time.Hour})
	t.Cleanup(o2.Close)
	if err := o2.Open("http://127.0.0.2:8888/?token=x"); err == nil {
		t.Fatal("a failed launch was not reported")
	}
	waitGone(t, filepath.Dir(pagePath(t, fail.last(t))))
}

func FuzzOpenKeepsQueryOffArgv(f *testing.F) {
	for _, s := range []string{"http://127.0.0.2:8888/lab?token=abc", "https://h/#x", "http://u:p@h/", "http://h/p", "file:///x"} {
		f.Add(s)
	}
	base := f.TempDir()
	f.Fuzz(func(t *testing.T, raw string) {
		fb := &fakeBrowser{}
		o := New(Options{Launch: fb.launch, Dir: base})
		defer o.Close()
		if err := o.Open(raw); err != nil {
			return
		}
		u, _ := url.Parse(raw)
		target := fb.last(t)
		if NeedsPage(u) {
			pagePath(t, target)
		} else if target != u.String() {
			t.Fatalf("plain %q went to the browser as %q", raw, target)
		}
	})
}
