package webui

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var launchCodeRE = regexp.MustCompile(`name="code" value="([A-Za-z0-9_-]+)"`)

// launchCode reads the code from a launch page.
func launchCode(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the launch page: %v", err)
	}
	m := launchCodeRE.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no code in the launch page:\n%s", b)
	}
	return string(m[1])
}

// postLaunch sends what the launch page's form sends (from a file: page).
func postLaunch(t *testing.T, ts *testServer, code string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", ts.base+"/launch", strings.NewReader(url.Values{"code": {code}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "null")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	noRedirect := &http.Client{Timeout: waitLong, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// publicRuntimeDir is an XDG_RUNTIME_DIR that every user may enter, so that
// only the launch page's own modes keep others out.
func publicRuntimeDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "porthole-test-runtime-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_RUNTIME_DIR", dir)
	return dir
}

func TestLaunchFileIsPrivate(t *testing.T) {
	runtime := publicRuntimeDir(t)
	ts := startServer(t, Options{})
	path, err := ts.s.LaunchFile(ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	if filepath.Dir(dir) != runtime {
		t.Fatalf("launch page %s is not in XDG_RUNTIME_DIR %s", path, runtime)
	}
	fst, err := os.Lstat(path)
	if err != nil || !fst.Mode().IsRegular() || fst.Mode().Perm() != 0o600 {
		t.Fatalf("launch page %s: %v, %v; want a 0600 file", path, fst.Mode(), err)
	}
	dst, err := os.Lstat(dir)
	if err != nil || !dst.IsDir() || dst.Mode().Perm() != 0o700 {
		t.Fatalf("launch directory %s: %v, %v; want a 0700 directory", dir, dst.Mode(), err)
	}
	b, _ := os.ReadFile(path)
	page := string(b)
	if !strings.Contains(page, `action="http://`+ts.addr+`/launch"`) || !strings.Contains(page, `method="post"`) || strings.Contains(page, ts.s.Token()) {
		t.Fatalf("launch page does not post to serve, or carries the token:\n%s", page)
	}

	t.Run("another user cannot read it", func(t *testing.T) {
		other := otherUser(t)
		control := filepath.Join(runtime, "public")
		if err := os.WriteFile(control, []byte("readable\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := runAs(t, other, "cat "+control); err != nil || out != "readable\n" {
			t.Fatalf("another user cannot read even a public file (%v: %q); the test proves nothing", err, out)
		}
		code := launchCode(t, path)
		out, err := runAs(t, other, "cat "+path+"; ls "+dir)
		if err == nil || strings.Contains(out, code) || !strings.Contains(out, "Permission denied") {
			t.Fatalf("another user read the launch page: %v: %q", err, out)
		}
	})
}

func TestLaunchCodeWorksOnceByPOST(t *testing.T) {
	publicRuntimeDir(t)
	ts := startServer(t, Options{})
	path, err := ts.s.LaunchFile(ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	code := launchCode(t, path)

	// GET never redeems: not /launch/CODE (the old link), not /launch?code=.
	for _, p := range []string{"/launch/" + code, "/launch?code=" + code} {
		st, h, body := ts.do(t, "GET", p, "")
		if st != http.StatusMethodNotAllowed || h.Get("Location") != "" || strings.Contains(body, ts.s.Token()) {
			t.Fatalf("GET %s: %d %v %s; want 405 without the token", p, st, h, body)
		}
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("a GET deleted the launch page: %v", err)
	}

	resp := postLaunch(t, ts, code)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/#token="+ts.s.Token() {
		t.Fatalf("first POST: %d Location=%q; want 303 to the tokenised UI", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the launch page's directory is still there after use: %v", err)
	}
	if resp := postLaunch(t, ts, code); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("second POST: %d, want 403", resp.StatusCode)
	}
	if resp := postLaunch(t, ts, "made-up-code"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("made-up code: %d, want 403", resp.StatusCode)
	}
}

func TestLaunchFileExpires(t *testing.T) {
	publicRuntimeDir(t)
	ts := startServer(t, Options{})
	ts.s.launch.mu.Lock()
	ts.s.launch.ttl = 50 * time.Millisecond
	ts.s.launch.mu.Unlock()
	path, err := ts.s.LaunchFile(ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	code := launchCode(t, path)
	waitFor(t, "the expired launch page to be deleted", func() bool {
		_, err := os.Stat(filepath.Dir(path))
		return errors.Is(err, os.ErrNotExist)
	})
	if resp := postLaunch(t, ts, code); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("expired code: %d, want 403", resp.StatusCode)
	}
}

func TestLaunchFilesDeletedWhenServeEnds(t *testing.T) {
	publicRuntimeDir(t)
	s, err := New(Options{Bound: &fakeApp{}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	path, err := s.LaunchFile(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Serve did not return")
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the launch page outlived Serve: %v", err)
	}
}
