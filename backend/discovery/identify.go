package discovery

import (
	"bytes"
	"net/url"
	"path"
	"strings"
)

// identity is what a listener was identified as.
type identity struct {
	kind     Kind
	title    string
	openPath string
	tls      bool
}

// identify combines what the probe heard and what the process is.
func identify(port int, proc *Process, pr *probeResult, home string) identity {
	kp := kindFromProbe(pr)
	kc := kindFromProcess(proc)
	kind, notHTTP := combineKinds(kp, kc, pr.proto)
	if kind == KindNotHTTP && !notHTTP {
		kind = kindFromPort(port, kind)
	}
	id := identity{kind: kind, tls: pr.proto == ProtoTLS}
	id.title = displayTitle(kind, proc, pr, home)
	if notHTTP {
		// The process is a known web app, but this port of it does not speak
		// HTTP (a helper or gRPC port).
		id.title = kc.String() + " (not HTTP)"
	}
	if kind.IsWeb() {
		id.openPath = openPath(kind, proc, pr)
	}
	return id
}

// combineKinds picks the kind. notHTTP is true when the process is a known
// web app but the probe found no HTTP on this port.
func combineKinds(kp, kc Kind, proto Protocol) (kind Kind, notHTTP bool) {
	generic := func(k Kind) bool {
		return k == KindUnknown || k == KindHTTP || k == KindHTTPS || k == KindNotHTTP
	}
	switch {
	case kp.isJupyter() && kc.isJupyter():
		// The command line names the front end (jupyter lab / notebook);
		// a bare or single-user server is better told by the probe.
		if kc == KindJupyterServer {
			return kp, false
		}
		return kc, false
	case kc == KindJupyterKernel:
		return kc, false
	case !generic(kp):
		return kp, false
	case !generic(kc):
		if kc.IsWeb() && (proto == ProtoSSH || proto == ProtoOther || proto == ProtoSilent) {
			return KindNotHTTP, true
		}
		return kc, false
	}
	return kp, false
}

// kindFromPort names well-known non-HTTP services by their port.
func kindFromPort(port int, k Kind) Kind {
	switch port {
	case 5432:
		return KindPostgres
	case 3306:
		return KindMySQL
	case 6379:
		return KindRedis
	case 27017:
		return KindMongoDB
	}
	return k
}

// kindFromProbe identifies from the probe alone; KindUnknown when the probe
// could not connect.
func kindFromProbe(pr *probeResult) Kind {
	switch pr.proto {
	case ProtoHTTP:
		return kindFromHTTP(pr.first, pr.second)
	case ProtoTLS:
		return KindHTTPS
	case ProtoSSH:
		return KindSSH
	case ProtoOther:
		switch {
		case isMySQLGreeting(pr.banner):
			return KindMySQL
		case isRedisReply(pr.banner):
			return KindRedis
		}
		return KindNotHTTP
	case ProtoSilent:
		return KindNotHTTP
	}
	return KindUnknown
}

// isMySQLGreeting: a MySQL/MariaDB server speaks first with a handshake
// packet (3-byte length, sequence 0, protocol version 10) or an error packet.
func isMySQLGreeting(b []byte) bool {
	if len(b) < 5 || b[3] != 0 {
		return false
	}
	n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
	return n > 0 && n < 4096 && (b[4] == 0x0a || b[4] == 0xff)
}

// isRedisReply: Redis answers the inline command "GET / HTTP/1.1" with an
// error reply.
func isRedisReply(b []byte) bool {
	for _, p := range []string{"-ERR ", "-NOAUTH", "-DENIED", "-WRONGPASS"} {
		if bytes.HasPrefix(b, []byte(p)) {
			return true
		}
	}
	return false
}

// httpEvidence is what the probe's responses say, lower-cased for matching.
type httpEvidence struct {
	titles    []string
	servers   []string
	locations []string // Location headers, as sent
	cookies   []string
	csp       string
	body      []byte
}

func (e *httpEvidence) title(sub string) bool {
	for _, t := range e.titles {
		if strings.Contains(t, sub) {
			return true
		}
	}
	return false
}

func (e *httpEvidence) titleIs(t string) bool {
	for _, x := range e.titles {
		if x == t {
			return true
		}
	}
	return false
}

