package forwarder

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// remoteSpecForm is shown in parse errors.
const remoteSpecForm = "expected [bind_address:]port:host:hostport, e.g. 8080:localhost:80 or *:8080:localhost:80, or with Unix sockets /remote.sock:host:hostport, /remote.sock:/local.sock or [bind_address:]port:/local.sock"

// RemoteSpec is one remote forward (-R): the server listens on
// BindAddress:BindPort and every connection it accepts there is forwarded
// to TargetHost:TargetPort as seen from this machine.
type RemoteSpec struct {
	// BindAddress is where the server listens: "" means its loopback (ssh
	// sends "localhost"), "*" all interfaces; anything else is sent as is.
	// Only loopback works unless the server's sshd_config has GatewayPorts
	// yes (every non-loopback request then binds all interfaces) or
	// clientspecified (the address asked for is used).
	BindAddress string `json:"bindAddress,omitempty"`
	// BindPort is the server's port; 0 lets the server pick one (the
	// forward reports which).
	BindPort   int    `json:"bindPort"`
	TargetHost string `json:"targetHost"`
	TargetPort int    `json:"targetPort"`
	// NoReclaim turns off ending the server's stale session of this
	// login's own previous connection when it still holds the port: the
	// forward then waits for the server to release it.
	NoReclaim bool `json:"noReclaim,omitempty"`
	// BindPath, when set, makes the server listen on this Unix socket
	// (streamlocal-forward@openssh.com; an absolute path on the server)
	// instead of BindAddress:BindPort, which are then zero. Porthole never
	// removes a file on the server: if the path exists, sshd replaces it
	// only with StreamLocalBindUnlink yes, and the forward says so.
	BindPath string `json:"bindPath,omitempty"`
	// TargetPath, when set, is the Unix socket here to connect to instead
	// of TargetHost:TargetPort (a relative name lives in SocketDir).
	TargetPath string `json:"targetPath,omitempty"`
}

// local is the spec's fields as a LocalSpec (for String and checks).
func (s RemoteSpec) local() LocalSpec {
	return LocalSpec{BindAddress: s.BindAddress, BindPort: s.BindPort, TargetHost: s.TargetHost, TargetPort: s.TargetPort, BindPath: s.BindPath, TargetPath: s.TargetPath}
}

// wireAddress is the address sent in the tcpip-forward request, as OpenSSH's
// client sends it.
func (s RemoteSpec) wireAddress() string {
	switch s.BindAddress {
	case "":
		return "localhost"
	case AllInterfaces:
		return ""
	}
	return s.BindAddress
}

// wantsPublic: the spec asks for more than the server's loopback.
func (s RemoteSpec) wantsPublic() bool {
	return !isLoopbackName(s.wireAddress())
}

func isLoopbackName(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// listenName is the server-side address in the user's words.
func (s RemoteSpec) listenName(port int) string {
	if s.BindPath != "" {
		return "Unix socket " + s.BindPath
	}
	host := s.BindAddress
	switch host {
	case "":
		host = "localhost"
	case AllInterfaces:
		host = "*"
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// String formats the spec the way ssh -R takes it (ParseRemoteSpec inverts
// it; NoReclaim is not part of it).
func (s RemoteSpec) String() string { return s.local().String() }

// Target is host:port of the target (or its socket path), dialed from this
// machine.
func (s RemoteSpec) Target() string { return s.local().Target() }

// targetNet is the network and address to dial the target on.
func (s RemoteSpec) targetNet() (string, string) {
	if s.TargetPath != "" {
		return "unix", s.TargetPath
	}
	return "tcp", s.Target()
}

// Validate checks ports, host and bind address (or the socket paths).
func (s RemoteSpec) Validate() error {
	if s.BindPath != "" || s.TargetPath != "" {
		l := s.local()
		if err := l.validateSockets(true); err != nil {
			return fmt.Errorf("remote forward: %w", err)
		}
		return nil
	}
	l := s.local()
	if err := l.Validate(); err != nil {
		return fmt.Errorf("remote forward: %w", err)
	}
	return nil
}

// ParseRemoteSpec parses an ssh -R spec: [bind_address:]port:host:hostport.
// IPv6 addresses go in brackets. An empty bind address (":8080:host:80") or
// "*" means all interfaces of the server; no bind address means its
// loopback. Errors wrap ErrBadSpec, quote the spec and show the form.
//
// A field with a '/' (or ending in ".sock") is a Unix socket, as in ssh:
// "/remote.sock:host:hostport" and "/remote.sock:/local.sock" make the
// server listen on a socket, "[bind_address:]port:/local.sock" sends to a
// socket here. A relative local name lives in SocketDir.
func ParseRemoteSpec(spec string) (RemoteSpec, error) {
	if fields, err := splitSpec(spec); err == nil && hasSocketField(fields) {
		l, err := parseSocketSpec(fields)
		if err == nil {
			err = l.validateSockets(true)
		}
		if err != nil {
			return RemoteSpec{}, fmt.Errorf("%w: %q: %s; %s", ErrBadSpec, spec, strings.TrimPrefix(err.Error(), ErrBadSpec.Error()+": "), remoteSpecForm)
		}
		return RemoteSpec{BindAddress: l.BindAddress, BindPort: l.BindPort, TargetHost: l.TargetHost, TargetPort: l.TargetPort, BindPath: l.BindPath, TargetPath: l.TargetPath}, nil
	}
	l, err := ParseLocalSpec(spec)
	if err != nil {
		msg := strings.Replace(err.Error(), localSpecForm, remoteSpecForm, 1)
		return RemoteSpec{}, fmt.Errorf("%w: %s", ErrBadSpec, strings.TrimPrefix(msg, ErrBadSpec.Error()+": "))
	}
	return RemoteSpec{BindAddress: l.BindAddress, BindPort: l.BindPort, TargetHost: l.TargetHost, TargetPort: l.TargetPort}, nil
}
