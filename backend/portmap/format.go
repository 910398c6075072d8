package portmap

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The endpoints file (endpoints.json), format version 1:
//
//	{
//	  "version": 1,
//	  "last_login_addr": "127.0.0.3",
//	  "logins": [
//	    {"id": "9f2c…", "addr": "127.0.0.2"},
//	    {"id": "51ab…", "addr": "127.0.0.3"}
//	  ],
//	  "last_app_net": 2,
//	  "app_nets": [
//	    {"login": "9f2c…", "net": 1, "last_addr": "127.1.1.1"},
//	    {"login": "51ab…", "net": 2, "last_addr": "127.2.0.1"}
//	  ],
//	  "endpoints": [
//	    {"login": "9f2c…", "host": "localhost", "port": 8888, "local": "127.0.0.2:8888"},
//	    {"login": "9f2c…", "host": "localhost", "port": 8889, "local": "127.1.0.1:8889"},
//	    {"login": "9f2c…", "host": "localhost", "port": 6006, "local": "127.1.1.1:6006"}
//	  ]
//	}
//
// "app_nets" holds each login's block of per-app addresses (127.N.0.0/16,
// see Map.SetPerApp) and the last address handed out in it; "last_app_net"
// is the highest block ever handed out. Both are new in this version's
// second edition; an older Porthole ignores them (and keeps every endpoint
// where it is), so the format version stays 1.
//
// "logins" holds the per-login loopback addresses (absent in SharedLoopback
// mode). "last_login_addr" is the highest address ever handed to a login:
// addresses of forgotten logins are never handed out again, so a new server
// never inherits an old server's cookies. Unknown fields are ignored (and
// dropped when the file is next written); an incompatible change bumps
// "version".

// formatVersion is the version this code writes and the newest it reads.
const formatVersion = 1

var (
	// ErrCorrupt: the endpoints file could not be parsed. The error is a
	// *FileError with the line and column.
	ErrCorrupt = errors.New("the endpoints file is damaged")
	// ErrNewerVersion: the endpoints file was written by a newer Porthole.
	ErrNewerVersion = errors.New("the endpoints file was written by a newer Porthole")
)

// FileError says where the endpoints file is damaged.
type FileError struct {
	Path    string
	Line    int // 1-based
	Column  int // 1-based, in characters
	Problem string
	// Backup is the copy of the damaged file ("" if it could not be made).
	Backup string
}

func (e *FileError) Error() string {
	msg := fmt.Sprintf("%s, line %d, column %d: %s", e.Path, e.Line, e.Column, e.Problem)
	if e.Backup != "" {
		msg += " (a copy is kept at " + e.Backup + ")"
	}
	return msg + "; fix or delete the file: until then Porthole leaves it alone and keeps new endpoints in memory only"
}

// Unwrap makes a FileError match ErrCorrupt and ErrNotSaved.
func (e *FileError) Unwrap() []error { return []error{ErrCorrupt, ErrNotSaved} }

// state is the parsed content of the file.
type state struct {
	logins   map[string]netip.Addr // login ID → its own loopback address
	lastAddr netip.Addr            // highest login address ever assigned (invalid: none)
	nets     map[string]uint8      // login → its block of per-app addresses, 127.N.0.0/16
	lastApp  map[string]netip.Addr // login → last per-app address handed out in its block
	lastNet  uint8                 // highest block ever handed out (0: none)
	entries  map[key]Endpoint
}

func newState() *state {
	return &state{logins: map[string]netip.Addr{}, nets: map[string]uint8{}, lastApp: map[string]netip.Addr{}, entries: map[key]Endpoint{}}
}

func (s *state) clone() *state {
	return &state{logins: maps.Clone(s.logins), lastAddr: s.lastAddr, nets: maps.Clone(s.nets), lastApp: maps.Clone(s.lastApp),
		lastNet: s.lastNet, entries: maps.Clone(s.entries)}
}

func (s *state) equal(o *state) bool {
	return s.lastAddr == o.lastAddr && s.lastNet == o.lastNet && maps.Equal(s.logins, o.logins) &&
		maps.Equal(s.nets, o.nets) && maps.Equal(s.lastApp, o.lastApp) && maps.Equal(s.entries, o.entries)
}

