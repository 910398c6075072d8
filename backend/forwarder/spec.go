package forwarder

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ErrBadSpec means a forward spec could not be parsed.
var ErrBadSpec = errors.New("bad forward spec")

// localSpecForm is shown in parse errors.
const localSpecForm = "expected [bind_address:]port:host:hostport, e.g. 8080:localhost:80 or [::1]:8080:[::1]:80, or with Unix sockets [bind_address:]port:/remote.sock, /local.sock:host:hostport or /local.sock:/remote.sock"

// AllInterfaces is the BindAddress that listens on every interface. Spell it
// "*" (or leave the bind address empty, as in ":8080:host:80") in a spec.
const AllInterfaces = "*"

// LocalSpec is one local forward (-L): connections to BindAddress:BindPort
// here are forwarded to TargetHost:TargetPort as seen from the server.
//
// Either end may be a Unix socket instead: BindPath (then BindAddress and
// BindPort are zero) is a socket here, TargetPath (then TargetHost and
// TargetPort are zero) a socket on the server, reached through
// direct-streamlocal@openssh.com. Specs without them marshal as before.
type LocalSpec struct {
	// BindAddress is where to listen: "" means loopback (127.0.0.1), "*"
	// means all interfaces; anything else is an address or host name.
	BindAddress string `json:"bindAddress,omitempty"`
	// BindPort is the local port; 0 picks a free one.
	BindPort   int    `json:"bindPort"`
	TargetHost string `json:"targetHost"`
	TargetPort int    `json:"targetPort"`
	// BindPath, when set, is the local Unix socket to listen on (mode
	// 0600). A relative name lives in SocketDir (ParseLocalSpec resolves
	// it). An existing file there is replaced only when it is a stale
	// socket of this user; see ListenLocal.
	BindPath string `json:"bindPath,omitempty"`
	// TargetPath, when set, is the Unix socket on the server to connect to
	// (an absolute path).
	TargetPath string `json:"targetPath,omitempty"`
}

// ListenAddress is the host:port to listen on.
func (s LocalSpec) ListenAddress() string {
	host := s.BindAddress
	switch host {
	case "", "localhost":
		host = "127.0.0.1"
	case AllInterfaces:
		host = ""
	}
	return net.JoinHostPort(host, strconv.Itoa(s.BindPort))
}

// String formats the spec the way ssh -L takes it (ParseLocalSpec inverts it).
func (s LocalSpec) String() string {
	var b strings.Builder
	if s.BindPath != "" {
		b.WriteString(s.BindPath)
	} else {
		if s.BindAddress != "" {
			b.WriteString(bracket(s.BindAddress))
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(s.BindPort))
	}
	b.WriteByte(':')
	if s.TargetPath != "" {
		b.WriteString(s.TargetPath)
		return b.String()
	}
	b.WriteString(bracket(s.TargetHost))
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(s.TargetPort))
	return b.String()
}

// Target is where connections go on the server: host:port, or the socket path.
func (s LocalSpec) Target() string {
	if s.TargetPath != "" {
		return s.TargetPath
	}
	return net.JoinHostPort(s.TargetHost, strconv.Itoa(s.TargetPort))
}

