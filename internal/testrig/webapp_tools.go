package testrig

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// The pages of what a browser tab does besides showing a page (issue 15),
// for the desktop test of the Linux window's app views:
//
//   - /tools: a page with WebAppFindWord WebAppFindCount times, for find in
//     page, one a line; the line a find selects goes to /tools/selected?line=N;
//   - /tools/download: a CSV file as an attachment (Content-Disposition),
//     WebAppDownloadName holding WebAppDownloadBody;
//   - /tools/alerts?n=N: a page that calls alert() N times in a loop, then
//     reports how many returned to /tools/alerts/done?n=… (a page flooding
//     the window with dialogs);
//   - /tools/upload: a page that is one big file input; the chosen file's
//     name and size go to /tools/upload/done?name=…&size=…;
//   - /tools/auth: HTTP basic auth (realm WebAppAuthRealm), user
//     WebAppAuthUser, password WebAppAuthPassword; the page a valid sign-in
//     gets requests /tools/auth/ok.
const (
	WebAppFindWord      = "porthole-needle"
	WebAppFindCount     = 7
	WebAppDownloadName  = "porthole-export.csv"
	WebAppDownloadBody  = "port,app\n8888,jupyter\n6006,tensorboard\n"
	WebAppAuthRealm     = "porthole test"
	WebAppAuthUser      = "tester"
	WebAppAuthPassword  = "open sesame"
	webAppMaxAlertsLoop = 1000
)

// toolsSelectionScript reports the line of /tools that a selected text
// (a find's match) is in.
const toolsSelectionScript = `<script>
document.addEventListener('selectionchange', function () {
  var s = getSelection();
  if (!s.rangeCount || s.isCollapsed) return;
  for (var n = s.anchorNode; n; n = n.parentNode) {
    if (n.id && n.id.indexOf('line') === 0) { fetch('/tools/selected?line=' + n.id.slice(4)); return; }
  }
});
</script>
`

func (w *WebApp) toolRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /tools", func(rw http.ResponseWriter, _ *http.Request) {
		var b strings.Builder
		b.WriteString("<!doctype html><html><head><meta charset=\"utf-8\"><title>Tools</title></head><body><h1>Tools</h1>\n")
		for i := range WebAppFindCount {
			fmt.Fprintf(&b, "<p id=\"line%d\">Line %d has a %s in it.</p>\n", i+1, i+1, WebAppFindWord)
		}
		b.WriteString("<p><a id=\"dl\" href=\"/tools/download\">Download the CSV</a></p>\n")
		b.WriteString(toolsSelectionScript)
		b.WriteString("</body></html>\n")
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		rw.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(rw, b.String())
	})
	mux.HandleFunc("GET /tools/selected", func(rw http.ResponseWriter, _ *http.Request) {
		rw.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /tools/download", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/csv")
		rw.Header().Set("Content-Disposition", `attachment; filename="`+WebAppDownloadName+`"`)
		rw.Header().Set("Content-Length", strconv.Itoa(len(WebAppDownloadBody)))
		rw.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(rw, WebAppDownloadBody)
	})
	mux.HandleFunc("GET /tools/alerts", func(rw http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 1 || n > webAppMaxAlertsLoop {
			n = 100
		}
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		rw.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(rw, `<!doctype html><html><head><meta charset="utf-8"><title>Alerts</title></head><body><h1>Alerts</h1>
<script>
window.addEventListener('load', function () {
  setTimeout(function () {
    var done = 0;
    for (var i = 0; i < %d; i++) { alert('alert ' + (i + 1) + ' of %d'); done++; }
    fetch('/tools/alerts/done?n=' + done);
  }, 200);
});
</script></body></html>
`, n, n)
	})
	mux.HandleFunc("GET /tools/alerts/done", func(rw http.ResponseWriter, _ *http.Request) {
		rw.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /tools/upload", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		rw.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(rw, `<!doctype html><html><head><meta charset="utf-8"><title>Upload</title></head><body>
<h1>Upload</h1>
<input id="f" type="file" style="position:fixed;left:0;top:0;width:100%;height:100%;opacity:0.01;cursor:pointer">
<script>
document.getElementById('f').addEventListener('change', function (e) {
  var f = e.target.files[0];
  if (f) fetch('/tools/upload/done?name=' + encodeURIComponent(f.name) + '&size=' + f.size);
});
</script></body></html>
`)
	})
	mux.HandleFunc("GET /tools/upload/done", func(rw http.ResponseWriter, _ *http.Request) {
		rw.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /tools/auth", func(rw http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != WebAppAuthUser || p != WebAppAuthPassword {
			rw.Header().Set("WWW-Authenticate", `Basic realm="`+WebAppAuthRealm+`"`)
			http.Error(rw, "sign in", http.StatusUnauthorized)
			return
		}
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		rw.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(rw, "<!doctype html><title>Signed in</title><p>Signed in as "+u+"</p><script>fetch('/tools/auth/ok')</script>\n")
	})
	mux.HandleFunc("GET /tools/auth/ok", func(rw http.ResponseWriter, r *http.Request) {
		rw.WriteHeader(http.StatusNoContent) // reached only from the page served to a valid sign-in
	})
}
