package forwarder

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

var localSpecCases = []struct {
	name   string
	spec   string
	want   LocalSpec
	listen string
	bad    string // substring of the error; empty means the spec is valid
}{
	{name: "three fields", spec: "8080:localhost:80", want: LocalSpec{BindPort: 8080, TargetHost: "localhost", TargetPort: 80}, listen: "127.0.0.1:8080"},
	{name: "bind address", spec: "127.0.0.2:8888:127.0.0.1:8888", want: LocalSpec{BindAddress: "127.0.0.2", BindPort: 8888, TargetHost: "127.0.0.1", TargetPort: 8888}, listen: "127.0.0.2:8888"},
	{name: "ipv6 bind in brackets", spec: "[::1]:8080:localhost:80", want: LocalSpec{BindAddress: "::1", BindPort: 8080, TargetHost: "localhost", TargetPort: 80}, listen: "[::1]:8080"},
	{name: "ipv6 target in brackets", spec: "8080:[::1]:80", want: LocalSpec{BindPort: 8080, TargetHost: "::1", TargetPort: 80}, listen: "127.0.0.1:8080"},
	{name: "ipv6 both", spec: "[fe80::1%eth0]:1:[2001:db8::5]:65535", want: LocalSpec{BindAddress: "fe80::1%eth0", BindPort: 1, TargetHost: "2001:db8::5", TargetPort: 65535}, listen: "[fe80::1%eth0]:1"},
	{name: "star binds all", spec: "*:8080:db:5432", want: LocalSpec{BindAddress: "*", BindPort: 8080, TargetHost: "db", TargetPort: 5432}, listen: ":8080"},
	{name: "empty bind binds all", spec: ":8080:db:5432", want: LocalSpec{BindAddress: "*", BindPort: 8080, TargetHost: "db", TargetPort: 5432}, listen: ":8080"},
	{name: "localhost bind is loopback", spec: "localhost:9000:h:1", want: LocalSpec{BindAddress: "localhost", BindPort: 9000, TargetHost: "h", TargetPort: 1}, listen: "127.0.0.1:9000"},
	{name: "port zero picks one", spec: "0:localhost:80", want: LocalSpec{BindPort: 0, TargetHost: "localhost", TargetPort: 80}, listen: "127.0.0.1:0"},
	{name: "host name with dots and dashes", spec: "8888:gpu-1.lab.example.org:8888", want: LocalSpec{BindPort: 8888, TargetHost: "gpu-1.lab.example.org", TargetPort: 8888}, listen: "127.0.0.1:8888"},

	{name: "empty", spec: "", bad: "is empty"},
	{name: "two fields", spec: "8080:80", bad: "2 colon-separated fields"},
	{name: "five fields", spec: "a:1:b:2:3", bad: "want 3 or 4"},
	{name: "unbracketed ipv6", spec: "::1:8080:localhost:80", bad: "fields"},
	{name: "port not a number", spec: "http:localhost:80", bad: "not a port number"},
	{name: "target port zero", spec: "8080:localhost:0", bad: "out of range 1-65535"},
	{name: "port too big", spec: "70000:localhost:80", bad: "out of range"},
	{name: "negative port", spec: "-1:localhost:80", bad: "not a port number"},
	{name: "long port", spec: "000008080:localhost:80", bad: "not a port number"},
	{name: "empty host", spec: "8080::80", bad: "target host is empty"},
	{name: "empty target port", spec: "8080:localhost:", bad: "ends with ':'"},
	{name: "unclosed bracket", spec: "[::1:8080:localhost:80", bad: "without ']'"},
	{name: "junk after bracket", spec: "[::1]x:8080:localhost:80", bad: "after ']'"},
	{name: "empty brackets", spec: "[]:8080:localhost:80", bad: "empty brackets"},
	{name: "bracket inside field", spec: "80]80:localhost:80", bad: "bracket inside a field"},
	{name: "bracketed port", spec: "[8080]:localhost:80", bad: "ports cannot be in brackets"},
	{name: "bracketed non-ip with colon", spec: "8080:[a:b]:80", bad: "not an IPv6 address"},
	{name: "space in host", spec: "8080:local host:80", bad: "contains"},
	{name: "socket path in the middle", spec: "8080:/tmp/sock:80", bad: "must be the listening end"},
	{name: "user at host", spec: "8080:me@host:80", bad: "contains"},
}

