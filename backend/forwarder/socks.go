package forwarder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"golang.org/x/crypto/ssh"
)

// errSOCKS marks a client that does not speak SOCKS as this proxy does; the
// connection is answered (where the protocol has a reply for it) and closed.
var errSOCKS = errors.New("SOCKS protocol error")

// SOCKS versions.
const (
	socks4 = 4
	socks5 = 5
)

// SOCKS5 reply codes (RFC 1928 section 6).
const (
	socks5Succeeded          byte = 0x00
	socks5GeneralFailure     byte = 0x01
	socks5NotAllowed         byte = 0x02
	socks5NetworkUnreachable byte = 0x03
	socks5HostUnreachable    byte = 0x04
	socks5ConnRefused        byte = 0x05
	socks5CmdNotSupported    byte = 0x07
	socks5AddrNotSupported   byte = 0x08
)

// SOCKS4 reply codes.
const (
	socks4Granted  byte = 0x5a
	socks4Rejected byte = 0x5b
)

// Sizes that bound a handshake.
const (
	socksMaxName   = 255 // a SOCKS5 domain name's length is one byte
	socks4MaxField = 255 // SOCKS4 user ID and SOCKS4a host name, without the NUL
)

// socksRequest is a parsed CONNECT request.
type socksRequest struct {
	version int // socks4 (also 4a) or socks5
	target  target
}

// socksError is a handshake failure: reply (when reply is set) is what the
// client is told before the connection is closed.
type socksError struct {
	version int
	reply   []byte // nil: close without a reply
	msg     string
}

func (e *socksError) Error() string {
	return fmt.Sprintf("%v: SOCKS%d: %s", errSOCKS, e.version, e.msg)
}
func (e *socksError) Unwrap() error { return errSOCKS }

// socksHandshake reads a SOCKS4, SOCKS4a or SOCKS5 CONNECT request from r,
// answering SOCKS5's method negotiation on w (no authentication only). It
// reads exactly the bytes of the handshake, never more, so bytes a client
// sends ahead of the reply stay in the socket for the channel. On a protocol
// error it returns a *socksError holding the reply to send, if any.
func socksHandshake(r io.Reader, w io.Writer) (socksRequest, error) {
	var b [2]byte
	if _, err := io.ReadFull(r, b[:1]); err != nil {
		return socksRequest{}, fmt.Errorf("reading the SOCKS version: %w", err)
	}
	switch b[0] {
	case socks5:
		return socks5Handshake(r, w)
	case socks4:
		return socks4Handshake(r)
	}
	hint := ""
	if b[0] >= 'A' && b[0] <= 'Z' {
		hint = " (an HTTP request? this is a SOCKS proxy, not an HTTP proxy)"
	}
	return socksRequest{}, &socksError{msg: fmt.Sprintf("the client speaks no SOCKS version this proxy knows (first byte %#02x)%s", b[0], hint)}
}

func socks5Fail(code byte, format string, a ...any) error {
	return &socksError{version: socks5, reply: socks5Reply(code), msg: fmt.Sprintf(format, a...)}
}

func socks5Handshake(r io.Reader, w io.Writer) (socksRequest, error) {
	var buf [socksMaxName + 2]byte
	// Greeting: NMETHODS, METHODS.
	if _, err := io.ReadFull(r, buf[:1]); err != nil {
		return socksRequest{}, fmt.Errorf("reading the SOCKS5 greeting: %w", err)
	}
	n := int(buf[0])
	if n == 0 {
		return socksRequest{}, &socksError{version: socks5, reply: []byte{socks5, 0xff}, msg: "the client offers no authentication method"}
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return socksRequest{}, fmt.Errorf("reading the SOCKS5 methods: %w", err)
	}
	if !strings.ContainsRune(string(buf[:n]), 0) {
		return socksRequest{}, &socksError{version: socks5, reply: []byte{socks5, 0xff},
			msg: fmt.Sprintf("the client offers only authentication methods % x; this proxy takes no authentication (method 00): it listens on this computer only, for your own user", buf[:n])}
	}
	if _, err := w.Write([]byte{socks5, 0x00}); err != nil {
		return socksRequest{}, fmt.Errorf("answering the SOCKS5 greeting: %w", err)
	}
	// Request: VER CMD RSV ATYP.
	if _, err := io.ReadFull(r, buf[:4]); err != nil {
		return socksRequest{}, fmt.Errorf("reading the SOCKS5 request: %w", err)
	}
	if buf[0] != socks5 {
		return socksRequest{}, socks5Fail(socks5GeneralFailure, "the request has version %d, want 5", buf[0])
	}
	if buf[1] != 0x01 {
		return socksRequest{}, socks5Fail(socks5CmdNotSupported, "command %d is not supported; only CONNECT (1) is", buf[1])
	}
	req := socksRequest{version: socks5}
	switch atyp := buf[3]; atyp {
	case 0x01: // IPv4
		if _, err := io.ReadFull(r, buf[:4]); err != nil {
			return socksRequest{}, fmt.Errorf("reading the SOCKS5 IPv4 address: %w", err)
		}
		req.target.host = netip.AddrFrom4([4]byte(buf[:4])).String()
	case 0x04: // IPv6
		if _, err := io.ReadFull(r, buf[:16]); err != nil {
			return socksRequest{}, fmt.Errorf("reading the SOCKS5 IPv6 address: %w", err)
		}
		req.target.host = netip.AddrFrom16([16]byte(buf[:16])).String()
	case 0x03: // domain name, resolved on the server
		if _, err := io.ReadFull(r, buf[:1]); err != nil {
			return socksRequest{}, fmt.Errorf("reading the SOCKS5 name length: %w", err)
		}
		l := int(buf[0])
		if _, err := io.ReadFull(r, buf[:l]); err != nil {
			return socksRequest{}, fmt.Errorf("reading the SOCKS5 host name: %w", err)
		}
		if err := checkSOCKSName(buf[:l]); err != nil {
			return socksRequest{}, socks5Fail(socks5GeneralFailure, "%v", err)
		}
		req.target.host = string(buf[:l])
	default:
		return socksRequest{}, socks5Fail(socks5AddrNotSupported, "address type %d is not supported", atyp)
	}
	if _, err := io.ReadFull(r, buf[:2]); err != nil {
		return socksRequest{}, fmt.Errorf("reading the SOCKS5 port: %w", err)
	}
	req.target.port = int(binary.BigEndian.Uint16(buf[:2]))
	if req.target.port == 0 {
		return socksRequest{}, socks5Fail(socks5GeneralFailure, "port 0 is not a destination")
	}
	return req, nil
}

