package testrig

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func httpGet(t *testing.T, c *http.Client, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("GET %s: X-Frame-Options = %q, want DENY", url, got)
	}
	return resp, body
}

// compareWriter checks written bytes against a reference reader.
type compareWriter struct {
	ref      io.Reader
	n        int64
	mismatch int64 // offset of the first mismatch + 1, or 0
}

func (c *compareWriter) Write(p []byte) (int, error) {
	want := make([]byte, len(p))
	if _, err := io.ReadFull(c.ref, want); err != nil {
		return 0, err
	}
	if c.mismatch == 0 && !bytes.Equal(p, want) {
		for i := range p {
			if p[i] != want[i] {
				c.mismatch = c.n + int64(i) + 1
				break
			}
		}
	}
	c.n += int64(len(p))
	return len(p), nil
}

func TestWebAppRoutes(t *testing.T) {
	checkNoGoroutineLeak(t)
	app := NewWebApp(t)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	t.Run("index references 50 resources", func(t *testing.T) {
		resp, body := httpGet(t, client, app.URL()+"/")
		if resp.StatusCode != 200 || !strings.Contains(string(body), "<title>"+WebAppTitle+"</title>") {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
		for i := range WebAppResources {
			if !strings.Contains(string(body), fmt.Sprintf("\"/res/%d\"", i)) {
				t.Errorf("index lacks /res/%d", i)
			}
		}
	})
	t.Run("resources are small and distinct", func(t *testing.T) {
		seen := map[string]int{}
		for i := range WebAppResources {
			resp, body := httpGet(t, client, fmt.Sprintf("%s/res/%d", app.URL(), i))
			if resp.StatusCode != 200 || len(body) < 1024 || len(body) > 4096 {
				t.Fatalf("/res/%d: status %d, %d bytes", i, resp.StatusCode, len(body))
			}
			if j, dup := seen[string(body)]; dup {
				t.Fatalf("/res/%d has the same body as /res/%d", i, j)
			}
			seen[string(body)] = i
			if _, want := WebAppResource(i); !bytes.Equal(body, want) {
				t.Fatalf("/res/%d differs from WebAppResource", i)
			}
		}
	})
	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantBody   string
	}{
		{"small", "/small", 200, "small\n"},
		{"resource out of range", "/res/50", 404, ""},
		{"resource not a number", "/res/x", 404, ""},
		{"unknown path", "/nope", 404, ""},
		{"big bad size", "/big?size=-1", 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := httpGet(t, client, app.URL()+tc.path)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.wantBody != "" && string(body) != tc.wantBody {
				t.Fatalf("body %q, want %q", body, tc.wantBody)
			}
		})
	}
	t.Run("big with size", func(t *testing.T) {
		resp, body := httpGet(t, client, app.URL()+"/big?size=1000003")
		want, _ := io.ReadAll(WebAppBigBody(1000003))
		if resp.ContentLength != 1000003 || !bytes.Equal(body, want) {
			t.Fatalf("Content-Length %d, %d bytes, equal=%v", resp.ContentLength, len(body), bytes.Equal(body, want))
		}
	})
	t.Run("big default 100 MiB", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, app.URL()+"/big", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.ContentLength != WebAppBigSize {
			t.Fatalf("Content-Length %d", resp.ContentLength)
		}
		cw := &compareWriter{ref: WebAppBigBody(WebAppBigSize)}
		if _, err := io.Copy(cw, resp.Body); err != nil {
			t.Fatal(err)
		}
		if cw.n != WebAppBigSize || cw.mismatch != 0 {
			t.Fatalf("read %d bytes, first mismatch at %d", cw.n, cw.mismatch-1)
		}
	})
	t.Run("headers echoed", func(t *testing.T) {
		_, body := httpGet(t, client, app.URL()+"/headers", "X-Porthole-Test", "42", "Origin", "http://127.0.0.7:1234")
		var h map[string][]string
		if err := json.Unmarshal(body, &h); err != nil {
			t.Fatal(err)
		}
		if h["X-Porthole-Test"][0] != "42" || h["Host"][0] != app.Addr() {
			t.Fatalf("headers %v", h)
		}
		last := app.Requests()[len(app.Requests())-1]
		if last.Path != "/headers" || last.Origin != "http://127.0.0.7:1234" || last.Host != app.Addr() {
			t.Fatalf("record %+v", last)
		}
	})
	t.Run("cookie session persists", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		jc := &http.Client{Transport: tr, Jar: jar}
		var first, second WebAppCookieReply
		_, body := httpGet(t, jc, app.URL()+"/cookie")
		if err := json.Unmarshal(body, &first); err != nil {
			t.Fatal(err)
		}
		_, body = httpGet(t, jc, app.URL()+"/cookie")
		if err := json.Unmarshal(body, &second); err != nil {
			t.Fatal(err)
		}
		if first.Received != "" || len(first.Session) != 32 {
			t.Fatalf("first %+v", first)
		}
		if second.Received != first.Session || second.Session != first.Session ||
			second.Cookie != WebAppSessionCookie+"="+first.Session {
			t.Fatalf("second %+v, first %+v", second, first)
		}
		if rec := app.Requests(); rec[len(rec)-1].Cookie != second.Cookie {
			t.Fatalf("record cookie %q", rec[len(rec)-1].Cookie)
		}
	})
	t.Run("persist page: a 30-day cookie once, then the page reports", func(t *testing.T) {
		resp, body := httpGet(t, client, app.URL()+"/persist")
		var set *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == WebAppSessionCookie {
				set = c
			}
		}
		if set == nil || set.MaxAge != WebAppSessionMaxAge || !set.HttpOnly || set.SameSite != http.SameSiteLaxMode {
			t.Fatalf("cookie %+v", set)
		}
		if !strings.Contains(string(body), "<title>"+WebAppPersistTitle+"</title>") || !strings.Contains(string(body), `"`+WebAppStorageKey+`"`) ||
			!strings.Contains(string(body), set.Value[:8]+"…") || !strings.Contains(string(body), "/persist/report?") {
			t.Fatalf("page %q", body)
		}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, app.URL()+"/persist", nil)
		req.AddCookie(set)
		resp2, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := io.ReadAll(resp2.Body)
		_ = resp2.Body.Close()
		if len(resp2.Cookies()) != 0 || !strings.Contains(string(b2), "kept from last time") {
			t.Fatalf("second visit: cookies %v, page %q", resp2.Cookies(), b2)
		}
		r3, _ := httpGet(t, client, app.URL()+"/persist/report?ls=abc&lsNew=false")
		if r3.StatusCode != http.StatusNoContent {
			t.Fatalf("report status %d", r3.StatusCode)
		}
		if last := app.Requests()[len(app.Requests())-1]; last.Path != "/persist/report" || last.RawQuery != "ls=abc&lsNew=false" {
			t.Fatalf("record %+v", last)
		}
	})
	t.Run("websocket echo", func(t *testing.T) {
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		ws, resp, err := d.DialContext(t.Context(), "ws://"+app.Addr()+"/ws", http.Header{"Origin": {"http://elsewhere.test"}})
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		if resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Error("websocket handshake lacks X-Frame-Options")
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		for _, m := range []struct {
			typ  int
			data string
		}{{websocket.TextMessage, "hello"}, {websocket.BinaryMessage, "\x00\x01\x02"}} {
			if err := ws.WriteMessage(m.typ, []byte(m.data)); err != nil {
				t.Fatal(err)
			}
			typ, got, err := ws.ReadMessage()
			if err != nil || typ != m.typ || string(got) != m.data {
				t.Fatalf("echo = %d %q %v", typ, got, err)
			}
		}
	})
	t.Run("keep-alive switch", func(t *testing.T) {
		remotes := func() (string, string) {
			before := len(app.Requests())
			httpGet(t, client, app.URL()+"/small")
			httpGet(t, client, app.URL()+"/small")
			rec := app.Requests()[before:]
			return rec[0].RemoteAddr, rec[1].RemoteAddr
		}
		if a, b := remotes(); a != b {
			t.Fatalf("keep-alive on: two connections %s %s", a, b)
		}
		app.SetKeepAlive(false)
		resp, _ := httpGet(t, client, app.URL()+"/small")
		if !resp.Close {
			t.Error("keep-alive off: response does not close the connection")
		}
		if a, b := remotes(); a == b {
			t.Fatalf("keep-alive off: connection %s reused", a)
		}
		app.SetKeepAlive(true)
	})
	t.Run("Count", func(t *testing.T) {
		if got := app.Count("/res/7"); got != 1 {
			t.Errorf("Count(/res/7) = %d, want 1", got)
		}
		if got := app.Count("/small"); got != 6 {
			t.Errorf("Count(/small) = %d, want 6", got)
		}
	})
}

