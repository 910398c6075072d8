package discovery

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorded builds a probe result from testdata/http/NAME.txt (the answer to
// GET /) and, when the answer redirects, NAME.2.txt (the answer to the
// redirect target), as the prober would have.
func recorded(t testing.TB, name string, port int) *probeResult {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "http", name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	r := readAnswer(bytes.NewReader(raw), "/")
	second, err := os.ReadFile(filepath.Join("testdata", "http", name+".2.txt"))
	if errors.Is(err, os.ErrNotExist) {
		return &r
	}
	if err != nil {
		t.Fatal(err)
	}
	if r.first == nil {
		t.Fatalf("%s: not HTTP but has a .2 file", name)
	}
	next, ok := redirectPath(r.first, port)
	if !ok {
		t.Fatalf("%s: has a .2 file but no redirect to follow (status %d, Location %q)", name, r.first.status, r.first.header.Get("Location"))
	}
	r2 := readAnswer(bytes.NewReader(second), next)
	r.second = r2.first
	return &r
}

func banner(b string) *probeResult {
	r := readAnswer(strings.NewReader(b), "/")
	return &r
}

const home = "/home/alice"

func TestIdentifyRecorded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		file  string // testdata/http/FILE.txt
		pr    *probeResult
		port  int
		proc  *Process
		kind  Kind
		title string
		path  string
	}{
		{name: "jupyter lab, token", file: "jupyterlab", port: 8888, kind: KindJupyterLab, title: "Jupyter Lab", path: "/lab"},
		{name: "jupyter lab with process", file: "jupyterlab", port: 8888,
			proc: &Process{Name: "jupyter-lab", Cwd: "/home/alice/project", Cmdline: "/home/alice/.venv/bin/python3 /home/alice/.venv/bin/jupyter-lab --no-browser"},
			kind: KindJupyterLab, title: "Jupyter Lab — ~/project", path: "/lab"},
		{name: "jupyter lab under a base_url", file: "jupyterlab-open", port: 8888,
			proc: &Process{Name: "jupyterhub-sing", Cwd: "/home/alice", Cmdline: "/opt/conda/bin/python3.11 /opt/conda/bin/jupyterhub-singleuser --ServerApp.base_url=/user/alice/"},
			kind: KindJupyterLab, title: "Jupyter Lab — ~", path: "/user/alice/lab"},
		{name: "notebook 7", file: "notebook7", port: 8888, kind: KindJupyterNotebook, title: "Jupyter Notebook", path: "/tree"},
		{name: "classic notebook with notebook-dir", file: "notebook6", port: 8889,
			proc: &Process{Name: "jupyter-noteboo", Cwd: "/home/alice", Cmdline: "/usr/bin/python3 /usr/local/bin/jupyter-notebook --notebook-dir=/data/nb --no-browser"},
			kind: KindJupyterNotebook, title: "Jupyter Notebook — /data/nb", path: "/tree"},
		{name: "bare jupyter server, relative root", file: "jupyter-server", port: 8890,
			proc: &Process{Name: "jupyter-server", Cwd: "/home/alice", Cmdline: "python3 -m jupyter_server --ServerApp.root_dir=work"},
			kind: KindJupyterServer, title: "Jupyter Server — ~/work", path: "/"},
		{name: "jupyterhub", file: "jupyterhub", port: 8000, kind: KindJupyterHub, title: "JupyterHub", path: "/hub/"},
		{name: "tensorboard", file: "tensorboard", port: 6006,
			proc: &Process{Name: "tensorboard", Cwd: "/home/alice/exp", Cmdline: "/usr/bin/python3 /home/alice/.local/bin/tensorboard --logdir runs --port 6006"},
			kind: KindTensorBoard, title: "TensorBoard — runs/", path: "/"},
		{name: "tensorboard absolute logdir", file: "tensorboard", port: 6007,
			proc: &Process{Name: "python3", Cmdline: "python3 -m tensorboard.main --logdir=/home/alice/exp/logs/"},
			kind: KindTensorBoard, title: "TensorBoard — ~/exp/logs/", path: "/"},
		{name: "mlflow under gunicorn", file: "mlflow", port: 5000,
			proc: &Process{Name: "gunicorn", Cwd: "/home/alice/ml", Cmdline: "/usr/bin/python3 /home/alice/.local/bin/gunicorn -b 127.0.0.1:5000 -w 4 mlflow.server:app"},
			kind: KindMLflow, title: "MLflow — ~/ml", path: "/"},
		{name: "rstudio", file: "rstudio", port: 8787, kind: KindRStudio, title: "RStudio Server", path: "/"},
		{name: "streamlit", file: "streamlit", port: 8501,
			proc: &Process{Name: "streamlit", Cwd: "/home/alice/dash", Cmdline: "/usr/bin/python3 /home/alice/.local/bin/streamlit run app.py --server.port 8501"},
			kind: KindStreamlit, title: "Streamlit — app.py", path: "/"},
		{name: "gradio", file: "gradio", port: 7860,
			proc: &Process{Name: "python3", Cwd: "/home/alice/demo", Cmdline: "python3 -u demo.py"},
			kind: KindGradio, title: "Gradio — demo.py", path: "/"},
		{name: "code-server", file: "code-server", port: 8080,
			proc: &Process{Name: "node", Cwd: "/home/alice", Cmdline: "/usr/lib/code-server/lib/node /usr/lib/code-server --bind-addr 127.0.0.1:8080 /home/alice/proj"},
			kind: KindCodeServer, title: "code-server — ~/proj", path: "/"},
		{name: "grafana", file: "grafana", port: 3000, kind: KindGrafana, title: "Grafana", path: "/"},
		{name: "prometheus", file: "prometheus", port: 9090, kind: KindPrometheus, title: "Prometheus", path: "/"},
		{name: "ray dashboard", file: "ray", port: 8265, kind: KindRayDashboard, title: "Ray Dashboard", path: "/"},
		{name: "dask", file: "dask", port: 8787, kind: KindDask, title: "Dask", path: "/status"},
		{name: "airflow", file: "airflow", port: 8080, kind: KindAirflow, title: "Airflow", path: "/"},
		{name: "python http.server", file: "simplehttp", port: 8000,
			proc: &Process{Name: "python3", Cmdline: "python3 -m http.server"},
			kind: KindHTTP, title: "Directory listing for /", path: "/"},
		{name: "nginx, chunked", file: "nginx-chunked", port: 80, kind: KindHTTP, title: "Welcome to nginx!", path: "/"},
		{name: "generic http named by process", file: "nginx-chunked", port: 3001,
			proc: &Process{Name: "grafana", Cmdline: "/usr/share/grafana/bin/grafana server --homepath=/usr/share/grafana"},
			kind: KindGrafana, title: "Grafana", path: "/"},
		{name: "mongodb over http", file: "mongodb", port: 27017, kind: KindMongoDB, title: "MongoDB"},
		{name: "go tls server", file: "go-tls", port: 8443,
			proc: &Process{Name: "myapi", Cmdline: "/srv/myapi -tls"},
			kind: KindHTTPS, title: "myapi (HTTPS)", path: "/"},
		{name: "ssh banner", pr: banner("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"), port: 2222, kind: KindSSH, title: "SSH server"},
		{name: "mysql greeting", pr: banner("\x4a\x00\x00\x00\x0a8.0.36\x00\x0b\x00\x00\x00\x2a\x3b\x4c\x5d"), port: 3307, kind: KindMySQL, title: "MySQL"},
		{name: "mysql host not allowed", pr: banner("\x44\x00\x00\x00\xffj\x04Host '127.0.0.1' is not allowed to connect to this MySQL server"), port: 3306, kind: KindMySQL, title: "MySQL"},
		{name: "redis", pr: banner("-ERR wrong number of arguments for 'get' command\r\n"), port: 6380, kind: KindRedis, title: "Redis"},
		{name: "tls alert", pr: banner("\x15\x03\x03\x00\x02\x02\x46"), port: 9443, kind: KindHTTPS, title: "HTTPS", path: "/"},
		{name: "jupyter kernel zeromq", pr: banner("\xff\x00\x00\x00\x00\x00\x00\x00\x01\x7f"), port: 41231,
			proc: &Process{Name: "python", Cwd: "/home/alice/project", Cmdline: "/home/alice/.venv/bin/python -m ipykernel_launcher -f /home/alice/.local/share/jupyter/runtime/kernel-7c2e.json"},
			kind: KindJupyterKernel, title: "Jupyter kernel — ~/project"},
		{name: "silent postgres port", pr: &probeResult{proto: ProtoSilent}, port: 5432, kind: KindPostgres, title: "PostgreSQL"},
		{name: "silent, named by process", pr: &probeResult{proto: ProtoSilent}, port: 5433,
			proc: &Process{Name: "postgres", Cmdline: "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main"},
			kind: KindPostgres, title: "PostgreSQL"},
		{name: "silent unknown program", pr: &probeResult{proto: ProtoSilent}, port: 9999,
			proc: &Process{Name: "python3", Cmdline: "python3 worker.py --queue jobs"},
			kind: KindNotHTTP, title: "python3 — worker.py"},
		{name: "web app's non-http port", pr: banner("\x00\x00\x12\x04\x00\x00\x00\x00\x00"), port: 50051,
			proc: &Process{Name: "tensorboard", Cmdline: "tensorboard --logdir x --grpc_data_provider"},
			kind: KindNotHTTP, title: "TensorBoard (not HTTP)"},
		{name: "unreachable jupyter", pr: &probeResult{proto: ProtoNone, err: errors.New("dial: refused")}, port: 8888,
			proc: &Process{Name: "jupyter-lab", Cwd: "/home/alice/nb", Cmdline: "python3 /usr/local/bin/jupyter-lab"},
			kind: KindJupyterLab, title: "Jupyter Lab — ~/nb", path: "/lab"},
		{name: "unreachable unknown", pr: &probeResult{proto: ProtoNone}, port: 1234, kind: KindUnknown, title: "Unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr := tc.pr
			if tc.file != "" {
				pr = recorded(t, tc.file, tc.port)
			}
			id := identify(tc.port, tc.proc, pr, home)
			if id.kind != tc.kind || id.title != tc.title || id.openPath != tc.path {
				t.Errorf("= %v %q %q, want %v %q %q", id.kind, id.title, id.openPath, tc.kind, tc.title, tc.path)
			}
			if id.kind.IsWeb() != (tc.path != "") {
				t.Errorf("IsWeb = %v for %v", id.kind.IsWeb(), id.kind)
			}
		})
	}
}

