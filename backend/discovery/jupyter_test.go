package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const secretToken = "c8de56fa4deed24899803e93c227592aef6538f93025fe01"

// jupyterOutput is recorded output of the Jupyter script: list output with
// a log line on stdout, a classic server whose URL holds its token, runtime
// files (one for a port list already reported, one stale-or-not for a
// port it did not), and a truncated file.
var jupyterOutput = strings.Join([]string{
	"porthole-jupyter v1",
	"#list server",
	`{"base_url": "/", "hostname": "localhost", "password": false, "pid": 4242, "port": 8888, "root_dir": "/home/alice/project", "secure": false, "sock": "", "token": "` + secretToken + `", "url": "http://localhost:8888/", "version": "2.14.2"}`,
	`[ListServersApp] WARNING | some deprecation warning on stdout`,
	`{"base_url": "/user/alice/", "hostname": "127.0.0.1", "password": true, "pid": 4300, "port": 8890, "root_dir": "/home/alice", "secure": true, "sock": "", "token": "", "url": "https://127.0.0.1:8890/user/alice/", "version": "2.14.2"}`,
	"",
	"#list notebook",
	`{"base_url": "/", "hostname": "localhost", "notebook_dir": "/home/alice/old", "password": false, "pid": 4100, "port": 8889, "secure": false, "token": "", "url": "http://localhost:8889/?token=oldtoken123"}`,
	"",
	"#file jpserver-4242.json",
	"{",
	`  "base_url": "/",`,
	`  "hostname": "localhost",`,
	`  "password": false,`,
	`  "pid": 4242,`,
	`  "port": 8888,`,
	`  "root_dir": "/home/alice/project",`,
	`  "secure": false,`,
	`  "token": "runtime-file-token",`,
	`  "url": "http://localhost:8888/"`,
	"}",
	"#file jpserver-5000.json",
	`{"base_url": "/", "pid": 5000, "port": 8891, "root_dir": "/data", "token": "tok8891", "url": "http://localhost:8891/"}`,
	"#file jpserver-6000.json",
	`{"base_url": "/", "pid": 6000, "port": 88`,
	"#end",
}, "\n")