// netOwner returns the login whose block of per-app addresses is n.
func (s *state) netOwner(n uint8) (string, bool) {
	for id, m := range s.nets {
		if m == n {
			return id, true
		}
	}
	return "", false
}

// addrOwner returns the login whose own address is a.
func (s *state) addrOwner(a netip.Addr) (string, bool) {
	for id, la := range s.logins {
		if la == a {
			return id, true
		}
	}
	return "", false
}

// localUser returns the key assigned to local endpoint ep.
func (s *state) localUser(ep Endpoint) (key, bool) {
	for k, e := range s.entries {
		if e == ep {
			return k, true
		}
	}
	return key{}, false
}

// fileJSON is the on-disk shape.
type fileJSON struct {
	Version       int            `json:"version"`
	LastLoginAddr string         `json:"last_login_addr,omitempty"`
	Logins        []loginJSON    `json:"logins,omitempty"`
	LastAppNet    int            `json:"last_app_net,omitempty"`
	AppNets       []appNetJSON   `json:"app_nets,omitempty"`
	Endpoints     []endpointJSON `json:"endpoints"`
}

type appNetJSON struct {
	Login    string `json:"login"`
	Net      int    `json:"net"`
	LastAddr string `json:"last_addr,omitempty"`
}

type loginJSON struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

type endpointJSON struct {
	Login string `json:"login"`
	Host  string `json:"host"`
	Port  int    `json:"port"`
	Local string `json:"local"`
}

// encode writes s in a stable order (logins by address, endpoints by login,
// host, port), so the same state always gives the same bytes.
func encode(s *state) []byte {
	f := fileJSON{Version: formatVersion, Endpoints: []endpointJSON{}}
	if s.lastAddr.IsValid() {
		f.LastLoginAddr = s.lastAddr.String()
	}
	for id, a := range s.logins {
		f.Logins = append(f.Logins, loginJSON{ID: id, Addr: a.String()})
	}
	slices.SortFunc(f.Logins, func(a, b loginJSON) int {
		return cmp.Or(netip.MustParseAddr(a.Addr).Compare(netip.MustParseAddr(b.Addr)), cmp.Compare(a.ID, b.ID))
	})
	f.LastAppNet = int(s.lastNet)
	for id, n := range s.nets {
		an := appNetJSON{Login: id, Net: int(n)}
		if a, ok := s.lastApp[id]; ok {
			an.LastAddr = a.String()
		}
		f.AppNets = append(f.AppNets, an)
	}
	slices.SortFunc(f.AppNets, func(a, b appNetJSON) int { return cmp.Compare(a.Net, b.Net) })
	for k, e := range s.entries {
		f.Endpoints = append(f.Endpoints, endpointJSON{Login: k.login, Host: k.host, Port: k.port, Local: e.String()})
	}
	slices.SortFunc(f.Endpoints, func(a, b endpointJSON) int {
		return cmp.Or(cmp.Compare(a.Login, b.Login), cmp.Compare(a.Host, b.Host), cmp.Compare(a.Port, b.Port))
	})
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		// Only strings, ints and slices of them: cannot fail.
		panic(fmt.Sprintf("portmap: encoding the endpoints file: %v", err))
	}
	return buf.Bytes()
}

// parseError is a problem at a byte offset of the file; Map turns it into a
// *FileError with line and column.
type parseError struct {
	offset int64
	msg    string
}

func (e *parseError) Error() string { return fmt.Sprintf("at byte %d: %s", e.offset, e.msg) }

// lineCol turns a byte offset into a 1-based line and column (in runes).
func lineCol(data []byte, offset int64) (line, col int) {
	offset = max(0, min(offset, int64(len(data))))
	before := data[:offset]
	line = bytes.Count(before, []byte{'\n'}) + 1
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	return line, utf8.RuneCount(before[lineStart:]) + 1
}

