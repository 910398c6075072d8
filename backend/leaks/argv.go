package leaks

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/porthole-app/porthole/backend/cli"
	"github.com/porthole-app/porthole/backend/forwarder"
)

// ForwardKind is what a forward of a tunnel does, as ssh's flag says.
type ForwardKind int

const (
	ForwardLocal   ForwardKind = iota // -L: listens here, connects from the server
	ForwardRemote                     // -R: listens on the server, connects from here
	ForwardDynamic                    // -D: a SOCKS proxy here, connects from the server
)

func (k ForwardKind) String() string {
	switch k {
	case ForwardLocal:
		return "local"
	case ForwardRemote:
		return "remote"
	case ForwardDynamic:
		return "dynamic"
	}
	return fmt.Sprintf("ForwardKind(%d)", int(k))
}

// MarshalText makes a ForwardKind appear as its name in JSON.
func (k ForwardKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Flag is ssh's flag for the kind ("-L", "-R", "-D").
func (k ForwardKind) Flag() string {
	return map[ForwardKind]string{ForwardLocal: "-L", ForwardRemote: "-R", ForwardDynamic: "-D"}[k]
}

// Program is which client runs a tunnel.
type Program int

const (
	ProgramSSH     Program = iota // OpenSSH's ssh
	ProgramAutossh                // autossh, which runs ssh and restarts it
)

func (p Program) String() string {
	switch p {
	case ProgramSSH:
		return "ssh"
	case ProgramAutossh:
		return "autossh"
	}
	return fmt.Sprintf("Program(%d)", int(p))
}

// MarshalText makes a Program appear as its name in JSON.
func (p Program) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// programOf tells ssh and autossh apart by the process name (comm) or
// argv[0]; ok is false for anything else.
func programOf(name string, argv0 string) (Program, bool) {
	for _, n := range []string{name, filepath.Base(argv0)} {
		switch n {
		case "ssh":
			return ProgramSSH, true
		case "autossh":
			return ProgramAutossh, true
		}
	}
	return 0, false
}

// ArgForward is one -L/-R/-D forward of a command line. Bind is where it
// listens (on this computer for -L/-D, on the server for -R): "" means
// loopback, "*" every interface (ssh's two defaults, which GatewayPorts
// changes for -L/-D); Target is what it connects to (on the server's side
// for -L, on this computer for -R; none for -D).
type ArgForward struct {
	Kind       ForwardKind
	Spec       string // as written
	Bind       string
	Port       int
	TargetHost string
	TargetPort int
	// BindPath and TargetPath are Unix sockets in place of an address and
	// port (-L /run/x.sock:host:80, -L 8080:/run/app.sock).
	BindPath   string
	TargetPath string
	Err        string // the spec could not be read
}

// Command is what a tunnel's command line says.
type Command struct {
	Program     Program
	Destination string // as written: [user@]host or ssh://[user@]host[:port]
	User        string // from -l or the destination ("" = ssh_config or the local user)
	Host        string // the host or ssh_config alias
	Port        int    // from -p or the destination; 0 = ssh_config's or 22
	Jump        string // -J
	Identity    string // the first -i
	ConfigFile  string // -F
	// GatewayPorts: -g (or -o GatewayPorts=yes): -L/-D listeners without an
	// address listen on every interface instead of loopback.
	GatewayPorts bool
	Forwards     []ArgForward
}

// ParseCommandLine reads an ssh or autossh command line (argv[0] included)
// with ssh's own rules (cli.ParseSSHCommand): its destination and its
// forwards. An autossh's own flags (-M, -f, -V) are dropped first.
func ParseCommandLine(argv []string) (Command, error) {
	if len(argv) == 0 {
		return Command{}, fmt.Errorf("empty command line: %w", cli.ErrSSHArgv)
	}
	prog, ok := programOf("", argv[0])
	if !ok {
		return Command{}, fmt.Errorf("%q is neither ssh nor autossh: %w", argv[0], cli.ErrSSHArgv)
	}
	args := argv[1:]
	if prog == ProgramAutossh {
		args = autosshArgs(args)
	}
	sc, err := cli.ParseSSHCommand(args)
	if err != nil {
		return Command{Program: prog}, err
	}
	c := Command{Program: prog, Destination: sc.Destination, User: sc.Login, Port: sc.Port, Jump: sc.Jump,
		ConfigFile: sc.ConfigFile, GatewayPorts: sc.GatewayPorts}
	if len(sc.Identities) > 0 {
		c.Identity = sc.Identities[0]
	}
	user, host, port := splitDestination(sc.Destination)
	c.Host = host
	if user != "" && c.User == "" {
		c.User = user // ssh: -l wins over user@
	}
	if port != 0 && c.Port == 0 {
		c.Port = port
	}
	if c.Host == "" {
		return c, fmt.Errorf("destination %q names no host: %w", sc.Destination, cli.ErrSSHArgv)
	}
	for _, s := range sc.Locals {
		c.Forwards = append(c.Forwards, parseArgForward(ForwardLocal, s))
	}
	for _, s := range sc.Remotes {
		c.Forwards = append(c.Forwards, parseArgForward(ForwardRemote, s))
	}
	for _, s := range sc.Dynamics {
		c.Forwards = append(c.Forwards, parseArgForward(ForwardDynamic, s))
	}
	return c, nil
}

// autosshArgs drops autossh's own flags: -M port[:echo], -f, -V (they come
// before ssh's).
func autosshArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-M":
			i++ // and its value
		case strings.HasPrefix(a, "-M"), a == "-f", a == "-V":
		default:
			out = append(out, a)
		}
	}
	return out
}

