package profiles

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every *ValidationError.
var ErrInvalid = errors.New("invalid profile")

// FieldError is one problem with one field. Field is the JSON path of the
// field ("host", "forwards[1].remotePort", "jumpHosts[0]").
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// ValidationError lists every problem Validate found, in field order.
// errors.Is(err, ErrInvalid) is true for it.
type ValidationError struct {
	Fields []FieldError `json:"fields"`
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Reason
	}
	return "invalid profile: " + strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// Reason returns the reason given for field, if any.
func (e *ValidationError) Reason(field string) (string, bool) {
	for _, f := range e.Fields {
		if f.Field == field {
			return f.Reason, true
		}
	}
	return "", false
}

func (e *ValidationError) add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

var (
	idPattern    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	colorPattern = regexp.MustCompile(`^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$`)
)

// Validate checks p and returns nil or a *ValidationError naming every bad
// field. It checks only the profile itself: whether KeyPath points to a
// usable key is CheckKeyFile's job (it reads the disk). An empty ID is
// valid (Store.Add assigns one).
func (p Profile) Validate() error {
	e := &ValidationError{}
	if p.ID != "" && !idPattern.MatchString(p.ID) {
		e.add("id", "must be 1–64 letters, digits, '-' or '_'")
	}
	switch name := strings.TrimSpace(p.Name); {
	case name == "":
		e.add("name", "is required")
	case utf8.RuneCountInString(p.Name) > MaxNameLen:
		e.add("name", "is longer than %d characters", MaxNameLen)
	case hasControl(p.Name):
		e.add("name", "contains control characters")
	}
	if reason := checkHost(p.Host); reason != "" {
		e.add("host", "%s", reason)
	}
	if p.Port < 1 || p.Port > 65535 {
		e.add("port", "must be between 1 and 65535 (SSH usually uses 22)")
	}
	if p.User != "" && (hasSpaceOrControl(p.User) || !utf8.ValidString(p.User)) {
		e.add("user", "must not contain spaces or control characters")
	}
	seen := map[AuthMethod]bool{}
	for i, m := range p.Auth {
		field := fmt.Sprintf("auth[%d]", i)
		if _, err := ParseAuthMethod(m.String()); err != nil {
			e.add(field, "unknown method %s", m)
			continue
		}
		if seen[m] {
			e.add(field, "%s is listed twice", m)
		}
		seen[m] = true
	}
	if p.KeyPath != "" && (strings.TrimSpace(p.KeyPath) != p.KeyPath || hasControl(p.KeyPath) || !utf8.ValidString(p.KeyPath)) {
		e.add("keyPath", "must not start or end with spaces or contain control characters")
	}
	for i, j := range p.JumpHosts {
		if _, err := ParseJumpHost(j); err != nil {
			e.add(fmt.Sprintf("jumpHosts[%d]", i), "%v", err)
		}
	}
	ruleIDs := map[string]bool{}
	for i, f := range p.Forwards {
		f.validate(e, fmt.Sprintf("forwards[%d]", i))
		if f.ID != "" {
			if ruleIDs[f.ID] {
				e.add(fmt.Sprintf("forwards[%d].id", i), "is the id of an earlier rule; give each rule its own id")
			}
			ruleIDs[f.ID] = true
		}
	}
	o := p.Options
	if o.PingThreshold < 0 || o.PingThreshold.D() > MaxDurationOpt {
		e.add("options.pingThreshold", "must be between 0 (default) and %s", MaxDurationOpt)
	}
	if o.IdleTimeout < 0 || o.IdleTimeout.D() > MaxDurationOpt {
		e.add("options.idleTimeout", "must be between 0 (default) and %s", MaxDurationOpt)
	}
	if o.PoolSize < 0 || o.PoolSize > MaxPoolSize {
		e.add("options.poolSize", "must be between 0 (default) and %d", MaxPoolSize)
	}
	if p.Color != "" && !colorPattern.MatchString(p.Color) {
		e.add("color", "must be a hex colour like #3b82f6")
	}
	if p.Icon != "" && (utf8.RuneCountInString(p.Icon) > MaxIconLen || hasSpaceOrControl(p.Icon)) {
		e.add("icon", "must be an icon name of at most %d characters without spaces", MaxIconLen)
	}
	if p.SSHConfigAlias != "" {
		switch {
		case hasSpaceOrControl(p.SSHConfigAlias) || !utf8.ValidString(p.SSHConfigAlias):
			e.add("sshConfigAlias", "must not contain spaces or control characters")
		case strings.ContainsAny(p.SSHConfigAlias, "*?!,"):
			e.add("sshConfigAlias", "must be one concrete Host name, not a pattern")
		case strings.ContainsAny(p.SSHConfigAlias, "|#"):
			e.add("sshConfigAlias", "must not contain '|' or '#'")
		}
	}
	if len(e.Fields) > 0 {
		return e
	}
	return nil
}

// Validate checks one rule on its own and returns nil or a
// *ValidationError whose fields are the rule's ("localPort", "kind").
func (f ForwardRule) Validate() error {
	e := &ValidationError{}
	f.validate(e, "")
	if len(e.Fields) > 0 {
		return e
	}
	return nil
}

// AllInterfaces as a rule's listening host means every interface (ssh's "*").
const AllInterfaces = "*"