// parse reads an endpoints file. Errors are a *parseError (damaged file) or
// wrap ErrNewerVersion.
func parse(data []byte) (*state, error) {
	p := &parser{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	return p.parse()
}

type parser struct {
	data []byte
	dec  *json.Decoder
}

// errAt builds a parseError from a json error, or from msg at offset.
func (p *parser) jsonErr(err error, base int64, what string) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return &parseError{offset: se.Offset, msg: "not valid JSON: " + se.Error()}
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = what
		} else {
			field = what + "." + field
		}
		return &parseError{offset: base, msg: fmt.Sprintf("%s must be a %s, not a JSON %s", field, jsonKind(te.Type.Kind().String()), te.Value)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &parseError{offset: int64(len(p.data)), msg: "the file ends too early (truncated?)"}
	default:
		return &parseError{offset: base, msg: what + ": " + err.Error()}
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64":
		return "whole number"
	case "struct":
		return "JSON object"
	case "slice":
		return "JSON array"
	default:
		return goKind
	}
}

// valueStart is the offset where the next value starts, after the decoder's
// position (skipping white space and one comma or colon).
func (p *parser) valueStart() int64 {
	i := p.dec.InputOffset()
	for i < int64(len(p.data)) {
		switch p.data[i] {
		case ' ', '\t', '\r', '\n', ',', ':':
			i++
			continue
		}
		break
	}
	return i
}

func (p *parser) decode(v any, what string) (int64, error) {
	at := p.valueStart()
	if err := p.dec.Decode(v); err != nil {
		return at, p.jsonErr(err, at, what)
	}
	return at, nil
}

func (p *parser) delim(want json.Delim, what string) (int64, error) {
	at := p.valueStart()
	tok, err := p.dec.Token()
	if err != nil {
		return at, p.jsonErr(err, at, what)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		kind := "an object"
		if want == '[' {
			kind = "an array"
		}
		return at, &parseError{offset: at, msg: fmt.Sprintf("%s must be %s", what, kind)}
	}
	return at, nil
}

func (p *parser) parse() (*state, error) {
	if len(bytes.TrimSpace(p.data)) == 0 {
		return nil, &parseError{offset: 0, msg: "the file is empty"}
	}
	// JSON syntax first, with exact positions (json.Unmarshal checks the
	// whole input before decoding anything).
	if err := json.Unmarshal(p.data, new(json.RawMessage)); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			off := se.Offset - 1 // Offset counts the offending byte
			if strings.HasPrefix(se.Error(), "unexpected end") {
				off = int64(len(p.data))
				return nil, &parseError{offset: off, msg: "the file ends too early (truncated?)"}
			}
			return nil, &parseError{offset: off, msg: "not valid JSON: " + se.Error()}
		}
		return nil, &parseError{offset: 0, msg: "not valid JSON: " + err.Error()}
	}
	// A newer format may look like anything else: recognise it first.
	var head struct {
		Version json.Number `json:"version"`
	}
	if json.Unmarshal(p.data, &head) == nil {
		if v, err := strconv.ParseFloat(string(head.Version), 64); err == nil && v > formatVersion {
			return nil, fmt.Errorf("%w (format version %s; this Porthole reads up to %d): update Porthole, or move the file away to start over",
				ErrNewerVersion, head.Version, formatVersion)
		}
	}
	if _, err := p.delim('{', "the file"); err != nil {
		return nil, err
	}
	var (
		f         fileJSON
		versionAt int64 = -1
		lastAt    int64
		lastNetAt int64
		loginAt   []int64
		netAt     []int64
		epAt      []int64
		seen      = map[string]bool{}
	)
	for p.dec.More() {
		at := p.valueStart()
		tok, err := p.dec.Token()
		if err != nil {
			return nil, p.jsonErr(err, at, "the file")
		}
		name, _ := tok.(string)
		if seen[name] {
			return nil, &parseError{offset: at, msg: fmt.Sprintf("%q appears twice", name)}
		}
		seen[name] = true
		switch name {
		case "version":
			if versionAt, err = p.decode(&f.Version, "version"); err != nil {
				return nil, err
			}
		case "last_login_addr":
			if lastAt, err = p.decode(&f.LastLoginAddr, "last_login_addr"); err != nil {
				return nil, err
			}
		case "logins":
			if loginAt, err = p.array(func(i int) error {
				var l loginJSON
				_, err := p.decode(&l, fmt.Sprintf("logins[%d]", i))
				f.Logins = append(f.Logins, l)
				return err
			}, "logins"); err != nil {
				return nil, err
			}
		case "last_app_net":
			if lastNetAt, err = p.decode(&f.LastAppNet, "last_app_net"); err != nil {
				return nil, err
			}
		case "app_nets":
			if netAt, err = p.array(func(i int) error {
				var n appNetJSON
				_, err := p.decode(&n, fmt.Sprintf("app_nets[%d]", i))
				f.AppNets = append(f.AppNets, n)
				return err
			}, "app_nets"); err != nil {
				return nil, err
			}
		case "endpoints":
			if epAt, err = p.array(func(i int) error {
				var e endpointJSON
				_, err := p.decode(&e, fmt.Sprintf("endpoints[%d]", i))
				f.Endpoints = append(f.Endpoints, e)
				return err
			}, "endpoints"); err != nil {
				return nil, err
			}
		default:
			var skip json.RawMessage
			if _, err := p.decode(&skip, name); err != nil {
				return nil, err
			}
		}
	}
	if _, err := p.delim('}', "the file"); err != nil {
		return nil, err
	}
	if at := p.valueStart(); at < int64(len(p.data)) {
		return nil, &parseError{offset: at, msg: "unexpected text after the closing }"}
	}
	if versionAt < 0 {
		return nil, &parseError{offset: 0, msg: `"version" is missing`}
	}
	if f.Version != formatVersion {
		return nil, &parseError{offset: versionAt, msg: fmt.Sprintf("version %d is not a valid format version", f.Version)}
	}
	s, err := p.validate(&f, lastAt, loginAt, epAt)
	if err != nil {
		return nil, err
	}
	if err := p.validateNets(s, &f, lastNetAt, netAt); err != nil {
		return nil, err
	}
	return s, nil
}

