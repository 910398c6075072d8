package forwarder

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

var (
	s5ok    = []byte{5, 0}    // method selection: no authentication
	s5noAcc = []byte{5, 0xff} // no acceptable method
	s4rej   = []byte{0, 0x5b, 0, 0, 0, 0, 0, 0}
)

func s5rep(code byte) []byte { return socks5Reply(code) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// s5req is a whole SOCKS5 handshake (greeting offering no-auth, then CONNECT).
func s5req(atyp byte, addr []byte, port uint16) []byte {
	return cat([]byte{5, 1, 0, 5, 1, 0, atyp}, addr, []byte{byte(port >> 8), byte(port)})
}

func s5name(name string, port uint16) []byte {
	return s5req(3, append([]byte{byte(len(name))}, name...), port)
}

// s4req is a SOCKS4 CONNECT; a non-empty name makes it SOCKS4a.
func s4req(port uint16, ip [4]byte, user, name string) []byte {
	b := cat([]byte{4, 1, byte(port >> 8), byte(port)}, ip[:], []byte(user), []byte{0})
	if name != "" {
		b = cat(b, []byte(name), []byte{0})
	}
	return b
}

var socksCases = []struct {
	name    string
	in      []byte
	want    socksRequest // zero: want an error
	written []byte       // what the proxy writes during the handshake (and its error reply)
	errHas  string
}{
	{name: "socks5 name", in: s5name("only-on-server.test", 80), want: socksRequest{socks5, target{host: "only-on-server.test", port: 80}}, written: s5ok},
	{name: "socks5 ipv4", in: s5req(1, []byte{127, 0, 0, 1}, 8080), want: socksRequest{socks5, target{host: "127.0.0.1", port: 8080}}, written: s5ok},
	{name: "socks5 ipv6", in: s5req(4, []byte{15: 1}, 443), want: socksRequest{socks5, target{host: "::1", port: 443}}, written: s5ok},
	{name: "socks5 several methods", in: cat([]byte{5, 3, 2, 1, 0}, s5name("h", 1)[3:]), want: socksRequest{socks5, target{host: "h", port: 1}}, written: s5ok},
	{name: "socks5 ipv6 name is kept", in: s5name("::1", 22), want: socksRequest{socks5, target{host: "::1", port: 22}}, written: s5ok},
	{name: "socks4", in: s4req(8888, [4]byte{10, 1, 2, 3}, "alice", ""), want: socksRequest{socks4, target{host: "10.1.2.3", port: 8888}}},
	{name: "socks4a", in: s4req(80, [4]byte{0, 0, 0, 1}, "", "only-on-server.test"), want: socksRequest{socks4, target{host: "only-on-server.test", port: 80}}},

	{name: "empty", in: nil, errHas: "EOF"},
	{name: "http request", in: []byte("GET / HTTP/1.1\r\n\r\n"), errHas: "not an HTTP proxy"},
	{name: "tls hello", in: []byte{0x16, 3, 1, 0, 5}, errHas: "first byte 0x16"},
	{name: "socks5 no methods", in: []byte{5, 0}, written: s5noAcc, errHas: "no authentication method"},
	{name: "socks5 only password auth", in: []byte{5, 1, 2}, written: s5noAcc, errHas: "takes no authentication"},
	{name: "socks5 truncated methods", in: []byte{5, 3, 0}, errHas: "EOF"},
	{name: "socks5 bind", in: cat([]byte{5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80}), written: cat(s5ok, s5rep(0x07)), errHas: "only CONNECT"},
	{name: "socks5 udp associate", in: cat([]byte{5, 1, 0, 5, 3, 0, 1, 127, 0, 0, 1, 0, 80}), written: cat(s5ok, s5rep(0x07)), errHas: "command 3"},
	{name: "socks5 bad address type", in: []byte{5, 1, 0, 5, 1, 0, 9, 1, 2}, written: cat(s5ok, s5rep(0x08)), errHas: "address type 9"},
	{name: "socks5 wrong request version", in: []byte{5, 1, 0, 4, 1, 0, 1, 1, 2, 3, 4, 0, 80}, written: cat(s5ok, s5rep(0x01)), errHas: "version 4"},
	{name: "socks5 empty name", in: s5name("", 80), written: cat(s5ok, s5rep(0x01)), errHas: "empty"},
	{name: "socks5 name with space", in: s5name("a b", 80), written: cat(s5ok, s5rep(0x01)), errHas: "contains"},
	{name: "socks5 name with NUL", in: s5name("a\x00b", 80), written: cat(s5ok, s5rep(0x01)), errHas: "contains"},
	{name: "socks5 name with slash", in: s5name("/run/x.sock", 80), written: cat(s5ok, s5rep(0x01)), errHas: "contains"},
	{name: "socks5 port zero", in: s5req(1, []byte{127, 0, 0, 1}, 0), written: cat(s5ok, s5rep(0x01)), errHas: "port 0"},
	{name: "socks5 truncated name", in: []byte{5, 1, 0, 5, 1, 0, 3, 10, 'a', 'b'}, written: s5ok, errHas: "EOF"},
	{name: "socks5 truncated port", in: []byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0}, written: s5ok, errHas: "EOF"},
	{name: "socks4 bind", in: []byte{4, 2, 0, 80, 127, 0, 0, 1, 0}, written: s4rej, errHas: "only CONNECT"},
	{name: "socks4 port zero", in: s4req(0, [4]byte{127, 0, 0, 1}, "", ""), written: s4rej, errHas: "port 0"},
	{name: "socks4 user id too long", in: s4req(80, [4]byte{127, 0, 0, 1}, strings.Repeat("u", 256), ""), written: s4rej, errHas: "longer than 255"},
	{name: "socks4a name too long", in: s4req(80, [4]byte{0, 0, 0, 9}, "", strings.Repeat("n", 256)), written: s4rej, errHas: "longer than 255"},
	{name: "socks4a empty name", in: s4req(80, [4]byte{0, 0, 0, 9}, "", "")[:9], errHas: "EOF"},
	{name: "socks4a name with space", in: s4req(80, [4]byte{0, 0, 0, 9}, "", "a b"), written: s4rej, errHas: "contains"},
	{name: "socks4 no NUL", in: []byte{4, 1, 0, 80, 127, 0, 0, 1, 'x', 'y'}, errHas: "EOF"},
}