func bracket(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// Validate checks ports, host and bind address (or the socket paths).
func (s LocalSpec) Validate() error {
	if s.BindPath != "" || s.TargetPath != "" {
		return s.validateSockets(false)
	}
	if s.BindPort < 0 || s.BindPort > 65535 {
		return fmt.Errorf("%w: %q: bind port %d is out of range 0-65535", ErrBadSpec, s.String(), s.BindPort)
	}
	if s.TargetPort < 1 || s.TargetPort > 65535 {
		return fmt.Errorf("%w: %q: target port %d is out of range 1-65535", ErrBadSpec, s.String(), s.TargetPort)
	}
	if err := checkHost(s.TargetHost, "target host"); err != nil {
		return fmt.Errorf("%w: %q: %s", ErrBadSpec, s.String(), err)
	}
	if s.BindAddress != "" && s.BindAddress != AllInterfaces {
		if err := checkHost(s.BindAddress, "bind address"); err != nil {
			return fmt.Errorf("%w: %q: %s", ErrBadSpec, s.String(), err)
		}
	}
	return nil
}

func checkHost(h, what string) error {
	if h == "" {
		return errors.New(what + " is empty")
	}
	for _, r := range h {
		if r <= ' ' || r == 0x7f || strings.ContainsRune("[]/\\@", r) {
			return fmt.Errorf("%s %q contains %q", what, h, r)
		}
	}
	if _, err := netip.ParseAddr(h); strings.Contains(h, ":") && err != nil {
		return fmt.Errorf("%s %q has a colon but is not an IPv6 address", what, h)
	}
	return nil
}

// ParseLocalSpec parses an ssh -L spec: [bind_address:]port:host:hostport.
// IPv6 addresses go in brackets ("[::1]:8080:[::1]:80"). An empty bind
// address (":8080:host:80") or "*" means all interfaces; no bind address
// means loopback. Errors wrap ErrBadSpec, quote the spec and show the form.
//
// A field with a '/' (or ending in ".sock") is a Unix socket, as in ssh:
// "[bind_address:]port:/remote.sock", "/local.sock:host:hostport" and
// "/local.sock:/remote.sock". The remote path must be absolute; a relative
// local name (e.g. "docker.sock") is resolved in SocketDir.
func ParseLocalSpec(spec string) (LocalSpec, error) {
	bad := func(detail string) (LocalSpec, error) {
		return LocalSpec{}, fmt.Errorf("%w: %q: %s; %s", ErrBadSpec, spec, detail, localSpecForm)
	}
	fields, err := splitSpec(spec)
	if err != nil {
		return bad(err.Error())
	}
	if hasSocketField(fields) {
		s, err := parseSocketSpec(fields)
		if err == nil {
			err = s.validateSockets(false)
		}
		if err != nil {
			return bad(strings.TrimPrefix(err.Error(), ErrBadSpec.Error()+": "))
		}
		return s, nil
	}
	var s LocalSpec
	switch len(fields) {
	case 3:
	case 4:
		s.BindAddress = fields[0].text
		if s.BindAddress == "" && !fields[0].bracketed {
			s.BindAddress = AllInterfaces
		}
		fields = fields[1:]
	default:
		return bad(fmt.Sprintf("has %d colon-separated fields, want 3 or 4", len(fields)))
	}
	if fields[0].bracketed || fields[2].bracketed {
		return bad("ports cannot be in brackets")
	}
	if s.BindPort, err = parsePort(fields[0].text, 0); err != nil {
		return bad("bind port: " + err.Error())
	}
	s.TargetHost = fields[1].text
	if s.TargetPort, err = parsePort(fields[2].text, 1); err != nil {
		return bad("target port: " + err.Error())
	}
	if s.BindAddress != "" && s.BindAddress != AllInterfaces {
		if err := checkHost(s.BindAddress, "bind address"); err != nil {
			return bad(err.Error())
		}
	}
	if err := checkHost(s.TargetHost, "target host"); err != nil {
		return bad(err.Error())
	}
	return s, nil
}

type specField struct {
	text      string
	bracketed bool
}

// splitSpec splits on colons, keeping bracketed fields whole.
func splitSpec(spec string) ([]specField, error) {
	if spec == "" {
		return nil, errors.New("is empty")
	}
	var out []specField
	rest := spec
	for {
		var f specField
		if strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, errors.New("has '[' without ']'")
			}
			f = specField{text: rest[1:end], bracketed: true}
			if strings.ContainsAny(f.text, "[") {
				return nil, errors.New("has nested '['")
			}
			if f.text == "" {
				return nil, errors.New("has empty brackets")
			}
			rest = rest[end+1:]
			if rest != "" && rest[0] != ':' {
				return nil, fmt.Errorf("has %q after ']', want ':'", rest[:1])
			}
		} else {
			i := strings.IndexByte(rest, ':')
			if i < 0 {
				i = len(rest)
			}
			f = specField{text: rest[:i]}
			if strings.ContainsAny(f.text, "[]") {
				return nil, errors.New("has a bracket inside a field; put IPv6 addresses in brackets, e.g. [::1]")
			}
			rest = rest[i:]
		}
		out = append(out, f)
		if len(out) > 4 {
			return out, nil // too many; the caller reports the count
		}
		if rest == "" {
			return out, nil
		}
		rest = rest[1:] // the ':'
		if rest == "" {
			return nil, errors.New("ends with ':'")
		}
	}
}

