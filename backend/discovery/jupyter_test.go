package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const secretToken = "c8de56fa4deed24899803e93c227592aef6538f93025fe01"

// jrec is the J record of a runtime file.
func jrec(name, body string) string { return "J " + name + "\t" + body + "\n" }

// jfile is a jupyter_server runtime file's JSON for a server on port.
func jfile(pid, port int, token string) string {
	return fmt.Sprintf(`{"base_url": "/", "hostname": "localhost", "password": false, "pid": %d, "port": %d, "root_dir": "/home/alice/project", "secure": false, "sock": "", "token": %q, "url": "http://localhost:%d/", "version": "2.14.2"}`, pid, port, token, port)
}

// jupyterCases are listings with runtime files and the tokens they must
// give by port ("" : a server without token; absent: none).
var jupyterCases = []struct {
	name    string
	listing string
	want    map[int]string
}{
	{
		name:    "the file's pid listens on the port",
		listing: fakeProcListing(procRecords(8888, 4242, 41001, "jupyter-lab", "/home/alice", "jupyter-lab"), jrec("jpserver-4242.json", jfile(4242, 8888, secretToken))),
		want:    map[int]string{8888: secretToken},
	},
	{
		name: "stale file: its pid is dead, a stranger listens on the port",
		listing: fakeProcListing(procRecords(8888, 5000, 41001, "nc", "/tmp", "nc -l 8888"),
			jrec("jpserver-4242.json", jfile(4242, 8888, secretToken))),
		want: map[int]string{},
	},
	{
		name: "stale file: nobody the listing knows listens on the port (another user's process)",
		listing: fakeProcListing(fmt.Sprintf("L 4 %s 1001 41001\n", procHex(netip.MustParseAddr("127.0.0.1"), 8888)),
			jrec("jpserver-4242.json", jfile(4242, 8888, secretToken))),
		want: map[int]string{},
	},
	{
		name: "live file whose pid is not the port's listener",
		listing: fakeProcListing(procRecords(8888, 5000, 41001, "python3", "/home/alice", "python3 -m http.server 8888"),
			procRecords(8890, 4242, 41002, "jupyter-lab", "/home/alice", "jupyter-lab"),
			jrec("jpserver-4242.json", jfile(4242, 8888, secretToken))),
		want: map[int]string{},
	},
	{
		name: "live pid listens on the port's v4 socket, a stranger on its v6 one",
		listing: fakeProcListing(procRecords(8888, 4242, 41001, "jupyter-lab", "/home/alice", "jupyter-lab"),
			fmt.Sprintf("L 6 %s 1000 41002\nF 5000 41002\n", procHex(netip.MustParseAddr("::1"), 8888)),
			jrec("jpserver-4242.json", jfile(4242, 8888, secretToken))),
		want: map[int]string{},
	},
	{
		name: "live pid holds both the v4 and the v6 socket",
		listing: fakeProcListing(procRecords(8888, 4242, 41001, "jupyter-lab", "/home/alice", "jupyter-lab"),
			fmt.Sprintf("L 6 %s 1000 41002\nF 4242 41002\n", procHex(netip.MustParseAddr("::1"), 8888)),
			jrec("jpserver-4242.json", jfile(4242, 8888, secretToken))),
		want: map[int]string{8888: secretToken},
	},
	{
		name: "two files for one port: the old one's pid is dead, the new one's listens",
		listing: fakeProcListing(procRecords(8888, 4300, 41001, "jupyter-lab", "/home/alice", "jupyter-lab"),
			jrec("jpserver-1234.json", jfile(1234, 8888, "old-dead-token")),
			jrec("jpserver-4300.json", jfile(4300, 8888, secretToken))),
		want: map[int]string{8888: secretToken},
	},
	{
		name: "classic notebook: multi-line file (made one line), token in its URL, notebook_dir",
		listing: fakeProcListing(procRecords(8889, 4100, 41001, "jupyter-notebook", "/home/alice", "jupyter-notebook"),
			jrec("nbserver-4100.json", `{   "base_url": "/nb",   "notebook_dir": "/home/alice/old",   "pid": 4100,   "port": 8889,   "secure": false,   "token": "",   "url": "http://localhost:8889/nb/?token=oldtoken123" }`)),
		want: map[int]string{8889: "oldtoken123"},
	},
	{
		name: "password only: a server without token",
		listing: fakeProcListing(procRecords(8890, 4300, 41001, "jupyter-lab", "/home/alice", "jupyter-lab"),
			jrec("jpserver-4300.json", `{"base_url": "/user/alice/", "password": true, "pid": 4300, "port": 8890, "root_dir": "/home/alice", "secure": true, "token": "", "url": "https://127.0.0.1:8890/user/alice/"}`)),
		want: map[int]string{8890: ""},
	},
	{
		name: "garbled files: truncated, no pid, no port, not a runtime file name",
		listing: fakeProcListing(procRecords(8888, 4242, 41001, "jupyter-lab", "/home/alice", "jupyter-lab"),
			jrec("jpserver-4242.json", `{"base_url": "/", "pid": 4242, "port": 88`),
			jrec("jpserver-4243.json", `{"port": 8888, "token": "nopid"}`),
			jrec("jpserver-4244.json", `{"pid": 4242, "token": "noport"}`),
			jrec("kernel-4242.json", jfile(4242, 8888, "kernel")),
			"J jpserver-4242.json no tab\n"),
		want: map[int]string{},
	},
	{
		name: "lsof listing: the pid from lsof",
		listing: "porthole-sockets v1\nT 1741083667\nU 501 alice\nH /Users/alice\nM arm64\nS lsof\n" +
			"O python3.1 4242 alice    5u  IPv4 0x9a8f3c1d2e4b5a67      0t0  TCP 127.0.0.1:8888 (LISTEN)\n" +
			"O python3.1 4242 alice    6u  IPv6 0x9a8f3c1d2e4b5a68      0t0  TCP [::1]:8888 (LISTEN)\n" +
			jrec("jpserver-4242.json", jfile(4242, 8888, secretToken)) + "E\n",
		want: map[int]string{8888: secretToken},
	},
	{
		name: "netstat listing: no pids, so no token",
		listing: "porthole-sockets v1\nU 1000 alice\nS netstat\nN tcp 0 0 127.0.0.1:8888 0.0.0.0:* LISTEN\n" +
			jrec("jpserver-4242.json", jfile(4242, 8888, secretToken)) + "E\n",
		want: map[int]string{},
	},
}