func (f ForwardRule) validate(e *ValidationError, prefix string) {
	field := func(name string) string {
		if prefix == "" {
			return name
		}
		return prefix + "." + name
	}
	if f.ID != "" && !idPattern.MatchString(f.ID) {
		e.add(field("id"), "must be 1–64 letters, digits, '-' or '_'")
	}
	if _, err := ParseForwardKind(f.Kind.String()); err != nil {
		e.add(field("kind"), "must be local, web, remote or dynamic")
		return
	}
	if utf8.RuneCountInString(f.Label) > MaxLabelLen || hasControl(f.Label) {
		e.add(field("label"), "must be at most %d characters without control characters", MaxLabelLen)
	}
	// listen: host is where something listens, where "*" means every interface.
	checkAddr := func(hostField, portField, host string, port int, portRequired, zeroOK bool) {
		listen := !portRequired
		if host != "" && !(listen && host == AllInterfaces) {
			if reason := checkHost(host); reason != "" {
				e.add(field(hostField), "%s", reason)
			}
		}
		switch {
		case port == 0 && portRequired:
			e.add(field(portField), "is required for a %s forward", f.Kind)
		case port == 0 && zeroOK:
		case port < 1 || port > 65535:
			e.add(field(portField), "must be between 1 and 65535")
		}
	}
	switch f.Kind {
	case ForwardLocal, ForwardWeb:
		checkAddr("localHost", "localPort", f.LocalHost, f.LocalPort, false, true)
		checkAddr("remoteHost", "remotePort", f.RemoteHost, f.RemotePort, true, false)
	case ForwardDynamic:
		checkAddr("localHost", "localPort", f.LocalHost, f.LocalPort, false, true)
		if f.RemoteHost != "" || f.RemotePort != 0 {
			e.add(field("remotePort"), "a dynamic (SOCKS) forward has no remote target; leave it empty")
		}
	case ForwardRemote:
		checkAddr("remoteHost", "remotePort", f.RemoteHost, f.RemotePort, false, true)
		checkAddr("localHost", "localPort", f.LocalHost, f.LocalPort, true, false)
	}
}

// checkHost returns "" for a usable host name or address, else the reason.
func checkHost(h string) string {
	switch {
	case h == "":
		return "is required"
	case !utf8.ValidString(h) || hasSpaceOrControl(h):
		return "must not contain spaces or control characters"
	case strings.HasPrefix(h, "["):
		return "write an IPv6 address without brackets"
	case strings.Contains(h, "@"):
		return "must not contain '@' (put the user name in the user field)"
	case strings.HasPrefix(h, "-"):
		return "must not start with '-'"
	case strings.Contains(h, ":") && net.ParseIP(h) == nil:
		return "contains ':' but is not an IPv6 address (put the port in the port field)"
	case strings.ContainsAny(h, "|#"):
		// known_hosts syntax: '|' starts a hashed name, '#' a comment (issue 14 finding 10b).
		return "must not contain '|' or '#' (it must be a host name or IP address)"
	case strings.ContainsAny(h, "/\\*?!,[]"):
		return "must be a host name or IP address"
	case len(h) > 255:
		return "is longer than 255 characters"
	}
	return ""
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

func hasSpaceOrControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}

// JumpHost is one parsed "[user@]host[:port]" hop. Port 0 means "from
// ssh_config, else 22".
type JumpHost struct {
	User string
	Host string
	Port int
}

// String writes the hop back as "[user@]host[:port]" (IPv6 in brackets when a
// port follows).
func (j JumpHost) String() string {
	s := j.Host
	if j.Port != 0 {
		s = net.JoinHostPort(j.Host, strconv.Itoa(j.Port))
	}
	if j.User != "" {
		s = j.User + "@" + s
	}
	return s
}

// ParseJumpHost parses one ProxyJump hop "[user@]host[:port]"; an IPv6
// address with a port is written "[::1]:22". ssh:// URIs are accepted too.
func ParseJumpHost(s string) (JumpHost, error) {
	var j JumpHost
	orig := s
	if s == "" {
		return j, errors.New("is empty; write [user@]host[:port]")
	}
	if !utf8.ValidString(s) || hasSpaceOrControl(s) {
		return j, fmt.Errorf("%q must not contain spaces or control characters; use one entry per jump host", orig)
	}
	if strings.Contains(s, ",") {
		return j, fmt.Errorf("%q: list each jump host as its own entry instead of separating them with commas", orig)
	}
	if rest, ok := strings.CutPrefix(strings.ToLower(s), "ssh://"); ok {
		s = strings.TrimSuffix(s[len(s)-len(rest):], "/")
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		j.User, s = s[:i], s[i+1:]
		if j.User == "" {
			return j, fmt.Errorf("%q has an empty user before '@'", orig)
		}
	}
	var portStr string
	hasPort := false // a ':' separates a port (which must then be given)
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return j, fmt.Errorf("%q: missing ']' after the IPv6 address", orig)
		}
		j.Host = s[1:end]
		rest := s[end+1:]
		if rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return j, fmt.Errorf("%q: unexpected %q after ']'", orig, rest)
			}
			portStr, hasPort = p, true
		}
		if net.ParseIP(j.Host) == nil {
			return j, fmt.Errorf("%q: %q in brackets is not an IPv6 address", orig, j.Host)
		}
	} else {
		j.Host = s
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			if net.ParseIP(s) != nil {
				// a bare IPv6 address without a port
			} else if strings.Count(s, ":") > 1 {
				return j, fmt.Errorf("%q: write an IPv6 address with a port as [addr]:port", orig)
			} else {
				j.Host, portStr, hasPort = s[:i], s[i+1:], true
			}
		}
		if reason := checkHost(j.Host); reason != "" {
			return j, fmt.Errorf("host %q %s", j.Host, reason)
		}
	}
	if hasPort { // not a bare IPv6 address ending in ':' ("2001:db8::")
		p, err := strconv.Atoi(portStr)
		if err != nil || p < 1 || p > 65535 {
			return j, fmt.Errorf("%q: port %q must be a number between 1 and 65535", orig, portStr)
		}
		j.Port = p
	}
	return j, nil
}
