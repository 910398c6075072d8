package discovery

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
)

// JupyterServer is a running Jupyter server on the server and how to log in
// to it, from its runtime file (jpserver-PID.json, nbserver-PID.json). Only
// a server whose PID is alive and is the listener of Port is ever returned. Its String, GoString and LogValue leave the token out; never log
// Token itself.
type JupyterServer struct {
	Port    int    `json:"port"`
	URL     string `json:"url"`     // as the server reports it, query removed, e.g. "http://localhost:8888/"
	BaseURL string `json:"baseUrl"` // e.g. "/" or "/user/alice/"
	RootDir string `json:"rootDir"` // the directory it serves
	PID     int    `json:"pid"`     // 0 when unknown
	Secure  bool   `json:"secure"`  // serves HTTPS
	// Password: a password is configured (the token may then be empty).
	Password bool `json:"password"`
	// Token logs in: open BaseURL + "?token=" + Token, or send
	// "Authorization: token " + Token. Secret: never log it.
	Token string `json:"-"`
	// FromRuntimeFile: found in a runtime file. Always true: Porthole no
	// longer runs `jupyter … list`; kept for compatibility.
	FromRuntimeFile bool `json:"fromRuntimeFile"`
}

func (j JupyterServer) String() string {
	tok := "none"
	if j.Token != "" {
		tok = "set"
	}
	return fmt.Sprintf("Jupyter server on port %d (base %s, root %s, pid %d, token %s)", j.Port, j.BaseURL, j.RootDir, j.PID, tok)
}

// GoString keeps %#v from printing the token.
func (j JupyterServer) GoString() string { return j.String() }

// LogValue keeps slog from printing the token.
func (j JupyterServer) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("port", j.Port), slog.String("baseUrl", j.BaseURL), slog.String("rootDir", j.RootDir),
		slog.Int("pid", j.PID), slog.Bool("hasToken", j.Token != ""),
	)
}

// JupyterServers finds the Jupyter servers running on the server for the
// login's user, with their tokens, in one exec of the socket listing script
// (which also reads the runtime files; it runs no jupyter and writes
// nothing). One entry per port, sorted by port. A runtime file counts only
// when its pid holds every listening socket of its port: a stale file
// (dead pid), or one whose port another process listens on now, gives
// nothing. A Scanner does the same with a cache: see Scanner.Jupyter.
func JupyterServers(ctx context.Context, ex Execer) ([]JupyterServer, error) {
	l, err := remoteListing(ctx, ex, nil)
	if err != nil {
		return nil, fmt.Errorf("list the Jupyter servers: %w", err)
	}
	m := verifiedJupyter(l)
	res := make([]JupyterServer, 0, len(m))
	for _, js := range m {
		res = append(res, js)
	}
	slices.SortFunc(res, func(a, b JupyterServer) int { return cmp.Compare(a.Port, b.Port) })
	return res, nil
}

// runtimeFile is a J record of a listing: a Jupyter runtime file, parsed
// but not yet checked against the sockets.
type runtimeFile struct {
	name string // e.g. "jpserver-4242.json"
	js   JupyterServer
}

// jupyterJSON is the union of the fields of jupyter_server's and the
// classic notebook's runtime files.
type jupyterJSON struct {
	Port        *int   `json:"port"`
	URL         string `json:"url"`
	Token       string `json:"token"`
	BaseURL     string `json:"base_url"`
	RootDir     string `json:"root_dir"`
	NotebookDir string `json:"notebook_dir"`
	PID         int    `json:"pid"`
	Secure      bool   `json:"secure"`
	Password    bool   `json:"password"`
}

// parseRuntimeRecord parses the rest of a J record, "NAME<TAB>JSON". The
// error never quotes the record: it holds a token.
func parseRuntimeRecord(rest string) (runtimeFile, error) {
	name, body, ok := strings.Cut(rest, "\t")
	if !ok || !(strings.HasPrefix(name, "jpserver-") || strings.HasPrefix(name, "nbserver-")) || !strings.HasSuffix(name, ".json") {
		return runtimeFile{}, fmt.Errorf("bad Jupyter runtime file record")
	}
	var j jupyterJSON
	if err := json.Unmarshal([]byte(body), &j); err != nil {
		return runtimeFile{}, fmt.Errorf("Jupyter runtime file %s is not a JSON object", truncate(name, 80))
	}
	js, ok := j.server()
	if !ok || js.PID <= 0 {
		return runtimeFile{}, fmt.Errorf("Jupyter runtime file %s has no valid port and pid", truncate(name, 80))
	}
	js.FromRuntimeFile = true
	return runtimeFile{name: name, js: js}, nil
}

// verifiedJupyter returns, by port, the servers of the listing's runtime
// files whose pid is alive and is the listener of their port: every
// listening socket of the port (each address it is bound on) is held by
// that pid. A socket whose owner the listing does not know (another
// user's process, or netstat, which gives no pids) fails the check. Of
// several files that pass for one port (a forked server), the one with a
// token wins, then jpserver over nbserver, then the lowest name.
func verifiedJupyter(l *listing) map[int]JupyterServer {
	res := map[int]JupyterServer{}
	if len(l.jupyter) == 0 {
		return res
	}
	byPort := map[int][]sockEntry{}
	for _, s := range l.sockets {
		if s.port > 0 && s.port <= 65535 && s.addr.IsValid() {
			byPort[s.port] = append(byPort[s.port], s)
		}
	}
	files := slices.Clone(l.jupyter)
	slices.SortStableFunc(files, func(a, b runtimeFile) int {
		return cmp.Or(
			cmp.Compare(btoi(a.js.Token == ""), btoi(b.js.Token == "")),
			cmp.Compare(btoi(!strings.HasPrefix(a.name, "jpserver-")), btoi(!strings.HasPrefix(b.name, "jpserver-"))),
			strings.Compare(a.name, b.name),
		)
	})
	for _, f := range files {
		if _, done := res[f.js.Port]; done {
			continue
		}
		if listens(byPort[f.js.Port], f.js.PID) {
			res[f.js.Port] = f.js
		}
	}
	return res
}

// listens reports whether pid holds every one of the port's sockets (and
// there is at least one).
func listens(socks []sockEntry, pid int) bool {
	if len(socks) == 0 || pid <= 0 {
		return false
	}
	for _, s := range socks {
		if !slices.Contains(s.pids, pid) {
			return false
		}
	}
	return true
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// server validates and converts a decoded object.
func (j jupyterJSON) server() (JupyterServer, bool) {
	if j.Port == nil || *j.Port <= 0 || *j.Port > 65535 {
		return JupyterServer{}, false
	}
	js := JupyterServer{
		Port:     *j.Port,
		Token:    j.Token,
		BaseURL:  j.BaseURL,
		RootDir:  cmp.Or(j.RootDir, j.NotebookDir),
		PID:      max(j.PID, 0),
		Secure:   j.Secure,
		Password: j.Password,
	}
	if u, err := url.Parse(j.URL); err == nil && j.URL != "" {
		// Older servers put the token in the URL; keep it out of URL.
		if t := u.Query().Get("token"); t != "" && js.Token == "" {
			js.Token = t
		}
		u.RawQuery, u.Fragment = "", ""
		js.URL = u.String()
		if u.Scheme == "https" {
			js.Secure = true
		}
	}
	if js.BaseURL == "" {
		js.BaseURL = "/"
	}
	if !strings.HasSuffix(js.BaseURL, "/") {
		js.BaseURL += "/"
	}
	return js, true
}
