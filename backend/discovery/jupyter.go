package discovery

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
)

//go:embed jupyter.sh
var jupyterScript string

const jupyterHeader = "porthole-jupyter v1"

// JupyterServer is a running Jupyter server on the server and how to log in
// to it. Its String, GoString and LogValue leave the token out; never log
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
	// FromRuntimeFile: found in a runtime file rather than by
	// `jupyter … list`; the file may be stale, so match it by Port and PID
	// against a Scan.
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
// login's user, with their tokens, in one exec: `jupyter server list
// --json`, `jupyter notebook list --json`, then the runtime files
// (jpserver-*.json, nbserver-*.json) for when jupyter is not on the
// non-interactive PATH. One entry per port, sorted by port; what `list`
// reports wins over runtime files.
func JupyterServers(ctx context.Context, ex Execer) ([]JupyterServer, error) {
	out, err := ex.Exec(ctx, "sh -c "+shQuote(jupyterScript))
	if err != nil && (ctx.Err() != nil || len(out) == 0) {
		return nil, fmt.Errorf("run the Jupyter listing script on the server: %w", err)
	}
	servers, perr := parseJupyter(out)
	if perr != nil {
		return nil, perr
	}
	return servers, nil
}

// jupyterJSON is the union of the fields of `jupyter server list --json`,
// `jupyter notebook list --json` and the runtime files.
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

// parseJupyter parses the script's output. Garbage between objects (such as
// a deprecation warning on stdout) is skipped.
func parseJupyter(out []byte) ([]JupyterServer, error) {
	i := bytes.Index(out, []byte(jupyterHeader))
	if i < 0 {
		return nil, fmt.Errorf("%w: no %q header", ErrBadOutput, jupyterHeader)
	}
	out = out[i+len(jupyterHeader):]
	type found struct {
		js   JupyterServer
		rank int // 0: list; 1: runtime file
	}
	var all []found
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	rank := 0
	var section bytes.Buffer
	flush := func() {
		for _, j := range decodeJSONObjects(section.Bytes()) {
			if js, ok := j.server(); ok {
				js.FromRuntimeFile = rank == 1
				all = append(all, found{js, rank})
			}
		}
		section.Reset()
	}
	for sc.Scan() {
		line := sc.Bytes()
		if t, ok := bytes.CutPrefix(line, []byte("#")); ok {
			flush()
			rank = 0
			if bytes.HasPrefix(t, []byte("file ")) {
				rank = 1
			}
			continue
		}
		section.Write(line)
		section.WriteByte('\n')
	}
	flush()

	// One per port: list output first, then entries with a token.
	slices.SortStableFunc(all, func(a, b found) int {
		if c := cmp.Compare(a.js.Port, b.js.Port); c != 0 {
			return c
		}
		if c := cmp.Compare(a.rank, b.rank); c != 0 {
			return c
		}
		return cmp.Compare(btoi(a.js.Token == ""), btoi(b.js.Token == ""))
	})
	var res []JupyterServer
	for _, f := range all {
		if len(res) > 0 && res[len(res)-1].Port == f.js.Port {
			continue
		}
		res = append(res, f.js)
	}
	return res, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// decodeJSONObjects decodes the JSON objects in b, skipping what is not one.
func decodeJSONObjects(b []byte) []jupyterJSON {
	var res []jupyterJSON
	for len(b) > 0 {
		start := bytes.IndexByte(b, '{')
		if start < 0 {
			break
		}
		b = b[start:]
		dec := json.NewDecoder(bytes.NewReader(b))
		var j jupyterJSON
		if err := dec.Decode(&j); err != nil {
			b = b[1:] // not an object here: look for the next '{'
			continue
		}
		res = append(res, j)
		b = b[dec.InputOffset():]
	}
	return res
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