func TestRecordedProbeDetails(t *testing.T) {
	r := recorded(t, "jupyterlab", 8888)
	pi := r.info()
	if pi.Protocol != ProtoHTTP || pi.Status != 302 || pi.Server != "TornadoServer/6.4.1" || pi.Location != "/lab" || pi.Path != "/lab" {
		t.Errorf("jupyterlab probe info = %+v", pi)
	}
	s := recorded(t, "streamlit", 8501)
	if !strings.Contains(strings.Join(s.first.cookieNames, ","), "_streamlit_xsrf") {
		t.Errorf("cookie names = %v", s.first.cookieNames)
	}
	if s.first.header.Get("Set-Cookie") != "" {
		t.Error("Set-Cookie values are kept; they may hold secrets")
	}
	g := recorded(t, "grafana", 3000)
	if g.second == nil || g.second.path != "/login" || g.info().PageTitle != "Grafana" {
		t.Errorf("grafana redirect not followed: %+v", g.info())
	}
	c := recorded(t, "code-server", 8080)
	if c.second == nil || c.second.path != "/login?to=%2F" {
		t.Errorf("code-server relative redirect resolved to %+v", c.second)
	}
	if b := banner("SSH-2.0-OpenSSH_9.2p1\r\n").info(); b.Protocol != ProtoSSH || b.Banner != "SSH-2.0-OpenSSH_9.2p1" {
		t.Errorf("ssh banner info = %+v", b)
	}
}

