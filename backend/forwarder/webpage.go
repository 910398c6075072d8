package forwarder

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
)

// webFailure is why the forward answered a request itself.
type webFailure int

const (
	// failUnreachable: no channel could be opened because there is no SSH
	// connection to the server (it is being re-established). Nothing was sent.
	failUnreachable webFailure = iota
	// failNotListening: the server refused the channel: nothing listens on
	// the app's port (or forwarding is prohibited). Nothing was sent.
	failNotListening
	// failBroken: the connection broke after (part of) the request was
	// written; it was not re-sent.
	failBroken
	// failBadResponse: the app did not answer with HTTP.
	failBadResponse
	// failProxy: the request could not be passed on for another reason.
	failProxy
	// failClosed: the forward is closed.
	failClosed
	// failBadHost: the request named a host other than the local endpoint.
	failBadHost
	// failCrossSite: another site (not the app, not Porthole, not the user)
	// started the request (see requestAllowed).
	failCrossSite
	// failLinkUsed: a one-time link (OpenLink) that was used already,
	// expired or never existed.
	failLinkUsed
	// failDropsLogin: the server closes every login right after auth
	// (ErrDropsAfterLogin); no new login is tried for a while. Nothing was sent.
	failDropsLogin
	// loginInFrame: not a failure of the forward: the app asks for an HTTP
	// (Basic or Digest) login in a frame of another site, where browsers
	// ask for none; the page offers the app in a tab of its own.
	loginInFrame
)

var webFailureNames = [...]string{
	failUnreachable:  "unreachable",
	failNotListening: "not-listening",
	failBroken:       "broken",
	failBadResponse:  "bad-response",
	failProxy:        "proxy",
	failClosed:       "closed",
	failBadHost:      "bad-host",
	failCrossSite:    "cross-site",
	failLinkUsed:     "link-used",
	failDropsLogin:   "drops-login",
	loginInFrame:     "login-in-frame",
}

func (k webFailure) String() string {
	if k >= 0 && int(k) < len(webFailureNames) {
		return webFailureNames[k]
	}
	return "webFailure(" + strconv.Itoa(int(k)) + ")"
}

func (k webFailure) status() int {
	switch k {
	case failUnreachable, failClosed:
		return http.StatusServiceUnavailable
	case failBadHost, failCrossSite:
		return http.StatusForbidden
	case failLinkUsed:
		return http.StatusGone
	case loginInFrame:
		return http.StatusUnauthorized
	default:
		return http.StatusBadGateway
	}
}

// classify maps a failed request's error to a webFailure.
func (f *WebForward) classify(err error) webFailure {
	var de *webDialError
	var rt *webRoundTripError
	switch {
	case f.ctx.Err() != nil || errors.Is(err, ErrSessionClosed):
		return failClosed
	case errors.As(err, &de):
		switch {
		case errors.Is(err, ErrChannelRefused):
			return failNotListening
		case errors.Is(err, ErrBadTarget):
			return failProxy
		case errors.Is(err, ErrDropsAfterLogin):
			return failDropsLogin
		default:
			return failUnreachable
		}
	case errors.As(err, &rt) && !rt.sent:
		return failUnreachable // every channel died before the request could be written
	case errors.As(err, &rt) && strings.Contains(err.Error(), "malformed HTTP"):
		return failBadResponse
	case errors.As(err, &rt):
		return failBroken
	default:
		return failProxy
	}
}

// proxyError is the ReverseProxy's ErrorHandler: a request failed before
// its response started.
func (f *WebForward) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && f.ctx.Err() == nil {
		return // the browser went away
	}
	kind := f.classify(err)
	f.stats.failed.Add(1)
	f.stats.setErr(err)
	lvl := slog.LevelInfo
	if kind == failUnreachable {
		lvl = slog.LevelDebug // the Session reports the outage itself
	}
	f.log.Log(r.Context(), lvl, "request failed", "method", r.Method, "path", r.URL.Path, "failure", kind, "err", err)
	f.writeFailure(w, r, kind, err)
}

