package sshconn

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Destination is a parsed "[user@]host[:port]" or "ssh://[user@]host[:port]".
// Port is 0 when not given.
type Destination struct {
	User string
	Host string
	Port int
}

// String formats d back into "[user@]host[:port]" (IPv6 hosts in brackets when a port is given).
func (d Destination) String() string {
	s := d.Host
	if strings.Contains(s, ":") {
		s = "[" + s + "]"
	}
	if d.Port != 0 {
		s += ":" + strconv.Itoa(d.Port)
	}
	if d.User != "" {
		s = d.User + "@" + s
	}
	return s
}

// ParseDestination parses a destination the way ssh and ProxyJump do:
// "host", "user@host", "user@host:port", "[v6addr]:port", "v6addr" (two or
// more colons without brackets means no port) and "ssh://user@host:port".
// The user is split at the last '@', as OpenSSH does.
func ParseDestination(s string) (Destination, error) {
	var d Destination
	orig := s
	if s == "" {
		return d, fmt.Errorf("%w: empty destination", ErrConfig)
	}
	if !utf8.ValidString(s) {
		return d, fmt.Errorf("%w: destination %q is not valid UTF-8", ErrConfig, orig)
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return d, fmt.Errorf("%w: destination %q contains whitespace or control characters", ErrConfig, orig)
		}
	}
	if rest, ok := cutPrefixFold(s, "ssh://"); ok {
		s = strings.TrimSuffix(rest, "/")
		if strings.Contains(s, "/") {
			return d, fmt.Errorf("%w: destination %q: an ssh:// URI cannot have a path", ErrConfig, orig)
		}
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		d.User, s = s[:i], s[i+1:]
		if d.User == "" {
			return d, fmt.Errorf("%w: destination %q has an empty user before '@'", ErrConfig, orig)
		}
	}
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return d, fmt.Errorf("%w: destination %q: missing ']'", ErrConfig, orig)
		}
		d.Host, s = s[1:end], s[end+1:]
		if s != "" {
			p, ok := strings.CutPrefix(s, ":")
			if !ok {
				return d, fmt.Errorf("%w: destination %q: unexpected %q after ']'", ErrConfig, orig, s)
			}
			port, err := parsePort(p)
			if err != nil {
				return d, fmt.Errorf("%w: destination %q: %v", ErrConfig, orig, err)
			}
			d.Port = port
		}
	case strings.Count(s, ":") == 1:
		h, p, _ := strings.Cut(s, ":")
		port, err := parsePort(p)
		if err != nil {
			return d, fmt.Errorf("%w: destination %q: %v", ErrConfig, orig, err)
		}
		d.Host, d.Port = h, port
	default: // no colon, or a bare IPv6 address
		d.Host = s
	}
	if d.Host == "" {
		return d, fmt.Errorf("%w: destination %q has no host", ErrConfig, orig)
	}
	if strings.ContainsAny(d.Host, "[]@/") {
		return d, fmt.Errorf("%w: destination %q: invalid host %q", ErrConfig, orig, d.Host)
	}
	return d, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

func parsePort(p string) (int, error) {
	if p == "" {
		return 0, fmt.Errorf("empty port")
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("port %q is not a number", p)
		}
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is out of range 1-65535", p)
	}
	return n, nil
}

// ParseProxyJump parses a ProxyJump value: a comma-separated list of
// destinations, in the order they are connected, or "none" (nil, no jumps).
func ParseProxyJump(s string) ([]Destination, error) {
	if strings.EqualFold(strings.TrimSpace(s), "none") {
		return nil, nil
	}
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty ProxyJump", ErrConfig)
	}
	var hops []Destination
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("%w: ProxyJump %q: hop %d is empty", ErrConfig, s, i+1)
		}
		d, err := ParseDestination(part)
		if err != nil {
			return nil, fmt.Errorf("ProxyJump hop %d: %w", i+1, err)
		}
		hops = append(hops, d)
	}
	return hops, nil
}

// ParseOption parses one "-o" argument: "Key=Value" or "Key Value" (like a
// config line). The value may be double-quoted. Key keeps its spelling; keys
// are matched case-insensitively later.
func ParseOption(s string) (key, value string, err error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return r == '=' || unicode.IsSpace(r) })
	if i <= 0 {
		return "", "", fmt.Errorf("%w: option %q: want Key=Value", ErrConfig, s)
	}
	key, rest := t[:i], t[i:]
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return "", "", fmt.Errorf("%w: option %q: invalid key %q", ErrConfig, s, key)
		}
	}
	rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
	rest = strings.TrimPrefix(rest, "=")
	value = strings.TrimSpace(rest)
	if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
		value = value[1 : len(value)-1]
	}
	if value == "" {
		return "", "", fmt.Errorf("%w: option %q: empty value", ErrConfig, s)
	}
	for _, r := range value {
		if unicode.IsControl(r) {
			return "", "", fmt.Errorf("%w: option %q: value contains control characters", ErrConfig, s)
		}
	}
	return key, value, nil
}

// expandTokens replaces OpenSSH percent tokens (%h, %u, …) in s with the
// values in tokens. "%%" is a literal percent. An unknown or unsupported
// token is an error, like in OpenSSH.
func expandTokens(s string, tokens map[byte]string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("%w: %q ends with a lone '%%'", ErrConfig, s)
		}
		i++
		t := s[i]
		if t == '%' {
			b.WriteByte('%')
			continue
		}
		v, ok := tokens[t]
		if !ok {
			return "", fmt.Errorf("%w: %q: token %%%c is not supported here", ErrConfig, s, t)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// expandTilde replaces a leading "~" or "~/" with home. "~user" is left alone.
func expandTilde(p, home string) string {
	if p == "~" {
		return home
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(home, rest)
	}
	return p
}