// splitDestination splits [user@]host or ssh://[user@]host[:port].
func splitDestination(d string) (user, host string, port int) {
	if rest, ok := strings.CutPrefix(d, "ssh://"); ok {
		rest, _, _ = strings.Cut(rest, "/")
		if i := strings.LastIndexByte(rest, '@'); i >= 0 {
			user, rest = rest[:i], rest[i+1:]
		}
		if h, p, ok := cutPort(rest); ok {
			return user, h, p
		}
		return user, strings.Trim(rest, "[]"), 0
	}
	if i := strings.LastIndexByte(d, '@'); i >= 0 {
		return d[:i], d[i+1:], 0
	}
	return "", d, 0
}

// cutPort splits "host:port" or "[v6]:port".
func cutPort(s string) (string, int, bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 || strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "[") {
		return "", 0, false
	}
	p, err := strconv.Atoi(s[i+1:])
	if err != nil || p < 1 || p > 65535 {
		return "", 0, false
	}
	return strings.Trim(s[:i], "[]"), p, true
}

func parseArgForward(k ForwardKind, spec string) ArgForward {
	f := ArgForward{Kind: k, Spec: spec}
	var err error
	switch k {
	case ForwardLocal:
		var s forwarder.LocalSpec
		if s, err = forwarder.ParseLocalSpec(spec); err == nil {
			f.Bind, f.Port, f.TargetHost, f.TargetPort = s.BindAddress, s.BindPort, s.TargetHost, s.TargetPort
			f.BindPath, f.TargetPath = s.BindPath, s.TargetPath
		}
	case ForwardRemote:
		var s forwarder.RemoteSpec
		if s, err = forwarder.ParseRemoteSpec(spec); err == nil {
			f.Bind, f.Port, f.TargetHost, f.TargetPort = s.BindAddress, s.BindPort, s.TargetHost, s.TargetPort
			f.BindPath, f.TargetPath = s.BindPath, s.TargetPath
		}
	case ForwardDynamic:
		var s forwarder.DynamicSpec
		if s, err = forwarder.ParseDynamicSpec(spec); err == nil {
			f.Bind, f.Port = s.BindAddress, s.BindPort
		}
	}
	if err != nil {
		f.Err = err.Error()
	}
	return f
}

// isLoopback: a bind address that only this computer reaches.
func isLoopback(host string) bool {
	switch strings.ToLower(host) {
	case "localhost", "ip6-localhost":
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.Unmap().IsLoopback()
}