// webMessage is what a failure page says.
type webMessage struct {
	Title string
	What  string
	Todo  string
}

func (f *WebForward) message(kind webFailure, method, local string, reconnectPage bool) webMessage {
	server, app := f.server, f.upstream
	switch kind {
	case failDropsLogin:
		return webMessage{
			Title: server + " closes every login",
			What:  "The SSH server accepted the login and then closed the connection at once, several times in a row. Its sshd_config may have a ChrootDirectory or ForceCommand problem (sshd's log names it).",
			Todo:  "Nothing was sent to the app. Ask the server's administrator to fix it, then connect again.",
		}
	case failUnreachable:
		m := webMessage{
			Title: server + " is unreachable",
			What:  "Porthole lost its SSH connection to " + server + " and is reconnecting.",
			Todo:  "Nothing was sent to the app. Try again in a moment; if it takes long, check your network or VPN.",
		}
		if !f.everUp.Load() {
			m.What = "Porthole is connecting to " + server + "."
		}
		switch {
		case reconnectPage:
			m.Title = "Reconnecting to " + server + "…"
			if !f.everUp.Load() {
				m.Title = "Connecting to " + server + "…"
			}
			m.Todo = "This page reloads by itself as soon as " + app + " on " + server + " answers again. If it takes long, check your network or VPN."
		case method != http.MethodGet && method != http.MethodHead:
			m.Todo = "Your request was not sent to the app, so it is safe to send it again once " + server + " is reachable."
		}
		return m
	case failNotListening:
		return webMessage{
			Title: "Nothing answers on " + app + " on " + server,
			What:  server + " is reachable, but no program accepts connections on " + app + " there.",
			Todo:  "Start the app on " + server + " (or check its port), then reload this page.",
		}
	case failBroken:
		return webMessage{
			Title: "The connection to " + server + " broke",
			What:  "The request was sent to " + app + " on " + server + ", but the connection broke before the app answered.",
			Todo:  "Porthole did not send it again, because the app may have acted on it. Reload to try again.",
		}
	case failBadResponse:
		return webMessage{
			Title: app + " on " + server + " did not answer with HTTP",
			What:  "The program on " + app + " is not a web app, or it speaks HTTPS.",
			Todo:  "Use a plain port forward for it instead of a tab.",
		}
	case failClosed:
		return webMessage{
			Title: "This forward is closed",
			What:  "Porthole closed its forward to " + app + " on " + server + ".",
			Todo:  "Open the app again from Porthole.",
		}
	case failBadHost:
		return webMessage{
			Title: "Request refused",
			What:  "This address serves " + app + " on " + server + " only under its own IP address (or localhost), not under another host name.",
			Todo:  "Open the app from Porthole, or use the address Porthole shows for it.",
		}
	case failCrossSite:
		return webMessage{
			Title: "Request from another site refused",
			What:  "A page that is not " + app + " on " + server + " (nor Porthole) tried to reach the app through this address. Porthole lets only the app itself, Porthole's own window and addresses you open yourself reach it, so that no website can act on the app in your name.",
			Todo:  "Open the app from Porthole, or type its address (http://" + local + "/) into the address bar.",
		}
	case loginInFrame:
		return webMessage{
			Title: app + " on " + server + " asks you to log in",
			What:  "It asks for a user name and password the way browsers ask in a small window of their own (HTTP authentication). Browsers do not ask for that inside a page of another site, as this tab is inside Porthole's page.",
			Todo:  "Open the app in a browser tab of its own: the browser asks for the login there.",
		}
	case failLinkUsed:
		return webMessage{
			Title: "This link was already used",
			What:  "Porthole opens " + app + " on " + server + " in your browser through a link that works once, within a minute, so that it is worth nothing to anyone else. This one was used already, or it expired.",
			Todo:  "Open the app from Porthole again.",
		}
	default:
		return webMessage{
			Title: "Porthole could not pass the request on",
			What:  "The request to " + app + " on " + server + " could not be forwarded.",
			Todo:  "Reload to try again.",
		}
	}
}