// array walks a JSON array, calling elem for each element; it returns the
// offset of each element.
func (p *parser) array(elem func(i int) error, what string) ([]int64, error) {
	if _, err := p.delim('[', what); err != nil {
		return nil, err
	}
	var at []int64
	for i := 0; p.dec.More(); i++ {
		at = append(at, p.valueStart())
		if err := elem(i); err != nil {
			return nil, err
		}
	}
	if _, err := p.delim(']', what); err != nil {
		return nil, err
	}
	return at, nil
}

// validate checks what JSON cannot: addresses, ports, uniqueness, and that
// no endpoint sits on another login's address.
func (p *parser) validate(f *fileJSON, lastAt int64, loginAt, epAt []int64) (*state, error) {
	s := newState()
	if f.LastLoginAddr != "" {
		a, err := netip.ParseAddr(f.LastLoginAddr)
		if err != nil || !a.Is4() || !a.IsLoopback() {
			return nil, &parseError{offset: lastAt, msg: fmt.Sprintf("last_login_addr %q is not an IPv4 loopback address", f.LastLoginAddr)}
		}
		s.lastAddr = a
	}
	for i, l := range f.Logins {
		bad := func(format string, args ...any) error {
			return &parseError{offset: loginAt[i], msg: fmt.Sprintf("logins[%d]: ", i) + fmt.Sprintf(format, args...)}
		}
		if err := validateLoginID(l.ID); err != nil {
			return nil, bad("%v", err)
		}
		a, err := netip.ParseAddr(l.Addr)
		if err != nil || !isLoginAddr(a) {
			return nil, bad("addr %q is not a loopback address between 127.0.0.2 and 127.255.255.254 other than %s (serve's own)", l.Addr, serveAddr)
		}
		if _, dup := s.logins[l.ID]; dup {
			return nil, bad("login %q is listed twice", l.ID)
		}
		if other, dup := s.addrOwner(a); dup {
			return nil, bad("address %s is given to two logins (%q and %q), which would let them share cookies", a, other, l.ID)
		}
		s.logins[l.ID] = a
		if !s.lastAddr.IsValid() || a.Compare(s.lastAddr) > 0 {
			s.lastAddr = a
		}
	}
	for i, e := range f.Endpoints {
		bad := func(format string, args ...any) error {
			return &parseError{offset: epAt[i], msg: fmt.Sprintf("endpoints[%d]: ", i) + fmt.Sprintf(format, args...)}
		}
		k, err := makeKey(e.Login, e.Host, e.Port)
		if err != nil {
			return nil, bad("%v", err)
		}
		ap, err := netip.ParseAddrPort(e.Local)
		if err != nil {
			return nil, bad("local %q is not an address:port", e.Local)
		}
		ep := Endpoint{IP: ap.Addr(), Port: int(ap.Port())}
		if err := ep.validate(); err != nil {
			return nil, bad("%v", err)
		}
		if _, dup := s.entries[k]; dup {
			return nil, bad("%s:%d of login %q is listed twice", k.host, k.port, k.login)
		}
		if other, dup := s.localUser(ep); dup {
			return nil, bad("local endpoint %s is given to two apps (%s:%d of login %q and %s:%d of login %q)",
				ep, other.host, other.port, other.login, k.host, k.port, k.login)
		}
		if owner, ok := s.addrOwner(ep.IP); ok && owner != k.login {
			return nil, bad("local endpoint %s is on the address of login %q but belongs to login %q, which would let them share cookies",
				ep, owner, k.login)
		}
		s.entries[k] = ep
	}
	return s, nil
}