func (e *httpEvidence) server(sub string) bool {
	for _, s := range e.servers {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func (e *httpEvidence) cookie(name string) bool {
	for _, c := range e.cookies {
		if c == name {
			return true
		}
	}
	return false
}

// location reports whether a Location's path (query dropped) satisfies f.
func (e *httpEvidence) locationPath(f func(p string) bool) bool {
	for _, l := range e.locations {
		u, err := url.Parse(l)
		if err != nil {
			continue
		}
		if f(u.Path) {
			return true
		}
	}
	return false
}

func (e *httpEvidence) location(sub string) bool {
	for _, l := range e.locations {
		if strings.Contains(strings.ToLower(l), sub) {
			return true
		}
	}
	return false
}

func (e *httpEvidence) bodyHas(sub string) bool {
	return bytes.Contains(e.body, []byte(sub))
}

func gatherHTTP(rs ...*response) *httpEvidence {
	e := &httpEvidence{}
	for _, r := range rs {
		if r == nil {
			continue
		}
		if r.title != "" {
			e.titles = append(e.titles, strings.ToLower(r.title))
		}
		if s := r.header.Get("Server"); s != "" {
			e.servers = append(e.servers, strings.ToLower(s))
		}
		if l := r.header.Get("Location"); l != "" {
			e.locations = append(e.locations, l)
		}
		e.cookies = append(e.cookies, r.cookieNames...)
		if c := r.header.Get("Content-Security-Policy"); c != "" {
			e.csp += strings.ToLower(c) + ";"
		}
		e.body = append(e.body, bytes.ToLower(r.body)...)
		e.body = append(e.body, '\n')
	}
	return e
}

// kindFromHTTP identifies a web app from its responses to GET / and, when
// it redirected, to the page it redirected to. The signals are the ones the
// apps really send (see testdata/http/*.txt for recorded examples).
func kindFromHTTP(rs ...*response) Kind {
	e := gatherHTTP(rs...)
	tornado := e.server("tornadoserver")
	hasSuffix := func(s string) func(string) bool {
		return func(p string) bool { return strings.HasSuffix(p, s) }
	}
	switch {
	case e.title("jupyterhub") || e.locationPath(func(p string) bool { return strings.HasPrefix(p, "/hub/") }):
		return KindJupyterHub
	case isJupyter(e, tornado):
		switch {
		case e.titleIs("jupyterlab") || e.locationPath(hasSuffix("/lab")) || e.location("next=%2flab") ||
			e.bodyHas(`"appname": "jupyterlab"`) || e.bodyHas(`"appname":"jupyterlab"`):
			return KindJupyterLab
		case e.titleIs("jupyter notebook") || e.locationPath(hasSuffix("/tree")) || e.location("next=%2ftree") ||
			e.bodyHas(`"appname": "jupyter notebook"`) || e.bodyHas(`"appname":"jupyter notebook"`):
			return KindJupyterNotebook
		}
		return KindJupyterServer
	case e.titleIs("tensorboard") || e.bodyHas("<tf-tensorboard") || e.bodyHas("<tb-webapp"):
		return KindTensorBoard
	case e.title("mlflow"):
		return KindMLflow
	case e.title("rstudio") || e.title("posit workbench") || e.locationPath(hasSuffix("/auth-sign-in")):
		return KindRStudio
	case e.titleIs("streamlit") || e.cookie("_streamlit_xsrf") || e.bodyHas("/_stcore/"):
		return KindStreamlit
	case e.titleIs("gradio") || e.bodyHas("window.gradio_config") || e.bodyHas("<gradio-app"):
		return KindGradio
	case e.title("code-server") || e.bodyHas(`id="coder-options"`):
		return KindCodeServer
	case e.title("grafana") || e.cookie("grafana_session") || (e.cookie("redirect_to") && e.locationPath(hasSuffix("/login"))):
		return KindGrafana
	case e.title("prometheus") || e.locationPath(func(p string) bool { return p == "/graph" || p == "/query" }):
		return KindPrometheus
	case e.title("ray dashboard"):
		return KindRayDashboard
	case e.title("dask") || (e.server("tornadoserver") && e.locationPath(func(p string) bool { return p == "status" || p == "/status" })):
		return KindDask
	case e.title("airflow") || (e.server("gunicorn") && e.locationPath(func(p string) bool { return p == "/home" || strings.HasSuffix(p, "/login/") })):
		return KindAirflow
	case e.bodyHas("mongodb over http on the native driver port"):
		return KindMongoDB
	}
	return KindHTTP
}

// isJupyter: Jupyter servers (jupyter_server and the classic notebook) send
// a Content-Security-Policy with report-uri …/api/security/csp-report, and
// name themselves in titles and page config.
func isJupyter(e *httpEvidence, tornado bool) bool {
	switch {
	case strings.Contains(e.csp, "/api/security/csp-report"):
		return true
	case e.titleIs("jupyterlab") || e.titleIs("jupyter notebook") || e.titleIs("jupyter server"):
		return true
	case e.bodyHas(`id="jupyter-config-data"`) || e.bodyHas("a jupyter server is running"):
		return true
	case tornado && (e.location("/lab") || e.location("/tree")):
		return true
	}
	return false
}

// cmdTokens splits a command line into arguments (no quoting: /proc and ps
// join arguments with spaces).
func cmdTokens(p *Process) []string {
	if p == nil {
		return nil
	}
	return strings.Fields(p.Cmdline)
}

// kindFromProcess identifies from the command line and process name.
func kindFromProcess(p *Process) Kind {
	if p == nil {
		return KindUnknown
	}
	toks := cmdTokens(p)
	base := make([]string, len(toks))
	for i, t := range toks {
		base[i] = strings.ToLower(path.Base(t))
	}
	name := strings.ToLower(p.Name)
	has := func(b string) bool {
		for _, x := range base {
			if x == b {
				return true
			}
		}
		return name == b
	}
	// after reports whether b is followed by one of next (as "jupyter lab").
	after := func(b string, next ...string) bool {
		for i, x := range base[:max(0, len(base)-1)] {
			if x != b {
				continue
			}
			for _, n := range next {
				if base[i+1] == n {
					return true
				}
			}
		}
		return false
	}
	module := func(m string) bool { return after("-m", m) }
	contains := func(sub string) bool { return strings.Contains(strings.ToLower(p.Cmdline), sub) }
	switch {
	case contains("ipykernel_launcher") || module("ipykernel"):
		return KindJupyterKernel
	case has("jupyterhub-singleuser"):
		return KindJupyterServer
	case has("jupyterhub"):
		return KindJupyterHub
	case has("jupyter-lab") || after("jupyter", "lab") || module("jupyterlab"):
		return KindJupyterLab
	case has("jupyter-notebook") || after("jupyter", "notebook") || module("notebook"):
		return KindJupyterNotebook
	case has("jupyter-server") || after("jupyter", "server") || module("jupyter_server"):
		return KindJupyterServer
	case has("tensorboard") || module("tensorboard") || contains("tensorboard/main.py"):
		return KindTensorBoard
	case after("mlflow", "server", "ui") || contains("mlflow.server"):
		return KindMLflow
	case has("rserver") || has("rstudio-server"):
		return KindRStudio
	case after("streamlit", "run") || module("streamlit"):
		return KindStreamlit
	case has("gradio"):
		return KindGradio
	case contains("code-server"):
		return KindCodeServer
	case has("grafana-server") || after("grafana", "server"):
		return KindGrafana
	case has("prometheus"):
		return KindPrometheus
	case contains("ray/dashboard/dashboard.py"):
		return KindRayDashboard
	case has("dask-scheduler") || has("dask-worker") || after("dask", "scheduler", "worker") ||
		contains("distributed.cli.dask_scheduler") || contains("distributed.cli.dask_worker"):
		return KindDask
	case after("airflow", "webserver", "api-server", "api_server") || contains("[airflow-webserver]") || contains("airflow-webserver"):
		return KindAirflow
	case has("postgres") || has("postmaster") || strings.HasPrefix(name, "postgres"):
		return KindPostgres
	case has("mysqld") || has("mariadbd") || has("mariadb"):
		return KindMySQL
	case has("redis-server") || has("valkey-server") || strings.HasPrefix(name, "redis-server"):
		return KindRedis
	case has("mongod"):
		return KindMongoDB
	case has("sshd") || has("dropbear"):
		return KindSSH
	}
	return KindUnknown
}

// isSSHD reports whether p is an OpenSSH daemon process (the listener, or the
// per-session process that owns forwarded ports).
func isSSHD(p *Process) bool {
	if p == nil {
		return false
	}
	switch p.Name {
	case "sshd", "sshd-session", "sshd-auth":
		return true
	}
	return strings.HasPrefix(p.Cmdline, "sshd:")
}

// openPath is where to open a web app: the front end's path for Jupyter
// (following its base_url when it redirected there), else the kind's default.
func openPath(kind Kind, proc *Process, pr *probeResult) string {
	if kind.isJupyter() {
		want := "/" + strings.TrimPrefix(kind.DefaultPath(), "/")
		if pr.first != nil {
			if loc := pr.first.header.Get("Location"); loc != "" {
				if u, err := url.Parse(loc); err == nil && u.Host == "" && strings.HasPrefix(u.Path, "/") &&
					(strings.HasSuffix(u.Path, "/lab") || strings.HasSuffix(u.Path, "/tree")) {
					return u.Path
				}
			}
		}
		if base := cmdOption(cmdTokens(proc), "base_url"); base != "" && base != "/" {
			return strings.TrimSuffix("/"+strings.Trim(base, "/"), "/") + want
		}
		return want
	}
	return kind.DefaultPath()
}

// cmdOption finds a traitlets-style or GNU option whose name ends with
// suffix: "--ServerApp.root_dir=X", "--notebook-dir X", "--logdir=X".
func cmdOption(toks []string, suffixes ...string) string {
	for i, t := range toks {
		if !strings.HasPrefix(t, "-") {
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(t, "-"), "=")
		lname := strings.ToLower(strings.ReplaceAll(name, "-", "_"))
		for _, s := range suffixes {
			if lname == s || strings.HasSuffix(lname, "."+s) {
				if hasVal {
					return strings.Trim(val, `"'`)
				}
				if i+1 < len(toks) && !strings.HasPrefix(toks[i+1], "-") {
					return toks[i+1]
				}
			}
		}
	}
	return ""
}