// writeFailure answers a request with a page of Porthole's own: JSON for
// scripts, the self-retrying reconnecting page for page loads while the
// server is unreachable, else a small error page.
func (f *WebForward) writeFailure(w http.ResponseWriter, r *http.Request, kind webFailure, err error) {
	reconnect := kind == failUnreachable && isNavigation(r) && !wantsJSON(r) &&
		(r.Method == http.MethodGet || r.Method == http.MethodHead)
	msg := f.message(kind, r.Method, r.Host, reconnect)
	h := w.Header()
	nonce := f.pageHeaders(h, kind)
	status := kind.status()
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "2")
	}
	detail := ""
	if err != nil {
		detail = err.Error()
	}
	if wantsJSON(r) {
		body, _ := json.Marshal(struct {
			Error  string `json:"error"`
			Kind   string `json:"kind"`
			Server string `json:"server"`
			Detail string `json:"detail,omitempty"`
		}{Error: msg.What + " " + msg.Todo, Kind: kind.String(), Server: f.server, Detail: detail})
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)+1))
		w.WriteHeader(status)
		_, _ = w.Write(append(body, '\n'))
		return
	}
	data := pageData{
		webMessage:  msg,
		Nonce:       nonce,
		Kind:        kind.String(),
		Detail:      detail,
		Server:      f.server,
		App:         f.upstream,
		ProbeHeader: probeHeader,
		Reconnect:   reconnect,
		Final:       kind == failLinkUsed,
	}
	var b bytes.Buffer
	if err := webPage.Execute(&b, data); err != nil {
		f.log.Error("rendering a failure page", "err", err)
		http.Error(w, msg.Title+"\n"+msg.What+"\n"+msg.Todo, status)
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// pageHeaders sets the headers of a page the forward makes itself (kind
// names it) and returns the nonce its style and script carry.
func (f *WebForward) pageHeaders(h http.Header, kind webFailure) string {
	nonce := newNonce()
	h.Set(errorHeader, kind.String())
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+nonce+"'; script-src 'nonce-"+nonce+
		"'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors "+f.ancestors)
	return nonce
}

// loginInFrame replaces the app's 401 (an HTTP login asked for inside a frame
// of another site, where the browser asks nothing and shows the app's bare
// 401 body) with a page that says so and links the same address, to open in
// a browser tab of its own, where the browser asks. The status stays 401;
// WWW-Authenticate goes (the browser would not act on it here anyway).
func (f *WebForward) loginInFrame(resp *http.Response, local, requestURI string) {
	h := http.Header{}
	nonce := f.pageHeaders(h, loginInFrame)
	data := pageData{
		webMessage: f.message(loginInFrame, resp.Request.Method, local, false),
		Nonce:      nonce,
		Kind:       loginInFrame.String(),
		Server:     f.server,
		App:        f.upstream,
		OpenTab:    "http://" + local + requestURI,
	}
	var b bytes.Buffer
	if err := webPage.Execute(&b, data); err != nil {
		f.log.Error("rendering the login-in-a-frame page", "err", err)
		return // the app's own 401 goes through
	}
	f.log.Info("the app asks for an HTTP login inside a frame of another site; offered a tab of its own", "path", requestURI)
	_ = resp.Body.Close()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	if v := resp.Header.Values("Set-Cookie"); len(v) > 0 { // keep what the app set
		h["Set-Cookie"] = v
	}
	resp.Header = h
	resp.Body = io.NopCloser(bytes.NewReader(b.Bytes()))
	resp.ContentLength = int64(b.Len())
	resp.TransferEncoding = nil
}

func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawStdEncoding.EncodeToString(b)
}

type pageData struct {
	webMessage
	Nonce       string
	Kind        string
	Detail      string
	Server      string
	App         string
	ProbeHeader string
	Reconnect   bool   // the self-retrying reconnecting page
	Final       bool   // reloading cannot help: no button
	OpenTab     string // a link to open in a new browser tab instead of Reload
}

