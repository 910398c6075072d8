package portmap

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrInvalid means an argument (login ID, remote host or port, endpoint) is
// not acceptable; the message says which and why.
var ErrInvalid = errors.New("invalid argument")

// maxLoginIDLen bounds a login ID (an opaque ID chosen by profiles).
const maxLoginIDLen = 1024

// Endpoint is a local TCP endpoint on an IPv4 loopback address, where
// Porthole listens for one remote app. The zero Endpoint is invalid.
type Endpoint struct {
	IP   netip.Addr
	Port int
}

// AddrPort returns the endpoint as a netip.AddrPort.
func (e Endpoint) AddrPort() netip.AddrPort {
	return netip.AddrPortFrom(e.IP, uint16(e.Port))
}

// String is "127.0.0.2:8888", ready for net.Listen or net.Dial.
func (e Endpoint) String() string {
	if !e.IP.IsValid() {
		return "invalid endpoint"
	}
	return e.AddrPort().String()
}

// URL is the endpoint's web origin with a root path: "http://127.0.0.2:8888/"
// ("" for the zero Endpoint).
func (e Endpoint) URL() string {
	if !e.IP.IsValid() {
		return ""
	}
	return "http://" + e.String() + "/"
}

// IsValid reports whether e is an IPv4 loopback address other than
// ServeAddr with a port in 1–65535.
func (e Endpoint) IsValid() bool {
	return e.validate() == nil
}

func (e Endpoint) validate() error {
	if !e.IP.Is4() || !e.IP.IsLoopback() {
		return fmt.Errorf("%w: local endpoint %s is not on an IPv4 loopback address (127.x.x.x)", ErrInvalid, e)
	}
	if e.IP == serveAddr {
		return fmt.Errorf("%w: local endpoint %s is on %s, the address of porthole serve's own page, never an app's", ErrInvalid, e, serveAddr)
	}
	if e.Port < 1 || e.Port > 65535 {
		return fmt.Errorf("%w: local port %d is outside 1–65535", ErrInvalid, e.Port)
	}
	return nil
}

// Assignment is one stored entry: the remote app (RemoteHost:RemotePort as
// seen from the server of login LoginID) and its local endpoint.
type Assignment struct {
	LoginID    string
	RemoteHost string // canonical form, see CanonicalHost
	RemotePort int
	Local      Endpoint
}

// AddrMode says how logins are kept apart on this computer.
type AddrMode int

const (
	// SharedLoopback: every login uses 127.0.0.1 and endpoints differ by
	// port only (macOS without loopback aliases). Browsers scope cookies by
	// host, not port, so apps of different servers can see each other's
	// cookies in this mode; localStorage stays separate (it is per origin).
	SharedLoopback AddrMode = iota
	// PerLoginAddrs: every login gets its own loopback address (127.0.0.2,
	// 127.0.0.3…), so two servers' apps never share cookies.
	PerLoginAddrs
)

func (m AddrMode) String() string {
	switch m {
	case SharedLoopback:
		return "shared 127.0.0.1"
	case PerLoginAddrs:
		return "per-login loopback addresses"
	default:
		return "AddrMode(" + strconv.Itoa(int(m)) + ")"
	}
}

// key identifies a remote app: login, canonical remote host, remote port.
type key struct {
	login string
	host  string
	port  int
}

func makeKey(loginID, remoteHost string, remotePort int) (key, error) {
	if err := validateLoginID(loginID); err != nil {
		return key{}, err
	}
	host, err := CanonicalHost(remoteHost)
	if err != nil {
		return key{}, err
	}
	if remotePort < 1 || remotePort > 65535 {
		return key{}, fmt.Errorf("%w: remote port %d is outside 1–65535", ErrInvalid, remotePort)
	}
	return key{login: loginID, host: host, port: remotePort}, nil
}

func validateLoginID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty login ID", ErrInvalid)
	case len(id) > maxLoginIDLen:
		return fmt.Errorf("%w: login ID is longer than %d bytes", ErrInvalid, maxLoginIDLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: login ID is not valid UTF-8", ErrInvalid)
	}
	return nil
}

// CanonicalHost is the form of a remote host name used as part of the key
// (and returned in Assignment.RemoteHost):
//
//   - every name for the server's own loopback or wildcard address —
//     "localhost", "127.0.0.1" (any 127.x), "::1", "0.0.0.0", "::", with or
//     without [brackets] — becomes "localhost", so the same app reached as
//     http://localhost:8888 or http://127.0.0.1:8888 keeps one endpoint;
//   - other IP addresses are written in their standard form (IPv4-mapped
//     IPv6 unmapped, zones kept);
//   - host names are lower-cased without a trailing dot.
//
// Empty names and names with characters outside letters, digits, '-', '_'
// and '.' are refused with ErrInvalid.
func CanonicalHost(host string) (string, error) {
	h := strings.TrimSpace(host)
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	h = strings.TrimSuffix(h, ".") // "host." is "host", and "1.2.3.4." is 1.2.3.4
	if h == "" {
		return "", fmt.Errorf("%w: empty remote host", ErrInvalid)
	}
	if a, err := netip.ParseAddr(h); err == nil {
		a = a.Unmap()
		if a.IsLoopback() || a.IsUnspecified() {
			return "localhost", nil
		}
		return a.String(), nil
	}
	h = strings.ToLower(h)
	if len(h) > 253 {
		return "", fmt.Errorf("%w: remote host %q is not a host name", ErrInvalid, host)
	}
	for _, r := range h {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return "", fmt.Errorf("%w: remote host %q is not a host name or IP address", ErrInvalid, host)
		}
	}
	if strings.HasPrefix(h, ".") || strings.HasSuffix(h, ".") || strings.Contains(h, "..") {
		return "", fmt.Errorf("%w: remote host %q has an empty label", ErrInvalid, host)
	}
	return h, nil
}