func parsePort(s string, minPort int) (int, error) {
	if s == "" {
		return 0, errors.New("is empty")
	}
	if len(s) > 5 {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("%q is not a port number", s)
		}
	}
	n, _ := strconv.Atoi(s)
	if n < minPort || n > 65535 {
		return 0, fmt.Errorf("%d is out of range %d-65535", n, minPort)
	}
	return n, nil
}

// dynamicSpecForm is shown in dynamic spec parse errors.
const dynamicSpecForm = "expected [bind_address:]port, e.g. 1080 or 127.0.0.1:1080 or [::1]:1080"

// DynamicSpec is one dynamic forward (-D): a SOCKS proxy listening on
// BindAddress:BindPort here whose connections go to whatever host and port
// each client asks for, as seen from the server (names resolve there).
type DynamicSpec struct {
	// BindAddress is where to listen: "" means loopback (127.0.0.1), "*"
	// means all interfaces; anything else is an address or host name.
	BindAddress string `json:"bindAddress,omitempty"`
	// BindPort is the local port; 0 picks a free one.
	BindPort int `json:"bindPort"`
}

// ListenAddress is the host:port to listen on.
func (s DynamicSpec) ListenAddress() string {
	return LocalSpec{BindAddress: s.BindAddress, BindPort: s.BindPort}.ListenAddress()
}

// String formats the spec the way ssh -D takes it (ParseDynamicSpec inverts it).
func (s DynamicSpec) String() string {
	if s.BindAddress == "" {
		return strconv.Itoa(s.BindPort)
	}
	return bracket(s.BindAddress) + ":" + strconv.Itoa(s.BindPort)
}

// Validate checks the port and bind address.
func (s DynamicSpec) Validate() error {
	if s.BindPort < 0 || s.BindPort > 65535 {
		return fmt.Errorf("%w: %q: bind port %d is out of range 0-65535", ErrBadSpec, s.String(), s.BindPort)
	}
	if s.BindAddress != "" && s.BindAddress != AllInterfaces {
		if err := checkHost(s.BindAddress, "bind address"); err != nil {
			return fmt.Errorf("%w: %q: %s", ErrBadSpec, s.String(), err)
		}
	}
	return nil
}

// ParseDynamicSpec parses an ssh -D spec: [bind_address:]port. IPv6
// addresses go in brackets ("[::1]:1080"). An empty bind address (":1080")
// or "*" means all interfaces; no bind address means loopback. Errors wrap
// ErrBadSpec, quote the spec and show the form.
func ParseDynamicSpec(spec string) (DynamicSpec, error) {
	bad := func(detail string) (DynamicSpec, error) {
		return DynamicSpec{}, fmt.Errorf("%w: %q: %s; %s", ErrBadSpec, spec, detail, dynamicSpecForm)
	}
	fields, err := splitSpec(spec)
	if err != nil {
		return bad(err.Error())
	}
	var s DynamicSpec
	switch len(fields) {
	case 1:
	case 2:
		s.BindAddress = fields[0].text
		if s.BindAddress == "" && !fields[0].bracketed {
			s.BindAddress = AllInterfaces
		}
		fields = fields[1:]
	default:
		return bad(fmt.Sprintf("has %d colon-separated fields, want 1 or 2", len(fields)))
	}
	if fields[0].bracketed {
		return bad("ports cannot be in brackets")
	}
	if s.BindPort, err = parsePort(fields[0].text, 0); err != nil {
		return bad("bind port: " + err.Error())
	}
	if s.BindAddress != "" && s.BindAddress != AllInterfaces {
		if err := checkHost(s.BindAddress, "bind address"); err != nil {
			return bad(err.Error())
		}
	}
	return s, nil
}