func TestSOCKSHandshake(t *testing.T) {
	trailer := []byte("GET / HTTP/1.1\r\n") // optimistic data must stay unread
	for _, tc := range socksCases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if tc.want != (socksRequest{}) {
				in = cat(in, trailer)
			}
			r := bytes.NewReader(in)
			var w bytes.Buffer
			got, err := socksHandshake(r, &w)
			if err != nil {
				var se *socksError
				if errors.As(err, &se) && se.reply != nil {
					w.Write(se.reply)
				}
			}
			if tc.want == (socksRequest{}) {
				if err == nil {
					t.Fatalf("handshake %x = %+v, want an error containing %q", tc.in, got, tc.errHas)
				}
				if !strings.Contains(err.Error(), tc.errHas) && !(tc.errHas == "EOF" && errors.Is(err, io.ErrUnexpectedEOF)) {
					t.Errorf("error %q does not contain %q", err, tc.errHas)
				}
			} else {
				if err != nil {
					t.Fatalf("handshake %x: %v", tc.in, err)
				}
				if got != tc.want {
					t.Errorf("request = %+v, want %+v", got, tc.want)
				}
				rest, _ := io.ReadAll(r)
				if !bytes.Equal(rest, trailer) {
					t.Errorf("the handshake consumed bytes after the request: %q left, want %q", rest, trailer)
				}
			}
			if !bytes.Equal(w.Bytes(), tc.written) {
				t.Errorf("proxy wrote % x, want % x", w.Bytes(), tc.written)
			}
		})
	}
}