var webPage = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="porthole-error" content="{{.Kind}}">
{{if .Reconnect}}<noscript><meta http-equiv="refresh" content="5"></noscript>
{{end}}<title>{{.Title}}</title>
<style nonce="{{.Nonce}}">
:root{color-scheme:light dark;--bg:#fff;--fg:#171b22;--muted:#596272;--faint:#8790a0;--border:#e3e6eb;--accent:#0a7286;--accent-fg:#fff;--danger:#d14343}
@media (prefers-color-scheme:dark){:root{--bg:#16181d;--fg:#e5e8ed;--muted:#9ba3b1;--faint:#6c7485;--border:#252932;--accent:#38bfd2;--accent-fg:#04212a;--danger:#ef6b6b}}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:grid;place-items:center;background:var(--bg);color:var(--fg);font:13px/1.5 system-ui,-apple-system,"Segoe UI",Cantarell,Ubuntu,sans-serif}
main{max-width:34rem;padding:28px}
h1{font-size:15px;font-weight:600;margin:0 0 10px;display:flex;align-items:center;gap:10px}
p{margin:0 0 8px;color:var(--muted)}
.mark{flex:none;width:12px;height:12px;border-radius:50%;background:var(--danger)}
.spin{flex:none;width:14px;height:14px;border-radius:50%;border:2px solid var(--border);border-top-color:var(--accent);animation:s 0.9s linear infinite}
@keyframes s{to{transform:rotate(360deg)}}
@media (prefers-reduced-motion:reduce){.spin{animation:none}}
button,.open{display:inline-block;margin-top:8px;font:inherit;padding:5px 12px;border-radius:7px;border:0;background:var(--accent);color:var(--accent-fg);cursor:pointer;text-decoration:none}
details{margin-top:14px;color:var(--faint)}
code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-word}
footer{margin-top:18px;font-size:11px;color:var(--faint)}
</style></head>
<body><main>
<h1>{{if .Reconnect}}<span class="spin" aria-hidden="true"></span>{{else}}<span class="mark" aria-hidden="true"></span>{{end}}{{.Title}}</h1>
<p>{{.What}}</p>
<p>{{.Todo}}</p>
{{if .Reconnect}}<p id="note" aria-live="polite"></p>
<button id="retry" type="button">Try now</button>{{else if .OpenTab}}<a class="open" href="{{.OpenTab}}" target="_blank" rel="noopener">Open in a new tab</a>{{else if not .Final}}<button id="retry" type="button">Reload</button>{{end}}
{{if .Detail}}<details><summary>Details</summary><code>{{.Detail}}</code></details>{{end}}
<footer>Porthole · {{.App}} on {{.Server}}</footer>
</main>
<script nonce="{{.Nonce}}">
(function () {
  var button = document.getElementById("retry");
{{- if .Reconnect}}
  var note = document.getElementById("note"), delay = 1000, timer = 0, busy = false;
  function schedule() {
    var wait = Math.round(delay * (0.8 + Math.random() * 0.4));
    delay = Math.min(delay * 2, 10000);
    note.textContent = "Next try in " + Math.max(1, Math.round(wait / 1000)) + " s.";
    timer = setTimeout(probe, wait);
  }
  function probe() {
    if (busy) { return; }
    busy = true;
    clearTimeout(timer);
    note.textContent = "Trying now…";
    var headers = {};
    headers[{{.ProbeHeader}}] = "1";
    fetch(location.href, {method: "HEAD", cache: "no-store", credentials: "same-origin", headers: headers})
      .then(function (r) { busy = false; if (r.status === 503) { schedule(); } else { location.reload(); } })
      .catch(function () { busy = false; schedule(); });
  }
  button.addEventListener("click", function () { delay = 1000; probe(); });
  schedule();
{{- else if and (not .Final) (not .OpenTab)}}
  button.addEventListener("click", function () { location.reload(); });
{{- end}}
})();
</script>
</body></html>
`))
