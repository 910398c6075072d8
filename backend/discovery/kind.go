package discovery

import (
	"fmt"
)

// Kind is what a listener was identified as.
type Kind int

// The kinds of listener discovery recognises. The zero value is KindUnknown.
const (
	KindUnknown         Kind = iota // nothing could be learned (e.g. the probe could not connect)
	KindHTTP                        // an HTTP server that is none of the apps below
	KindHTTPS                       // speaks TLS; probably HTTPS
	KindNotHTTP                     // answers, or stays silent, but not in HTTP
	KindJupyterLab                  // JupyterLab (jupyter lab)
	KindJupyterNotebook             // Jupyter Notebook: classic (<7) or Notebook 7 (jupyter notebook)
	KindJupyterServer               // a bare Jupyter Server (jupyter server), no known front end
	KindJupyterHub                  // JupyterHub
	KindJupyterKernel               // a Jupyter kernel's ZeroMQ ports (not a web app)
	KindTensorBoard
	KindMLflow
	KindRStudio // RStudio Server / Posit Workbench
	KindStreamlit
	KindGradio
	KindCodeServer
	KindGrafana
	KindPrometheus
	KindRayDashboard
	KindDask // the Dask distributed dashboard
	KindAirflow
	KindPostgres
	KindMySQL
	KindRedis
	KindMongoDB
	KindSSH // an SSH server (other than the sshd Porthole came in through)
	kindCount
)

type kindInfo struct {
	name string // display name
	id   string // stable identifier for JSON
	web  bool   // opens in a browser tab
	path string // preferred path to open
}

var kinds = [kindCount]kindInfo{
	KindUnknown:         {"Unknown", "unknown", false, ""},
	KindHTTP:            {"Web app", "http", true, "/"},
	KindHTTPS:           {"HTTPS", "https", true, "/"},
	KindNotHTTP:         {"Not HTTP", "not-http", false, ""},
	KindJupyterLab:      {"Jupyter Lab", "jupyter-lab", true, "/lab"},
	KindJupyterNotebook: {"Jupyter Notebook", "jupyter-notebook", true, "/tree"},
	KindJupyterServer:   {"Jupyter Server", "jupyter-server", true, "/"},
	KindJupyterHub:      {"JupyterHub", "jupyterhub", true, "/hub/"},
	KindJupyterKernel:   {"Jupyter kernel", "jupyter-kernel", false, ""},
	KindTensorBoard:     {"TensorBoard", "tensorboard", true, "/"},
	KindMLflow:          {"MLflow", "mlflow", true, "/"},
	KindRStudio:         {"RStudio Server", "rstudio", true, "/"},
	KindStreamlit:       {"Streamlit", "streamlit", true, "/"},
	KindGradio:          {"Gradio", "gradio", true, "/"},
	KindCodeServer:      {"code-server", "code-server", true, "/"},
	KindGrafana:         {"Grafana", "grafana", true, "/"},
	KindPrometheus:      {"Prometheus", "prometheus", true, "/"},
	KindRayDashboard:    {"Ray Dashboard", "ray-dashboard", true, "/"},
	KindDask:            {"Dask", "dask", true, "/status"},
	KindAirflow:         {"Airflow", "airflow", true, "/"},
	KindPostgres:        {"PostgreSQL", "postgres", false, ""},
	KindMySQL:           {"MySQL", "mysql", false, ""},
	KindRedis:           {"Redis", "redis", false, ""},
	KindMongoDB:         {"MongoDB", "mongodb", false, ""},
	KindSSH:             {"SSH server", "ssh", false, ""},
}

func (k Kind) info() kindInfo {
	if k < 0 || k >= kindCount {
		return kindInfo{name: fmt.Sprintf("Kind(%d)", int(k)), id: fmt.Sprintf("kind-%d", int(k))}
	}
	return kinds[k]
}

// String is the display name, e.g. "Jupyter Lab".
func (k Kind) String() string { return k.info().name }

// IsWeb reports whether the kind is an app to open in a browser tab.
func (k Kind) IsWeb() bool { return k.info().web }

// DefaultPath is the path an app of this kind is best opened at ("/lab" for
// Jupyter Lab), "" for kinds that are not web apps.
func (k Kind) DefaultPath() string { return k.info().path }