func TestJupyterServersParse(t *testing.T) {
	ex := &fakeExecer{}
	ex.set(jupyterOutput, nil)
	got, err := JupyterServers(context.Background(), ex)
	if err != nil {
		t.Fatal(err)
	}
	want := []JupyterServer{
		{Port: 8888, URL: "http://localhost:8888/", BaseURL: "/", RootDir: "/home/alice/project", PID: 4242, Token: secretToken},
		{Port: 8889, URL: "http://localhost:8889/", BaseURL: "/", RootDir: "/home/alice/old", PID: 4100, Token: "oldtoken123"},
		{Port: 8890, URL: "https://127.0.0.1:8890/user/alice/", BaseURL: "/user/alice/", RootDir: "/home/alice", PID: 4300, Secure: true, Password: true},
		{Port: 8891, URL: "http://localhost:8891/", BaseURL: "/", RootDir: "/data", PID: 5000, Token: "tok8891", FromRuntimeFile: true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("servers:\n got %+v\nwant %+v", fmt.Sprintf("%#v", got), want)
		for i := range got {
			t.Logf("%d: port %d token %q url %q", i, got[i].Port, got[i].Token, got[i].URL)
		}
	}
	if len(ex.cmds) != 1 || !strings.HasPrefix(ex.cmds[0], "sh -c '") || !strings.Contains(ex.cmds[0], "jupyter server list --json") {
		t.Errorf("command %.60q", ex.cmds)
	}
}

func TestJupyterServerNeverShowsToken(t *testing.T) {
	js := JupyterServer{Port: 8888, BaseURL: "/", RootDir: "/home/alice", PID: 1, Token: secretToken}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("found", "server", js, "list", []JupyterServer{js})
	j, _ := json.Marshal(js)
	for name, s := range map[string]string{
		"%v": fmt.Sprintf("%v", js), "%+v": fmt.Sprintf("%+v", js), "%#v": fmt.Sprintf("%#v", js), "%s": fmt.Sprint(js),
		"slog": logs.String(), "json": string(j), "ptr %+v": fmt.Sprintf("%+v", &js),
	} {
		if strings.Contains(s, secretToken) || strings.Contains(s, secretToken[:12]) {
			t.Errorf("%s shows the token: %s", name, s)
		}
	}
	if !strings.Contains(logs.String(), `"hasToken":true`) || !strings.Contains(js.String(), "token set") {
		t.Errorf("logs do not say a token exists: %s / %s", logs.String(), js)
	}
}

func TestJupyterServersErrors(t *testing.T) {
	ex := &fakeExecer{}
	ex.set("", errors.New("ssh: disconnected"))
	if _, err := JupyterServers(context.Background(), ex); err == nil || !strings.Contains(err.Error(), "ssh: disconnected") {
		t.Errorf("exec failure: %v", err)
	}
	ex.set("Unmatched '''.\n", nil)
	if _, err := JupyterServers(context.Background(), ex); !errors.Is(err, ErrBadOutput) {
		t.Errorf("bad output: %v", err)
	}
	ex.set("porthole-jupyter v1\n#end\n", nil)
	if got, err := JupyterServers(context.Background(), ex); err != nil || len(got) != 0 {
		t.Errorf("no servers: %v, %v", got, err)
	}
}

// TestJupyterScriptRuntimeFiles runs the real script under each shell with a
// home holding runtime files and no jupyter on PATH.
func TestJupyterScriptRuntimeFiles(t *testing.T) {
	home := t.TempDir()
	rt := filepath.Join(home, ".local", "share", "jupyter", "runtime")
	if err := os.MkdirAll(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"jpserver-111.json":      `{"base_url": "/", "pid": 111, "port": 8888, "root_dir": "/home/x/it's here", "token": "t1", "url": "http://localhost:8888/"}`,
		"nbserver-222.json":      "{\n  \"base_url\": \"/nb/\",\n  \"notebook_dir\": \"/srv/nb\",\n  \"pid\": 222,\n  \"port\": 8889,\n  \"token\": \"t2\"\n}\n",
		"jpserver-111-open.html": "<html>not json</html>",
		"kernel-abc.json":        `{"shell_port": 1, "key": "secret"}`,
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(rt, n), []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// PATH without jupyter (which may well be installed in /usr/bin next to
	// sh and cat): a directory holding links to only the tools the script uses.
	bin := t.TempDir()
	for _, tool := range []string{"sh", "cat", "dash", "busybox"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			if tool == "sh" || tool == "cat" {
				t.Fatal(err)
			}
			continue // only used when installed (see shells)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	for _, sh := range shells() {
		t.Run(sh, func(t *testing.T) {
			env := []string{"HOME=" + home, "JUPYTER_RUNTIME_DIR=", "XDG_DATA_HOME=", "PATH=" + bin}
			got, err := JupyterServers(context.Background(), shellExecer{shell: sh, env: env})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0].Port != 8888 || got[0].Token != "t1" || got[0].RootDir != "/home/x/it's here" ||
				got[1].Port != 8889 || got[1].Token != "t2" || got[1].BaseURL != "/nb/" || got[1].RootDir != "/srv/nb" || !got[1].FromRuntimeFile {
				t.Errorf("servers = %+v", got)
			}
		})
	}
}

// TestJupyterScriptHangingJupyter: a `jupyter` that never answers (a
// version-manager shim stuck on a lock did this on a test machine) is cut
// off, and the runtime files still give the server and its token.
func TestJupyterScriptHangingJupyter(t *testing.T) {
	timeoutBin, err := exec.LookPath("timeout")
	if err != nil {
		t.Skip("no timeout(1) on this system: the script then waits for jupyter")
	}
	home := t.TempDir()
	rt := filepath.Join(home, ".local", "share", "jupyter", "runtime")
	if err := os.MkdirAll(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rt, "jpserver-7.json"), []byte(`{"base_url": "/", "pid": 7, "port": 8890, "token": "t7"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	for _, tool := range []string{"sh", "cat", "sleep"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(timeoutBin, filepath.Join(bin, "timeout")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "jupyter"), []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "JUPYTER_RUNTIME_DIR=", "XDG_DATA_HOME=", "PATH=" + bin, "PORTHOLE_JUPYTER_TIMEOUT=1"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	got, err := JupyterServers(ctx, shellExecer{shell: "sh", env: env})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("after %v: %v", took, err)
	}
	if len(got) != 1 || got[0].Port != 8890 || got[0].Token != "t7" {
		t.Fatalf("servers = %+v", got)
	}
	if took > 15*time.Second {
		t.Errorf("the hanging jupyter held the listing for %v", took)
	}
	t.Logf("a hanging jupyter cost %v (two lists cut off at 1 s each)", took.Round(100*time.Millisecond))
}

func FuzzParseJupyter(f *testing.F) {
	f.Add([]byte(jupyterOutput))
	f.Add([]byte("porthole-jupyter v1\n#list server\n{\"port\": 1}\n{\"port\": 70000}\n{\"port\": \"x\"}\n#end\n"))
	f.Add([]byte("porthole-jupyter v1\n#file a\n{{{{\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseJupyter(b)
		if err != nil {
			if !errors.Is(err, ErrBadOutput) {
				t.Fatalf("error %v is not ErrBadOutput", err)
			}
			return
		}
		for i, s := range got {
			if s.Port <= 0 || s.Port > 65535 || (i > 0 && got[i-1].Port >= s.Port) || !strings.HasSuffix(s.BaseURL, "/") {
				t.Fatalf("bad result %+v", got)
			}
			if u, err := url.Parse(s.URL); err == nil && u.Query().Has("token") {
				t.Fatalf("token left in URL %q", s.URL)
			}
		}
	})
}
