// Package discovery finds what listens on a host and what it is: it lists the
// listening TCP sockets with their processes (one exec of a POSIX sh script on
// a server, gopsutil on this computer), probes each port once with one HTTP
// request, and identifies the app ("Jupyter Lab — ~/project",
// "TensorBoard — runs/"). A Scanner keeps the results per host so that
// refreshing every few seconds probes only new listeners.
//
// discovery imports nothing of Porthole's: the SSH side comes in through the
// Execer and Dialer interfaces declared here.
package discovery

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// Execer runs one command on the server (an SSH "exec" session) and returns
// its stdout. The command goes to the login's shell, like `ssh host 'cmd'`.
type Execer interface {
	Exec(ctx context.Context, cmd string) (stdout []byte, err error)
}

// Dialer opens a TCP connection to host:port as seen from the server (a
// direct-tcpip channel).
type Dialer interface {
	Dial(ctx context.Context, host string, port int) (net.Conn, error)
}

// LazyDialer is a Dialer whose connections can also connect lazily: DialLazy
// does nothing on the network and the connection connects when it is first
// read, sending what was written before. A failure to connect then comes
// from that Read, wrapping ErrNotConnected. The probe uses it so that one
// probe of a port is one connection to it (not a connect check and then the
// request): on a server, every connection to a port such as sshd's shows up
// in its log (kex_exchange_identification) and counts against its
// MaxStartups.
type LazyDialer interface {
	Dialer
	DialLazy(ctx context.Context, host string, port int) (net.Conn, error)
}

// ErrNotConnected is wrapped by a LazyDialer connection's Read when the
// connection could not be made (nothing was sent).
var ErrNotConnected = errors.New("could not connect")

// ErrBadOutput means a discovery script's output did not come back in the
// expected format (no "porthole-… v1" header): the server did not run the
// script, e.g. the login shell is csh, or something replaced its stdout.
var ErrBadOutput = errors.New("discovery script output not understood")

// Service is one listening TCP port of a host and what it was identified as.
// A port is listed once even when it is bound on several addresses (e.g. the
// 0.0.0.0 and :: pair).
type Service struct {
	Port int `json:"port"`
	// Addrs are the addresses the port is bound on (0.0.0.0, ::, 127.0.0.1…),
	// IPv4-mapped IPv6 addresses unmapped.
	Addrs []netip.Addr `json:"addrs"`
	Scope Scope        `json:"scope"`
	// DialHost is the host to dial on the server (Dialer.Dial) to reach the
	// port: "127.0.0.1", "::1", or the specific address it is bound to.
	DialHost string `json:"dialHost"`
	// Process owns the socket; nil when unknown (another user's process, or
	// the listing tool does not say).
	Process *Process `json:"process,omitempty"`
	// UID owns the socket, -1 when unknown. Mine: that is the login's user.
	UID  int  `json:"uid"`
	Mine bool `json:"mine"`

	Kind Kind `json:"kind"`
	// Title is the display title without the port, e.g.
	// "Jupyter Lab — ~/project", "TensorBoard — runs/", "Streamlit — app.py",
	// "PostgreSQL". The UI adds the port.
	Title string `json:"title"`
	// IsWeb: open it in a tab (through a web forward).
	IsWeb bool `json:"isWeb"`
	// OpenPath is the path to open: "/lab" for Jupyter Lab, "/" mostly; "" for
	// non-web services.
	OpenPath string `json:"openPath"`
	// TLS: the port speaks TLS (HTTPS); open it with https.
	TLS bool `json:"tls"`

	Probe ProbeInfo `json:"probe"`

	// Local: the service is on this computer (LocalSource); open
	// http://DialHost:Port directly, no forward needed.
	Local bool `json:"local"`
}

// Process is the process that listens on a port.
type Process struct {
	PID  int    `json:"pid"`
	Name string `json:"name"` // comm, e.g. "jupyter-lab", "python3"
	// Cmdline is the command line, arguments joined by spaces, truncated to
	// 2 KiB on servers.
	Cmdline string    `json:"cmdline"`
	Cwd     string    `json:"cwd"`     // working directory; "" when unknown
	Started time.Time `json:"started"` // start time; zero when unknown
	// Exe is the executable's path; only LocalSource fills it in.
	Exe string `json:"exe,omitempty"`
}

// ProbeInfo is what the probe learned, for display and debugging.
type ProbeInfo struct {
	Protocol Protocol `json:"protocol"`
	// Status, Server and Location are from the response to GET /.
	Status   int    `json:"status,omitempty"`
	Server   string `json:"server,omitempty"`
	Location string `json:"location,omitempty"`
	// PageTitle is the HTML <title> of the last page read (after following
	// at most one redirect); Path is that page's path.
	PageTitle string `json:"pageTitle,omitempty"`
	Path      string `json:"path,omitempty"`
	// Banner is the start of a non-HTTP answer, printable characters only.
	Banner string `json:"banner,omitempty"`
	// Error says why the probe could not connect or read.
	Error string `json:"error,omitempty"`
}

// Options tune a Scanner or a LocalSource. The zero value is usable.
type Options struct {
	// Logger receives debug and warning logs; nil discards them.
	Logger *slog.Logger
	// ProbeTimeout bounds one probe request (dial, write, read); default 2 s.
	ProbeTimeout time.Duration
	// Concurrency is how many probes run at once; default 4.
	Concurrency int
	// Skip, when set, drops listeners before they are probed: it sees the
	// Service with its port, addresses and process but no identification
	// yet. The app uses it to hide Porthole's own listeners on this
	// computer (compare Process.Exe with os.Executable).
	Skip func(Service) bool
	// TokenMaxAge is how long Scanner.Jupyter answers from the last
	// listing without listing again; default 1 min. The app lists every
	// few seconds while the Start page shows, so an open from there costs
	// no extra round trip.
	TokenMaxAge time.Duration
	// SocketDirs are extra directories on the server whose Unix sockets
	// Scanner.Sockets lists (besides the well-known paths and the user's
	// runtime directory).
	SocketDirs []string
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = 2 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.TokenMaxAge <= 0 {
		o.TokenMaxAge = time.Minute
	}
	return o
}