// MarshalText encodes the kind as a stable identifier such as "jupyter-lab".
func (k Kind) MarshalText() ([]byte, error) {
	if k < 0 || k >= kindCount {
		return nil, fmt.Errorf("discovery: cannot encode unknown kind %d", int(k))
	}
	return []byte(kinds[k].id), nil
}

// UnmarshalText decodes an identifier written by MarshalText.
func (k *Kind) UnmarshalText(b []byte) error {
	for i := range kinds {
		if kinds[i].id == string(b) {
			*k = Kind(i)
			return nil
		}
	}
	return fmt.Errorf("discovery: unknown kind %q", b)
}

func (k Kind) isJupyter() bool {
	return k == KindJupyterLab || k == KindJupyterNotebook || k == KindJupyterServer
}

// Scope says which addresses a listener is bound to.
type Scope int

const (
	// ScopeLoopback: bound to loopback addresses only (127.0.0.1, ::1, 127.0.0.53…).
	ScopeLoopback Scope = iota
	// ScopeAll: bound to all interfaces (0.0.0.0 or ::), so reachable from the
	// network too; Porthole still reaches it over loopback.
	ScopeAll
	// ScopeSpecific: bound only to specific non-loopback addresses (a LAN or
	// container-bridge address). Kept, because the server can reach it at that
	// address; DialHost is that address.
	ScopeSpecific
)

var scopeNames = [...]string{"loopback", "all", "specific"}

func (s Scope) String() string {
	if s < 0 || int(s) >= len(scopeNames) {
		return fmt.Sprintf("Scope(%d)", int(s))
	}
	return scopeNames[s]
}

// MarshalText encodes the scope as its String.
func (s Scope) MarshalText() ([]byte, error) {
	if s < 0 || int(s) >= len(scopeNames) {
		return nil, fmt.Errorf("discovery: cannot encode unknown scope %d", int(s))
	}
	return []byte(scopeNames[s]), nil
}

// UnmarshalText decodes a scope written by MarshalText.
func (s *Scope) UnmarshalText(b []byte) error {
	for i, n := range scopeNames {
		if n == string(b) {
			*s = Scope(i)
			return nil
		}
	}
	return fmt.Errorf("discovery: unknown scope %q", b)
}

// Protocol is what the probe heard on a port.
type Protocol int

const (
	ProtoNone   Protocol = iota // not probed, or could not connect
	ProtoHTTP                   // an HTTP response
	ProtoTLS                    // a TLS alert or Go's "HTTP request to an HTTPS server"
	ProtoSSH                    // an SSH banner
	ProtoSilent                 // connected, but nothing came back before the timeout or close
	ProtoOther                  // bytes that are not HTTP
	protoCount
)

var protoNames = [protoCount]string{"none", "http", "tls", "ssh", "silent", "other"}

func (p Protocol) String() string {
	if p < 0 || p >= protoCount {
		return fmt.Sprintf("Protocol(%d)", int(p))
	}
	return protoNames[p]
}

// MarshalText encodes the protocol as its String.
func (p Protocol) MarshalText() ([]byte, error) {
	if p < 0 || p >= protoCount {
		return nil, fmt.Errorf("discovery: cannot encode unknown protocol %d", int(p))
	}
	return []byte(protoNames[p]), nil
}

// UnmarshalText decodes a protocol written by MarshalText.
func (p *Protocol) UnmarshalText(b []byte) error {
	for i, n := range protoNames {
		if n == string(b) {
			*p = Protocol(i)
			return nil
		}
	}
	return fmt.Errorf("discovery: unknown protocol %q", b)
}

// Source says how a host's listeners were listed.
type Source int

const (
	SourceNone    Source = iota // no tool was available: nothing listed
	SourceProc                  // Linux /proc/net/tcp{,6} and /proc/PID/fd
	SourceLsof                  // lsof (macOS, BSD)
	SourceNetstat               // netstat -an: ports only, no processes
	SourceLocal                 // this computer, through gopsutil
	sourceCount
)

var sourceNames = [sourceCount]string{"none", "proc", "lsof", "netstat", "local"}

func (s Source) String() string {
	if s < 0 || s >= sourceCount {
		return fmt.Sprintf("Source(%d)", int(s))
	}
	return sourceNames[s]
}