// validateNets checks the blocks of per-app addresses: numbers 1–255 other
// than 80 (serve's), one block per login and one login per block, and a
// last address inside its block. Endpoints in a block are not checked
// against its owner: an older Porthole, which ignores the blocks, may have
// put a login's address there, and that must not make the file unusable.
func (p *parser) validateNets(s *state, f *fileJSON, lastAt int64, netAt []int64) error {
	if f.LastAppNet < 0 || f.LastAppNet > 255 {
		return &parseError{offset: lastAt, msg: fmt.Sprintf("last_app_net %d is outside 0–255", f.LastAppNet)}
	}
	s.lastNet = uint8(f.LastAppNet)
	for i, n := range f.AppNets {
		bad := func(format string, args ...any) error {
			return &parseError{offset: netAt[i], msg: fmt.Sprintf("app_nets[%d]: ", i) + fmt.Sprintf(format, args...)}
		}
		if err := validateLoginID(n.Login); err != nil {
			return bad("%v", err)
		}
		if n.Net < 1 || n.Net > 255 || n.Net == serveNet {
			return bad("net %d is not a block number (1–255, not %d)", n.Net, serveNet)
		}
		if _, dup := s.nets[n.Login]; dup {
			return bad("login %q is listed twice", n.Login)
		}
		if other, dup := s.netOwner(uint8(n.Net)); dup {
			return bad("block %d is given to two logins (%q and %q), which would let them share cookies", n.Net, other, n.Login)
		}
		if n.LastAddr != "" {
			a, err := netip.ParseAddr(n.LastAddr)
			if err != nil || !a.Is4() || !a.IsLoopback() || int(netOf(a)) != n.Net || a.As4()[3] == 0 || a.As4()[3] == 255 {
				return bad("last_addr %q is not an address of block 127.%d.0.0/16", n.LastAddr, n.Net)
			}
			s.lastApp[n.Login] = a
		}
		s.nets[n.Login] = uint8(n.Net)
		s.lastNet = max(s.lastNet, uint8(n.Net))
	}
	return nil
}

// isLoginAddr: an address a login may own (127/8 except 127.0.0.1, serve's
// own address, the network and the broadcast address).
func isLoginAddr(a netip.Addr) bool {
	return a.Is4() && a.IsLoopback() && a != loopback1 && a != serveAddr &&
		a != netip.AddrFrom4([4]byte{127, 0, 0, 0}) && a != netip.AddrFrom4([4]byte{127, 255, 255, 255})
}

var loopback1 = netip.AddrFrom4([4]byte{127, 0, 0, 1})
