package profiles

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ErrSocketForward: the forward names a Unix socket (a path), which rules
// cannot hold yet.
var ErrSocketForward = errors.New("Unix socket forwards are not supported yet")

// ParseSSHForward parses the value of an ssh_config LocalForward,
// RemoteForward or DynamicForward line (kind ForwardLocal, ForwardRemote,
// ForwardDynamic) into a rule, as OpenSSH reads it:
//
//	LocalForward   [bind_address:]port host:hostport
//	RemoteForward  [bind_address:]port host:hostport
//	DynamicForward [bind_address:]port
//
// An IPv6 address is written in brackets ("[::1]:8080"); a bind address of
// "*" or "" means every interface ("" is written "*" in the rule). The
// forms Porthole cannot hold are errors: a Unix socket path (wrapping
// ErrSocketForward) and a RemoteForward without a target (a SOCKS proxy on
// the server).
func ParseSSHForward(kind ForwardKind, value string) (ForwardRule, error) {
	args := strings.Fields(value)
	r := ForwardRule{Kind: kind}
	var want int
	switch kind {
	case ForwardLocal, ForwardRemote:
		want = 2
	case ForwardDynamic:
		want = 1
	default:
		return r, fmt.Errorf("%s forwards are not ssh_config lines", kind)
	}
	if kind == ForwardRemote && len(args) == 1 {
		return r, fmt.Errorf("RemoteForward %s has no target: a SOCKS proxy on the server is not supported", value)
	}
	if len(args) != want {
		return r, fmt.Errorf("%s: want %s", strings.TrimSpace(value), sshForwardForm(kind))
	}
	for _, a := range args {
		if strings.Contains(a, "/") {
			return r, fmt.Errorf("%s: %w", strings.TrimSpace(value), ErrSocketForward)
		}
	}
	listen, err := splitForwardFields(args[0])
	if err != nil || len(listen) < 1 || len(listen) > 2 {
		return r, fmt.Errorf("%s: want %s", args[0], sshForwardForm(kind))
	}
	bind := ""
	if len(listen) == 2 {
		bind = listen[0]
		if bind == "" || bind == AllInterfaces {
			bind = AllInterfaces
		}
	}
	port, err := forwardPort(listen[len(listen)-1], kind == ForwardRemote)
	if err != nil {
		return r, err
	}
	var host string
	var hostPort int
	if want == 2 {
		target, err := splitForwardFields(args[1])
		if err != nil || len(target) != 2 || target[0] == "" {
			return r, fmt.Errorf("%s: the target must be host:hostport", args[1])
		}
		host = target[0]
		if hostPort, err = forwardPort(target[1], false); err != nil {
			return r, err
		}
	}
	switch kind {
	case ForwardLocal:
		r.LocalHost, r.LocalPort, r.RemoteHost, r.RemotePort = bind, port, host, hostPort
	case ForwardDynamic:
		r.LocalHost, r.LocalPort = bind, port
	case ForwardRemote:
		r.RemoteHost, r.RemotePort, r.LocalHost, r.LocalPort = bind, port, host, hostPort
	}
	if err := r.Validate(); err != nil {
		return r, fmt.Errorf("%s: %w", strings.TrimSpace(value), err)
	}
	return r, nil
}

func sshForwardForm(kind ForwardKind) string {
	if kind == ForwardDynamic {
		return "[bind_address:]port"
	}
	return "[bind_address:]port host:hostport"
}

// forwardPort parses a port; 0 is allowed where the server picks one.
func forwardPort(s string, zeroOK bool) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 0 || p > 65535 || (p == 0 && !zeroOK) {
		return 0, fmt.Errorf("port %q must be a number between 1 and 65535", s)
	}
	return p, nil
}

// splitForwardFields splits "a:b" on colons, keeping "[v6]" in one field
// (without its brackets).
func splitForwardFields(s string) ([]string, error) {
	var out []string
	for {
		if strings.HasPrefix(s, "[") {
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, errors.New("missing ']'")
			}
			out = append(out, s[1:end])
			s = s[end+1:]
			if s == "" {
				return out, nil
			}
			if s[0] != ':' {
				return nil, errors.New("unexpected text after ']'")
			}
			s = s[1:]
			continue
		}
		i := strings.IndexByte(s, ':')
		if i < 0 {
			return append(out, s), nil
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
}

// SSHForwardString writes r the way ssh's command line takes it: "-L
// 8080:localhost:80", "-R 9000:localhost:3000", "-D 1080" (IPv6 in brackets).
func (f ForwardRule) SSHForwardString() string {
	hp := func(h string, p int) string {
		ps := strconv.Itoa(p)
		if h == "" {
			return ps
		}
		if strings.Contains(h, ":") {
			return "[" + h + "]:" + ps
		}
		return h + ":" + ps
	}
	target := func(h string, p int) string {
		if h == "" {
			h = "localhost"
		}
		if strings.Contains(h, ":") {
			return "[" + h + "]:" + strconv.Itoa(p)
		}
		return net.JoinHostPort(h, strconv.Itoa(p))
	}
	switch f.Kind {
	case ForwardLocal, ForwardWeb:
		return "-L " + hp(f.LocalHost, f.LocalPort) + ":" + target(f.RemoteHost, f.RemotePort)
	case ForwardDynamic:
		return "-D " + hp(f.LocalHost, f.LocalPort)
	case ForwardRemote:
		return "-R " + hp(f.RemoteHost, f.RemotePort) + ":" + target(f.LocalHost, f.LocalPort)
	}
	return f.Kind.String()
}