func TestKindFromProcess(t *testing.T) {
	for _, tc := range []struct {
		name, cmd string
		want      Kind
	}{
		{"jupyter-lab", "/usr/bin/python3 /home/a/.local/bin/jupyter-lab", KindJupyterLab},
		{"python3", "python3 -m jupyterlab --port 8888", KindJupyterLab},
		{"jupyter", "/opt/conda/bin/jupyter lab --no-browser", KindJupyterLab},
		{"jupyter-notebook", "/usr/bin/python3 /usr/bin/jupyter-notebook", KindJupyterNotebook},
		{"python", "python -m notebook", KindJupyterNotebook},
		{"jupyter-server", "/usr/bin/python3 /usr/bin/jupyter-server", KindJupyterServer},
		{"jupyterhub", "/usr/bin/python3 /usr/local/bin/jupyterhub -f /etc/jupyterhub/config.py", KindJupyterHub},
		{"python", "python -m ipykernel_launcher -f /run/kernel-1.json", KindJupyterKernel},
		{"tensorboard", "python3 /usr/local/bin/tensorboard --logdir runs", KindTensorBoard},
		{"mlflow", "/usr/bin/python3 /usr/local/bin/mlflow server --host 127.0.0.1", KindMLflow},
		{"mlflow", "mlflow ui", KindMLflow},
		{"uvicorn", "python3 -m uvicorn mlflow.server.fastapi_app:app --port 5000", KindMLflow},
		{"rserver", "/usr/lib/rstudio-server/bin/rserver", KindRStudio},
		{"streamlit", "/usr/bin/python3 /usr/local/bin/streamlit run app.py", KindStreamlit},
		{"gradio", "/usr/bin/python3 /usr/local/bin/gradio app.py", KindGradio},
		{"node", "/usr/lib/code-server/lib/node /usr/lib/code-server/out/node/entry", KindCodeServer},
		{"grafana", "/usr/share/grafana/bin/grafana server --config=/etc/grafana/grafana.ini", KindGrafana},
		{"grafana-server", "/usr/sbin/grafana-server --config=/etc/grafana/grafana.ini", KindGrafana},
		{"prometheus", "/usr/bin/prometheus --config.file=/etc/prometheus/prometheus.yml", KindPrometheus},
		{"python", "/usr/bin/python -u /opt/ray/lib/python3.10/site-packages/ray/dashboard/dashboard.py --host=127.0.0.1", KindRayDashboard},
		{"dask-scheduler", "/usr/bin/python3 /usr/local/bin/dask-scheduler", KindDask},
		{"dask", "/usr/bin/python3 /usr/local/bin/dask scheduler --port 8786", KindDask},
		{"airflow", "/usr/bin/python3 /usr/local/bin/airflow webserver", KindAirflow},
		{"gunicorn", "gunicorn: master [airflow-webserver]", KindAirflow},
		{"postgres", "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main", KindPostgres},
		{"mysqld", "/usr/sbin/mysqld", KindMySQL},
		{"redis-server", "redis-server 127.0.0.1:6379", KindRedis},
		{"mongod", "/usr/bin/mongod --config /etc/mongod.conf", KindMongoDB},
		{"python3", "python3 train.py --tensorboard-dir runs", KindUnknown},
		{"node", "node server.js", KindUnknown},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			if got := kindFromProcess(&Process{Name: tc.name, Cmdline: tc.cmd}); got != tc.want {
				t.Errorf("= %v, want %v", got, tc.want)
			}
		})
	}
	if kindFromProcess(nil) != KindUnknown {
		t.Error("nil process is not unknown")
	}
}

