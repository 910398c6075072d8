package webui

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// Handler returns the http.Handler for a listener bound at addr (the
// "127.80.72.1:PORT" it actually bound): the Host header of every request must
// name that address ("localhost:PORT" is also accepted when bound on a loopback IP).
func (s *Server) Handler(addr string) http.Handler {
	allowed := allowedHosts(addr)
	origins := make(map[string]bool, len(allowed))
	for h := range allowed {
		origins["http://"+h] = true
	}
	return &handler{s: s, hosts: allowed, origins: origins}
}

type handler struct {
	s       *Server
	hosts   map[string]bool // lower-case host:port values accepted in Host
	origins map[string]bool // "http://" + each of hosts
}

func allowedHosts(addr string) map[string]bool {
	hosts := map[string]bool{strings.ToLower(addr): true}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return hosts
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		hosts["localhost:"+port] = true
		hosts[strings.ToLower(net.JoinHostPort(ip.String(), port))] = true
	} else if strings.EqualFold(host, "localhost") {
		hosts["127.0.0.1:"+port] = true
	}
	return hosts
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "frame-ancestors 'none'; object-src 'none'; base-uri 'none'")

	isAPI := r.URL.Path == "/api" || strings.HasPrefix(r.URL.Path, "/api/")
	if isAPI {
		hd.Set("Cache-Control", "no-store")
	}
	// DNS rebinding: a page of evil.example that resolves to 127.0.0.1 still
	// sends Host: evil.example:PORT.
	if !h.hosts[strings.ToLower(r.Host)] {
		h.s.log.Warn("refused request with a foreign Host header", "host", r.Host, "path", r.URL.Path)
		writeError(w, http.StatusForbidden, ErrForbiddenHost.Error()+": open the URL printed by porthole serve")
		return
	}
	// The launch page is a file: page (Origin "null"); its code is the
	// credential, which no other site can know.
	if isLaunchPath(r.URL.Path) {
		h.s.serveLaunch(w, r)
		return
	}
	// CSRF: browsers send Origin on cross-origin state-changing requests.
	if !safeMethod(r.Method) {
		if o, ok := r.Header["Origin"]; ok && (len(o) != 1 || !h.origins[strings.ToLower(o[0])]) {
			h.s.log.Warn("refused request from a foreign Origin", "origin", strings.Join(o, ","), "path", r.URL.Path)
			writeError(w, http.StatusForbidden, ErrForbiddenOrigin.Error()+": only the page served by porthole serve may call the API")
			return
		}
	}
	if isAPI {
		h.s.serveAPI(w, r)
		return
	}
	h.s.serveStatic(w, r)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// authorized checks "Authorization: Bearer TOKEN" in constant time.
func (s *Server) authorized(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	tok = strings.TrimSpace(tok)
	return subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) == 1
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="porthole"`)
		writeError(w, http.StatusUnauthorized, ErrUnauthorized.Error())
		return
	}
	name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/api"), "/")
	switch name {
	case "events":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		s.serveEvents(w, r)
		return
	case "methods":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		writeJSON(w, http.StatusOK, s.infos)
		return
	}
	if name == "" || strings.Contains(name, "/") {
		writeError(w, http.StatusNotFound, "no such endpoint: use POST /api/<Method>, GET /api/events or GET /api/methods")
		return
	}
	if _, ok := s.methods[name]; ok && r.Method != http.MethodPost {
		methodNotAllowed(w, http.MethodPost)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "request body larger than "+formatBytes(mbe.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "cannot read request body: "+err.Error())
		return
	}
	start := time.Now()
	out, err := s.call(name, body)
	if err != nil {
		st := httpStatus(err)
		if s.status != nil && st == 500 {
			if st2 := s.status(err); st2 >= 400 && st2 <= 599 {
				st = st2
			}
		}
		if st >= 500 {
			s.log.Warn("method failed", "method", name, "status", st, "err", err, "took", time.Since(start))
		} else {
			s.log.Debug("method refused", "method", name, "status", st, "err", err)
		}
		writeError(w, st, err.Error())
		return
	}
	s.log.Debug("method called", "method", name, "took", time.Since(start))
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout))
	writeRaw(w, http.StatusOK, out)
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, "method not allowed: use "+allow)
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa(n>>10) + " KiB"
	default:
		return itoa(n) + " bytes"
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode the response"}`)
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	_, _ = w.Write([]byte("\n"))
}

// serveStatic serves Assets. A path that names no file serves index.html (the
// SPA's own routes), except when its last segment looks like a file name
// ("x.js"): that is a genuinely missing asset and gets 404.
func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET, HEAD")
		return
	}
	if s.assets == nil {
		writeError(w, http.StatusNotFound, "this porthole serve has no UI assets")
		return
	}
	// The UI's page frames the apps' web forwards, which take a frame's
	// cross-site navigation only with a Referer from Porthole's own origin
	// (they refuse what other sites start). "origin" sends just
	// http://ADDR/: never a path, and never the #token fragment (no
	// referrer ever carries a fragment).
	w.Header().Set("Referrer-Policy", "origin")
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	if s.serveFile(w, r, name) {
		return
	}
	if strings.Contains(path.Base(name), ".") {
		writeError(w, http.StatusNotFound, "no such file: "+name)
		return
	}
	if !s.serveFile(w, r, "index.html") {
		writeError(w, http.StatusNotFound, "the UI assets have no index.html")
	}
}

// serveFile serves the named asset (a directory's index.html for a directory)
// and reports whether it existed.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, name string) bool {
	if !fs.ValidPath(name) {
		return false
	}
	f, err := s.assets.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false
	}
	if st.IsDir() {
		return name != "index.html" && s.serveFile(w, r, path.Join(name, "index.html"))
	}
	var content io.ReadSeeker
	if rs, ok := f.(io.ReadSeeker); ok {
		content = rs
	} else {
		b, err := io.ReadAll(f)
		if err != nil {
			s.log.Warn("cannot read asset", "name", name, "err", err)
			return false
		}
		content = bytes.NewReader(b)
	}
	if path.Base(name) == "index.html" {
		w.Header().Set("Cache-Control", "no-cache")
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout))
	http.ServeContent(w, r, name, st.ModTime(), content)
	return true
}