// FuzzSOCKSHandshake: whatever a client sends, the parser returns a valid
// target or an error, reads at most one handshake's worth of bytes, and
// writes at most the method selection.
func FuzzSOCKSHandshake(f *testing.F) {
	for _, tc := range socksCases {
		f.Add(tc.in)
	}
	// Longest handshakes: SOCKS5 with 255 methods and a 255-byte name;
	// SOCKS4a with 255-byte user ID and name.
	const maxRead = (2 + 255) + (4 + 1 + 255 + 2)
	const maxRead4 = 8 + 256 + 256
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		var w bytes.Buffer
		req, err := socksHandshake(r, &w)
		read := len(in) - r.Len()
		if read > max(maxRead, maxRead4) {
			t.Fatalf("read %d bytes of %d", read, len(in))
		}
		if w.Len() > 2 {
			t.Fatalf("wrote %d bytes before the reply", w.Len())
		}
		if err != nil {
			if req != (socksRequest{}) {
				t.Fatalf("error %v with a request %+v", err, req)
			}
			var se *socksError
			if errors.As(err, &se) && !errors.Is(err, errSOCKS) {
				t.Fatalf("socksError %v does not wrap errSOCKS", err)
			}
			return
		}
		if req.version != socks4 && req.version != socks5 {
			t.Fatalf("version %d", req.version)
		}
		if req.target.port < 1 || req.target.port > 65535 {
			t.Fatalf("port %d", req.target.port)
		}
		if err := checkHost(req.target.host, "host"); err != nil {
			t.Fatalf("accepted host %q: %v", req.target.host, err)
		}
		if req.version == socks5 && !bytes.Equal(w.Bytes(), s5ok) {
			t.Fatalf("SOCKS5 accepted without selecting no-auth: wrote % x", w.Bytes())
		}
	})
}

func TestSOCKSReplyCodes(t *testing.T) {
	refused := func(reason ssh.RejectionReason, msg string) error {
		oce := &ssh.OpenChannelError{Reason: reason, Message: msg}
		return fmt.Errorf("dial h:1: %w: %w", ErrChannelRefused, oce) // as Session.Dial wraps it
	}
	for _, tc := range []struct {
		name   string
		err    error
		code   byte
		socks4 byte
	}{
		{"success", nil, 0x00, 0x5a},
		{"openssh connection refused", refused(ssh.ConnectionFailed, "Connection refused"), 0x05, 0x5b},
		{"go connection refused", refused(ssh.ConnectionFailed, "dial tcp 127.0.0.1:1: connect: connection refused"), 0x05, 0x5b},
		{"prohibited", refused(ssh.Prohibited, "administratively prohibited"), 0x02, 0x5b},
		{"no route", refused(ssh.ConnectionFailed, "No route to host"), 0x04, 0x5b},
		{"host unreachable", refused(ssh.ConnectionFailed, "connect: host is unreachable"), 0x04, 0x5b},
		{"network unreachable", refused(ssh.ConnectionFailed, "Network is unreachable"), 0x03, 0x5b},
		{"getaddrinfo", refused(ssh.ConnectionFailed, "Name or service not known"), 0x04, 0x5b},
		{"getaddrinfo temporary", refused(ssh.ConnectionFailed, "Temporary failure in name resolution"), 0x04, 0x5b},
		{"go resolver", refused(ssh.ConnectionFailed, "dial tcp: lookup nowhere.test: no such host"), 0x04, 0x5b},
		{"connect timed out", refused(ssh.ConnectionFailed, "Connection timed out"), 0x04, 0x5b},
		{"connect failed, no reason", refused(ssh.ConnectionFailed, "open failed"), 0x01, 0x5b},
		{"resource shortage", refused(ssh.ResourceShortage, "too many channels"), 0x01, 0x5b},
		{"unknown channel type", refused(ssh.UnknownChannelType, "unknown channel type"), 0x01, 0x5b},
		{"ssh unavailable", fmt.Errorf("dial h:1: %w: no route to the ssh server", ErrUnavailable), 0x01, 0x5b},
		{"session closed", ErrSessionClosed, 0x01, 0x5b},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := socksReplyFor(socks5, tc.err); !bytes.Equal(got, s5rep(tc.code)) {
				t.Errorf("SOCKS5 reply = % x, want code %#02x", got, tc.code)
			}
			want4 := []byte{0, tc.socks4, 0, 0, 0, 0, 0, 0}
			if got := socksReplyFor(socks4, tc.err); !bytes.Equal(got, want4) {
				t.Errorf("SOCKS4 reply = % x, want % x", got, want4)
			}
		})
	}
}