func TestRedirectPath(t *testing.T) {
	for _, tc := range []struct {
		status   int
		loc, cur string
		want     string
	}{
		{302, "/lab", "/", "/lab"},
		{302, "status", "/", "/status"},
		{302, "./login?to=%2F", "/", "/login?to=%2F"},
		{301, "http://localhost:8787/auth-sign-in?appUri=%2F", "/", "/auth-sign-in?appUri=%2F"},
		{302, "http://127.0.0.1:8787/x", "/", "/x"},
		{302, "http://localhost:9999/x", "/", ""},    // another port
		{302, "https://localhost:8787/x", "/", ""},   // another scheme
		{302, "http://example.com:8787/x", "/", ""},  // another host
		{302, "//evil.example:8787/x", "/", ""},      // scheme-relative elsewhere
		{302, "/", "/", ""},                          // a loop
		{200, "/lab", "/", ""},                       // not a redirect
		{302, "", "/", ""},                           // no Location
		{302, "mailto:someone@example.com", "/", ""}, // not http
	} {
		t.Run(tc.loc, func(t *testing.T) {
			r := &response{path: tc.cur, status: tc.status, header: map[string][]string{}}
			if tc.loc != "" {
				r.header.Set("Location", tc.loc)
			}
			got, ok := redirectPath(r, 8787)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("= %q %v, want %q", got, ok, tc.want)
			}
		})
	}
}

var titleCases = []struct {
	body, want string
}{
	{"<html><head><title>JupyterLab</title></head>", "JupyterLab"},
	{"<TITLE lang=en>\n  Sign In -\n  Airflow\n</TITLE>", "Sign In - Airflow"},
	{"<title>Tom &amp; Jerry&#39;s</title>", "Tom & Jerry's"},
	{"<titlebar>x</titlebar><title>Real</title>", "Real"},
	{"<title>unterminated", ""},
	{"no title here", ""},
	{"<title", ""},
	{"<title>" + strings.Repeat("é", 150) + "</title>", strings.Repeat("é", 100)},
}