func TestWebAppCloseWithOpenConnections(t *testing.T) {
	checkNoGoroutineLeak(t)
	app, err := StartWebApp(t.Context(), WebAppOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+app.Addr()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(app.URL() + "/big") // left unread
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	done := make(chan error, 1)
	go func() { done <- app.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5 s with a websocket and a download open")
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("websocket alive after Close")
	}
	if _, err := StartWebApp(t.Context(), WebAppOptions{Addr: "0.0.0.0:0"}); err == nil {
		t.Fatal("web app accepted a non-loopback address")
	}
}

func TestWebAppCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	bin := filepath.Join(t.TempDir(), "testwebapp")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./cmd/testwebapp").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, bin, "-addr", "127.0.0.1:0", "-stdin", "-requests")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("read URL line: %v", err)
	}
	url := strings.TrimSpace(line)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("first line %q", line)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	if _, body := httpGet(t, &http.Client{Transport: tr}, url+"/small?x=1"); string(body) != "small\n" {
		t.Fatalf("body %q", body)
	}
	// -requests: the app's record of the request follows as a JSON line.
	recLine, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("read request line: %v", err)
	}
	var rec RequestRecord
	if err := json.Unmarshal([]byte(recLine), &rec); err != nil || rec.Path != "/small" || rec.RawQuery != "x=1" || rec.Method != "GET" {
		t.Fatalf("request line %q: %+v %v", recLine, rec, err)
	}
	_ = stdin.Close() // -stdin: EOF ends the process
	if err := cmd.Wait(); err != nil {
		t.Fatalf("testwebapp exit: %v", err)
	}
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), time.Second); err == nil {
		_ = c.Close()
		t.Fatal("testwebapp still listening after exit")
	}
	t.Logf("testwebapp served %s and exited on stdin EOF", url)
}