func socks4Fail(format string, a ...any) error {
	return &socksError{version: socks4, reply: socks4Reply(socks4Rejected), msg: fmt.Sprintf(format, a...)}
}

func socks4Handshake(r io.Reader) (socksRequest, error) {
	// CD DSTPORT DSTIP USERID NUL [HOST NUL].
	var buf [7]byte
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return socksRequest{}, fmt.Errorf("reading the SOCKS4 request: %w", err)
	}
	if _, err := readCString(r, socks4MaxField); err != nil { // the user ID, unused
		if errors.Is(err, errSOCKS) {
			return socksRequest{}, socks4Fail("user ID: %v", err)
		}
		return socksRequest{}, fmt.Errorf("reading the SOCKS4 user ID: %w", err)
	}
	if buf[0] != 0x01 {
		return socksRequest{}, socks4Fail("command %d is not supported; only CONNECT (1) is", buf[0])
	}
	req := socksRequest{version: socks4, target: target{port: int(binary.BigEndian.Uint16(buf[1:3]))}}
	ip := [4]byte(buf[3:7])
	if ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0 {
		// SOCKS4a: the name follows, resolved on the server.
		name, err := readCString(r, socks4MaxField)
		if err != nil {
			if errors.Is(err, errSOCKS) {
				return socksRequest{}, socks4Fail("SOCKS4a host name: %v", err)
			}
			return socksRequest{}, fmt.Errorf("reading the SOCKS4a host name: %w", err)
		}
		if err := checkSOCKSName(name); err != nil {
			return socksRequest{}, socks4Fail("%v", err)
		}
		req.target.host = string(name)
	} else {
		req.target.host = netip.AddrFrom4(ip).String()
	}
	if req.target.port == 0 {
		return socksRequest{}, socks4Fail("port 0 is not a destination")
	}
	return req, nil
}

// readCString reads up to max bytes and a NUL, one byte at a time (so that
// nothing after the NUL is consumed).
func readCString(r io.Reader, max int) ([]byte, error) {
	var out []byte
	var b [1]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, err
		}
		if b[0] == 0 {
			return out, nil
		}
		if len(out) == max {
			return nil, fmt.Errorf("%w: longer than %d bytes", errSOCKS, max)
		}
		out = append(out, b[0])
	}
}

// checkSOCKSName accepts a host name to pass to the server as given: not
// empty, no control characters or spaces, nothing that could be read as
// another host or a path.
func checkSOCKSName(name []byte) error {
	if len(name) == 0 {
		return errors.New("the host name is empty")
	}
	if err := checkHost(string(name), "host name"); err != nil {
		return err
	}
	return nil
}

// socks5Reply is a SOCKS5 reply with a zero bound address (like OpenSSH's;
// the address the server connected from is not known here).
func socks5Reply(code byte) []byte {
	return []byte{socks5, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0}
}

func socks4Reply(code byte) []byte {
	return []byte{0x00, code, 0, 0, 0, 0, 0, 0}
}

// socksReplyFor is the reply to send for a request whose channel opened
// (err == nil) or failed to open with err.
func socksReplyFor(version int, err error) []byte {
	if version == socks4 {
		if err == nil {
			return socks4Reply(socks4Granted)
		}
		return socks4Reply(socks4Rejected)
	}
	return socks5Reply(socks5Code(err))
}

// socks5Code maps a Dial error to a SOCKS5 reply code. The SSH server says
// why it could not open the channel in a reason code and a message: OpenSSH
// sends "administratively prohibited" for forbidden forwards and, for a
// failed connect, the connect(2) or getaddrinfo error text.
func socks5Code(err error) byte {
	if err == nil {
		return socks5Succeeded
	}
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) {
		return socks5GeneralFailure
	}
	switch oce.Reason {
	case ssh.Prohibited:
		return socks5NotAllowed
	case ssh.ConnectionFailed:
		msg := strings.ToLower(oce.Message)
		switch {
		case strings.Contains(msg, "refused"):
			return socks5ConnRefused
		case strings.Contains(msg, "network is unreachable"):
			return socks5NetworkUnreachable
		case strings.Contains(msg, "unreachable"), strings.Contains(msg, "no route"),
			strings.Contains(msg, "timed out"), strings.Contains(msg, "i/o timeout"),
			// getaddrinfo's and Go's resolver's words for a name that does not resolve
			strings.Contains(msg, "not known"), strings.Contains(msg, "no such host"),
			strings.Contains(msg, "name resolution"), strings.Contains(msg, "no address associated"),
			strings.Contains(msg, "nodename nor servname"):
			return socks5HostUnreachable
		}
	}
	return socks5GeneralFailure
}