func TestParseLocalSpec(t *testing.T) {
	for _, tc := range localSpecCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLocalSpec(tc.spec)
			if tc.bad != "" {
				if err == nil {
					t.Fatalf("ParseLocalSpec(%q) = %+v, want an error containing %q", tc.spec, got, tc.bad)
				}
				if !errors.Is(err, ErrBadSpec) {
					t.Errorf("error %v does not wrap ErrBadSpec", err)
				}
				msg := err.Error()
				if !strings.Contains(msg, tc.bad) {
					t.Errorf("error %q does not contain %q", msg, tc.bad)
				}
				if !strings.Contains(msg, `"`+tc.spec+`"`) || !strings.Contains(msg, "[bind_address:]port:host:hostport") {
					t.Errorf("error %q should quote the spec and show the expected form", msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLocalSpec(%q): %v", tc.spec, err)
			}
			if got != tc.want {
				t.Fatalf("ParseLocalSpec(%q) = %+v, want %+v", tc.spec, got, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if la := got.ListenAddress(); la != tc.listen {
				t.Errorf("ListenAddress = %q, want %q", la, tc.listen)
			}
			again, err := ParseLocalSpec(got.String())
			if err != nil || again != got {
				t.Errorf("round trip via %q = %+v, %v; want %+v", got.String(), again, err, got)
			}
		})
	}
}

func FuzzParseLocalSpec(f *testing.F) {
	for _, tc := range localSpecCases {
		f.Add(tc.spec)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseLocalSpec(spec)
		if err != nil {
			if !errors.Is(err, ErrBadSpec) {
				t.Fatalf("error %v does not wrap ErrBadSpec", err)
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") || !strings.Contains(msg, strconv.Quote(spec)) {
				t.Fatalf("error is not one line quoting the spec %q: %q", spec, msg)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("parsed %q into %+v, which does not validate: %v", spec, s, err)
		}
		again, err := ParseLocalSpec(s.String())
		if err != nil {
			t.Fatalf("String() of %q = %q does not parse: %v", spec, s.String(), err)
		}
		if again != s {
			t.Fatalf("round trip of %q: %+v → %q → %+v", spec, s, s.String(), again)
		}
	})
}

func TestLocalSpecValidate(t *testing.T) {
	cases := []struct {
		name string
		s    LocalSpec
		ok   bool
	}{
		{"ok", LocalSpec{BindPort: 1, TargetHost: "h", TargetPort: 2}, true},
		{"no target host", LocalSpec{BindPort: 1, TargetPort: 2}, false},
		{"target port 0", LocalSpec{BindPort: 1, TargetHost: "h"}, false},
		{"bind port high", LocalSpec{BindPort: 65536, TargetHost: "h", TargetPort: 2}, false},
		{"bad bind address", LocalSpec{BindAddress: "a b", TargetHost: "h", TargetPort: 2}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", tc.s, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadSpec) {
				t.Fatalf("error %v does not wrap ErrBadSpec", err)
			}
		})
	}
}

var dynamicSpecCases = []struct {
	name   string
	spec   string
	want   DynamicSpec
	listen string
	bad    string // substring of the error; empty means the spec is valid
}{
	{name: "port", spec: "1080", want: DynamicSpec{BindPort: 1080}, listen: "127.0.0.1:1080"},
	{name: "bind address", spec: "127.0.0.2:1080", want: DynamicSpec{BindAddress: "127.0.0.2", BindPort: 1080}, listen: "127.0.0.2:1080"},
	{name: "ipv6 bind in brackets", spec: "[::1]:1080", want: DynamicSpec{BindAddress: "::1", BindPort: 1080}, listen: "[::1]:1080"},
	{name: "localhost", spec: "localhost:1080", want: DynamicSpec{BindAddress: "localhost", BindPort: 1080}, listen: "127.0.0.1:1080"},
	{name: "star binds all", spec: "*:1080", want: DynamicSpec{BindAddress: "*", BindPort: 1080}, listen: ":1080"},
	{name: "empty bind binds all", spec: ":1080", want: DynamicSpec{BindAddress: "*", BindPort: 1080}, listen: ":1080"},
	{name: "port zero picks one", spec: "0", want: DynamicSpec{}, listen: "127.0.0.1:0"},

	{name: "empty", spec: "", bad: "is empty"},
	{name: "three fields", spec: "a:1:2", bad: "want 1 or 2"},
	{name: "local forward", spec: "8080:localhost:80", bad: "want 1 or 2"},
	{name: "unbracketed ipv6", spec: "::1:1080", bad: "fields"},
	{name: "not a number", spec: "socks", bad: "not a port number"},
	{name: "port too big", spec: "70000", bad: "out of range"},
	{name: "bracketed port", spec: "[1080]", bad: "ports cannot be in brackets"},
	{name: "ends with colon", spec: "127.0.0.1:", bad: "ends with ':'"},
	{name: "space in bind", spec: "a b:1080", bad: "contains"},
	{name: "bracketed non-ip", spec: "[a:b]:1080", bad: "not an IPv6 address"},
}

func TestParseDynamicSpec(t *testing.T) {
	for _, tc := range dynamicSpecCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDynamicSpec(tc.spec)
			if tc.bad != "" {
				if err == nil || !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("ParseDynamicSpec(%q) = %+v, %v; want ErrBadSpec containing %q", tc.spec, got, err, tc.bad)
				}
				if !strings.Contains(err.Error(), `"`+tc.spec+`"`) || !strings.Contains(err.Error(), "[bind_address:]port") {
					t.Errorf("error %q should quote the spec and show the expected form", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseDynamicSpec(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
			}
			if la := got.ListenAddress(); la != tc.listen {
				t.Errorf("ListenAddress = %q, want %q", la, tc.listen)
			}
			if again, err := ParseDynamicSpec(got.String()); err != nil || again != got {
				t.Errorf("round trip via %q = %+v, %v; want %+v", got.String(), again, err, got)
			}
		})
	}
}

func FuzzParseDynamicSpec(f *testing.F) {
	for _, tc := range dynamicSpecCases {
		f.Add(tc.spec)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseDynamicSpec(spec)
		if err != nil {
			if !errors.Is(err, ErrBadSpec) {
				t.Fatalf("error %v does not wrap ErrBadSpec", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("parsed %q into %+v, which does not validate: %v", spec, s, err)
		}
		if again, err := ParseDynamicSpec(s.String()); err != nil || again != s {
			t.Fatalf("round trip of %q: %+v → %q → %+v, %v", spec, s, s.String(), again, err)
		}
	})
}
