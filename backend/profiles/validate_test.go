package profiles

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// Issue 14 finding 10b: a host name that would mean something in
// known_hosts ('|' hashed names, '#' comments, whitespace and control
// characters splitting fields or lines) is refused when the profile is
// saved, for the host, each jump host and the ssh_config alias.
var hostNameCases = []struct {
	host string
	ok   bool
}{
	{"example.com", true},
	{"10.0.0.1", true},
	{"2001:db8::1", true},
	{"host_name-1.internal", true},
	{"|1|c2FsdA==|aGFzaA==", false},
	{"a|b", false},
	{"#comment", false},
	{"host#frag", false},
	{"host name", false},
	{"host\tname", false},
	{"host\nevil", false},
	{"host\r", false},
	{"host\x00", false},
	{"host\x7f", false},
	{"host\u0085", false},
	{"host\u2028", false},
	{"a]b", false},
	{"a,b", false},
	{"*.example.com", false},
	{"\xff", false},
}

func TestValidateRefusesKnownHostsSyntaxInHostNames(t *testing.T) {
	for _, tc := range hostNameCases {
		t.Run(tc.host, func(t *testing.T) {
			for _, f := range []struct {
				field string
				set   func(p *Profile)
			}{
				{"host", func(p *Profile) { p.Host = tc.host }},
				{"jumpHosts[0]", func(p *Profile) { p.JumpHosts = []string{"u@" + tc.host} }},
			} {
				p := minimalProfile("m")
				f.set(&p)
				err := p.Validate()
				if (err == nil) != tc.ok {
					t.Fatalf("%s %q: Validate = %v; want ok=%v", f.field, tc.host, err, tc.ok)
				}
				var ve *ValidationError
				if err != nil && (!errors.As(err, &ve) || !hasReason(ve, f.field)) {
					t.Fatalf("%s %q: %v does not name the field", f.field, tc.host, err)
				}
			}
			if strings.ContainsAny(tc.host, "|#") {
				p := minimalProfile("m")
				p.SSHConfigAlias = tc.host
				if err := p.Validate(); err == nil {
					t.Fatalf("alias %q accepted", tc.host)
				}
			}
		})
	}
	p := minimalProfile("m")
	p.Host = "a|b"
	var ve *ValidationError
	if err := p.Validate(); !errors.As(err, &ve) {
		t.Fatalf("Validate = %v", err)
	} else if r, _ := ve.Reason("host"); !strings.Contains(r, "'|' or '#'") {
		t.Fatalf("reason %q does not say what is wrong", r)
	}
}

func hasReason(ve *ValidationError, field string) bool {
	_, ok := ve.Reason(field)
	return ok
}

// A host the profile validation accepts has none of known_hosts' special
// characters, whitespace or control characters.
func FuzzValidateHost(f *testing.F) {
	for _, tc := range hostNameCases {
		f.Add(tc.host)
	}
	f.Fuzz(func(t *testing.T, host string) {
		p := minimalProfile("m")
		p.Host = host
		p.JumpHosts = []string{host}
		if p.Validate() != nil {
			return
		}
		if !utf8.ValidString(host) || strings.ContainsAny(host, "|#,*?![]@ ") ||
			strings.ContainsFunc(host, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			t.Fatalf("Validate accepted host %q", host)
		}
	})
}