func TestJupyterServersVerified(t *testing.T) {
	for _, tc := range jupyterCases {
		t.Run(tc.name, func(t *testing.T) {
			ex := &fakeExecer{}
			ex.set(tc.listing, nil)
			got, err := JupyterServers(context.Background(), ex)
			if err != nil {
				t.Fatal(err)
			}
			tokens := map[int]string{}
			for _, js := range got {
				tokens[js.Port] = js.Token
				if !js.FromRuntimeFile || js.PID <= 0 || !strings.HasSuffix(js.BaseURL, "/") || strings.Contains(js.URL, "token") {
					t.Errorf("server %v: url %q", js, js.URL)
				}
			}
			if fmt.Sprint(tokens) != fmt.Sprint(tc.want) {
				t.Errorf("tokens by port = %v, want %v", tokens, tc.want)
			}
			if len(ex.cmds) != 1 || ex.cmds[0] != socketsCommand() {
				t.Errorf("commands %.60q, want the one socket listing", ex.cmds)
			}
		})
	}
}

func TestJupyterServerFields(t *testing.T) {
	ex := &fakeExecer{}
	ex.set(jupyterCases[7].listing, nil)
	got, err := JupyterServers(context.Background(), ex)
	if err != nil || len(got) != 1 {
		t.Fatalf("%v, %v", got, err)
	}
	want := JupyterServer{Port: 8889, URL: "http://localhost:8889/nb/", BaseURL: "/nb/", RootDir: "/home/alice/old", PID: 4100, Token: "oldtoken123", FromRuntimeFile: true}
	if got[0] != want {
		t.Errorf("server %+v\nwant %+v", got[0], want)
	}
	ex.set(jupyterCases[8].listing, nil)
	got, _ = JupyterServers(context.Background(), ex)
	want = JupyterServer{Port: 8890, URL: "https://127.0.0.1:8890/user/alice/", BaseURL: "/user/alice/", RootDir: "/home/alice", PID: 4300, Secure: true, Password: true, FromRuntimeFile: true}
	if len(got) != 1 || got[0] != want {
		t.Errorf("servers %+v\nwant %+v", got, want)
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

// TestListingNeverLogsRuntimeFiles: the listing parser logs the lines it
// skips, but not a runtime file's, which holds a token.
func TestListingNeverLogsRuntimeFiles(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	out := fakeProcListing(
		jrec("jpserver-1.json", `{"port": 88, "token": "`+secretToken+`"`),
		jrec("jpserver-2.json", `{"port": 0, "pid": 2, "token": "`+secretToken+`"}`),
		"J "+secretToken+"\n",
		"X unknown record\n")
	l, err := parseListing([]byte(out), log)
	if err != nil {
		t.Fatal(err)
	}
	if l.skipped != 4 || len(l.jupyter) != 0 {
		t.Errorf("skipped %d, runtime files %d", l.skipped, len(l.jupyter))
	}
	if strings.Contains(logs.String(), secretToken[:12]) || !strings.Contains(logs.String(), "unknown record") {
		t.Errorf("logs:\n%s", logs.String())
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
	ex.set(fakeProcListing(), nil)
	if got, err := JupyterServers(context.Background(), ex); err != nil || len(got) != 0 {
		t.Errorf("no servers: %v, %v", got, err)
	}
}

// listenLoopback opens a listener on 127.0.0.1 held by this test process
// and returns its port.
func listenLoopback(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// deadPID returns the pid of a process that has exited (and been reaped).
func deadPID(t *testing.T) int {
	t.Helper()
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	return c.Process.Pid
}

// livePID starts a process that listens on nothing and stops it at cleanup.
func livePID(t *testing.T) int {
	t.Helper()
	c := exec.Command("sleep", "60")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Process.Kill()
		_ = c.Wait()
	})
	return c.Process.Pid
}

func writeRuntimeFile(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestJupyterScriptRealProcesses runs the real script under each shell,
// with listeners of this process and runtime files in jupyter_core's
// runtime directories: only files whose pid listens on their port count.
func TestJupyterScriptRealProcesses(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("the proc branch needs Linux")
	}
	me := os.Getpid()
	stale, wrongPID, right, twoFiles, multiLine, legacy := listenLoopback(t), listenLoopback(t), listenLoopback(t), listenLoopback(t), listenLoopback(t), listenLoopback(t)
	dead1, dead2, live := deadPID(t), deadPID(t), livePID(t)

	home := t.TempDir()
	data := filepath.Join(home, ".local", "share", "jupyter", "runtime")
	jrt := filepath.Join(home, "jrt")
	xdgRT := filepath.Join(home, "xdg-runtime")
	writeRuntimeFile(t, data, fmt.Sprintf("jpserver-%d.json", dead1), jfile(dead1, stale, "stale-token"))
	writeRuntimeFile(t, data, fmt.Sprintf("jpserver-%d.json", live), jfile(live, wrongPID, "not-the-listener-token"))
	writeRuntimeFile(t, data, fmt.Sprintf("jpserver-%d.json", me), `{"base_url": "/", "pid": `+strconv.Itoa(me)+`, "port": `+strconv.Itoa(right)+`, "root_dir": "/home/x/it's here", "token": "right-token", "url": "http://localhost:`+strconv.Itoa(right)+`/"}`)
	writeRuntimeFile(t, data, fmt.Sprintf("jpserver-%d.json", dead2), jfile(dead2, twoFiles, "old-dead-token"))
	writeRuntimeFile(t, jrt, fmt.Sprintf("nbserver-%d.json", me), jfile(me, twoFiles, "new-live-token"))
	writeRuntimeFile(t, jrt, "nbserver-1.json", fmt.Sprintf("{\n  \"base_url\": \"/nb/\",\n\t\"notebook_dir\": \"/srv/nb\",\r\n  \"pid\": %d,\n  \"port\": %d,\n  \"token\": \"multi-line-token\"\n}\n", me, multiLine))
	writeRuntimeFile(t, filepath.Join(xdgRT, "jupyter"), fmt.Sprintf("jpserver-%d.json", me), jfile(me, legacy, "legacy-dir-token"))
	writeRuntimeFile(t, data, fmt.Sprintf("jpserver-%d-open.html", me), "<html>not json</html>")
	writeRuntimeFile(t, data, "kernel-abc.json", `{"shell_port": 1, "key": "kernel-secret"}`)

	want := map[int]string{right: "right-token", twoFiles: "new-live-token", multiLine: "multi-line-token", legacy: "legacy-dir-token"}
	env := []string{"HOME=" + home, "JUPYTER_RUNTIME_DIR=" + jrt, "JUPYTER_DATA_DIR=", "XDG_DATA_HOME=", "XDG_RUNTIME_DIR=" + xdgRT}
	for _, sh := range shells() {
		t.Run(sh, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ex := shellExecer{shell: sh, env: env}
			got, err := JupyterServers(ctx, ex)
			if err != nil {
				t.Fatal(err)
			}
			tokens := map[int]string{}
			for _, js := range got {
				tokens[js.Port] = js.Token
			}
			if fmt.Sprint(tokens) != fmt.Sprint(want) {
				t.Errorf("tokens by port = %v\nwant %v (stale %d, not the listener %d)", tokens, want, stale, wrongPID)
			}
			out, err := ex.Exec(ctx, socketsCommand())
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(out, []byte("kernel-secret")) || bytes.Contains(out, []byte("not json")) {
				t.Errorf("the script read a kernel connection file or the open.html")
			}
			l, err := parseListing(out, nil)
			if err != nil || l.skipped != 0 || len(l.jupyter) != 7 {
				t.Errorf("listing: err %v, skipped %d, runtime files %d (want 7)", err, l.skipped, len(l.jupyter))
			}
		})
	}
}

func FuzzJupyterListing(f *testing.F) {
	for _, tc := range jupyterCases {
		f.Add([]byte(tc.listing))
	}
	f.Add([]byte("porthole-sockets v1\nJ jpserver-1.json\t{{{{\nJ \t\nE\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := parseListing(b, nil)
		if err != nil {
			if !errors.Is(err, ErrBadOutput) {
				t.Fatalf("error is not ErrBadOutput: %v", err)
			}
			return
		}
		for port, js := range verifiedJupyter(l) {
			if js.Port != port || port <= 0 || port > 65535 || js.PID <= 0 || !strings.HasSuffix(js.BaseURL, "/") {
				t.Fatalf("bad server %+v for port %d", js, port)
			}
			if u, err := url.Parse(js.URL); err == nil && u.Query().Has("token") {
				t.Fatalf("token left in URL %q", js.URL)
			}
			n := 0
			for _, s := range l.sockets {
				if s.port == port && s.addr.IsValid() {
					n++
					if !slices.Contains(s.pids, js.PID) {
						t.Fatalf("port %d: socket %+v is not held by the runtime file's pid %d", port, s, js.PID)
					}
				}
			}
			if n == 0 {
				t.Fatalf("port %d: token given with no listener", port)
			}
		}
	})
}