func TestHTMLTitle(t *testing.T) {
	for _, tc := range titleCases {
		t.Run(tc.want, func(t *testing.T) {
			if got := htmlTitle([]byte(tc.body)); got != tc.want {
				t.Errorf("= %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDisplayTitleHelpers(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/home/alice", "~"},
		{"/home/alice/project", "~/project"},
		{"/home/alicexyz", "/home/alicexyz"},
		{"/srv/x", "/srv/x"},
		{"", ""},
	} {
		if got := tildePath(tc.in, "/home/alice/"); got != tc.want {
			t.Errorf("tildePath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ cmd, want string }{
		{"python3 app.py", "app.py"},
		{"python3 -u /srv/demo/app.py --port 1", "app.py"},
		{"python3.11 -m http.server 8000", "http.server"},
		{"node server.js", "server.js"},
		{"java -Xmx1g -jar /opt/app/app.jar", "app.jar"},
		{"python3 -c print(1)", ""},
		{"/usr/bin/caddy run", ""},
		{"", ""},
	} {
		if got := scriptName(strings.Fields(tc.cmd)); got != tc.want {
			t.Errorf("scriptName(%q) = %q, want %q", tc.cmd, got, tc.want)
		}
	}
}

func TestKindText(t *testing.T) {
	for k := Kind(0); k < kindCount; k++ {
		b, err := k.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Kind
		if err := back.UnmarshalText(b); err != nil || back != k {
			t.Errorf("%v: round trip via %q gave %v, %v", k, b, back, err)
		}
		if k.String() == "" || strings.HasPrefix(k.String(), "Kind(") {
			t.Errorf("kind %d has no name", int(k))
		}
	}
	if _, err := Kind(-1).MarshalText(); err == nil {
		t.Error("Kind(-1) encoded")
	}
	var k Kind
	if err := k.UnmarshalText([]byte("nope")); err == nil {
		t.Error("unknown kind decoded")
	}
	if KindJupyterLab.String() != "Jupyter Lab" || KindJupyterLab.DefaultPath() != "/lab" || !KindJupyterLab.IsWeb() || KindPostgres.IsWeb() {
		t.Error("Jupyter Lab / PostgreSQL kind table is wrong")
	}
	for s := Scope(0); s < 3; s++ {
		b, _ := s.MarshalText()
		var back Scope
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("scope %v round trip: %v %v", s, back, err)
		}
	}
	for p := Protocol(0); p < protoCount; p++ {
		b, _ := p.MarshalText()
		var back Protocol
		if err := back.UnmarshalText(b); err != nil || back != p {
			t.Errorf("protocol %v round trip: %v %v", p, back, err)
		}
	}
}

func FuzzReadAnswer(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "http", "*.txt"))
	for _, fn := range files {
		b, err := os.ReadFile(fn)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, b := range []string{"SSH-2.0-x\r\n", "\x15\x03\x03\x00\x02\x02\x46", "-ERR x\r\n", "\xff\x00\x00\x00\x00\x00\x00\x00\x01\x7f", "HTTP/1.1 302 Found\r\nLocation: //x\r\n\r\n", "HTTP/"} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := readAnswer(bytes.NewReader(b), "/")
		if r.proto == ProtoHTTP && r.first == nil {
			t.Fatal("HTTP without a response")
		}
		if r.first != nil {
			if len(r.first.body) > maxProbeRead {
				t.Fatalf("read %d bytes of body", len(r.first.body))
			}
			redirectPath(r.first, 8888)
		}
		id := identify(8888, &Process{Name: "x", Cmdline: string(b[:min(len(b), 64)])}, &r, home)
		if id.kind < 0 || id.kind >= kindCount || (id.kind.IsWeb() && id.openPath == "") {
			t.Fatalf("identity %+v", id)
		}
	})
}

func FuzzHTMLTitle(f *testing.F) {
	for _, tc := range titleCases {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := htmlTitle(b)
		if len(s) > 200 || strings.ContainsAny(s, "\n\t") {
			t.Fatalf("title %q", s)
		}
	})
}
