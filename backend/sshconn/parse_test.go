package sshconn

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"
)

var destinationCases = []struct {
	in      string
	want    Destination
	wantErr bool
}{
	{in: "host", want: Destination{Host: "host"}},
	{in: "user@host", want: Destination{User: "user", Host: "host"}},
	{in: "user@host:2222", want: Destination{User: "user", Host: "host", Port: 2222}},
	{in: "host:22", want: Destination{Host: "host", Port: 22}},
	{in: "me@corp.com@bastion", want: Destination{User: "me@corp.com", Host: "bastion"}},
	{in: "[::1]:2200", want: Destination{Host: "::1", Port: 2200}},
	{in: "root@[fe80::1%eth0]:22", want: Destination{User: "root", Host: "fe80::1%eth0", Port: 22}},
	{in: "::1", want: Destination{Host: "::1"}},
	{in: "[::1]", want: Destination{Host: "::1"}},
	{in: "ssh://alice@example.com:2022", want: Destination{User: "alice", Host: "example.com", Port: 2022}},
	{in: "SSH://example.com/", want: Destination{Host: "example.com"}},
	{in: "10.0.0.1", want: Destination{Host: "10.0.0.1"}},
	{in: "", wantErr: true},
	{in: "@host", wantErr: true},
	{in: "user@", wantErr: true},
	{in: "host:", wantErr: true},
	{in: "host:0", wantErr: true},
	{in: "host:65536", wantErr: true},
	{in: "host:+22", wantErr: true},
	{in: "host:ssh", wantErr: true},
	{in: "[::1", wantErr: true},
	{in: "[::1]x", wantErr: true},
	{in: "a b", wantErr: true},
	{in: "host\n", wantErr: true},
	{in: "ssh://host/path", wantErr: true},
	{in: "user@[]:22", wantErr: true},
	{in: ":22", wantErr: true},
}

func TestParseDestination(t *testing.T) {
	for _, tc := range destinationCases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDestination(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
				if !errors.Is(err, ErrConfig) {
					t.Errorf("error %v does not wrap ErrConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			// String round-trips.
			again, err := ParseDestination(got.String())
			if err != nil || again != got {
				t.Errorf("round trip of %q: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func FuzzParseDestination(f *testing.F) {
	for _, tc := range destinationCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDestination(s)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
			return
		}
		if d.Host == "" || d.Port < 0 || d.Port > 65535 || strings.ContainsAny(d.Host, "@[]/") {
			t.Fatalf("invalid result %+v from %q", d, s)
		}
		if strings.IndexFunc(d.User+d.Host, unicode.IsSpace) >= 0 {
			t.Fatalf("whitespace in %+v from %q", d, s)
		}
		again, err := ParseDestination(d.String())
		if err != nil || again != d {
			t.Fatalf("round trip %q -> %+v -> %q -> %+v, %v", s, d, d.String(), again, err)
		}
	})
}

var proxyJumpCases = []struct {
	in      string
	want    []Destination
	wantErr bool
}{
	{in: "none", want: nil},
	{in: "NONE", want: nil},
	{in: "bastion", want: []Destination{{Host: "bastion"}}},
	{in: "alice@bastion:2222,bob@inner", want: []Destination{{User: "alice", Host: "bastion", Port: 2222}, {User: "bob", Host: "inner"}}},
	{in: "a, b ,c", want: []Destination{{Host: "a"}, {Host: "b"}, {Host: "c"}}},
	{in: "ssh://u@[::1]:22,h", want: []Destination{{User: "u", Host: "::1", Port: 22}, {Host: "h"}}},
	{in: "", wantErr: true},
	{in: "a,,b", wantErr: true},
	{in: "a,", wantErr: true},
	{in: "a:0", wantErr: true},
}

func TestParseProxyJump(t *testing.T) {
	for _, tc := range proxyJumpCases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseProxyJump(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
				if !errors.Is(err, ErrConfig) {
					t.Errorf("error %v does not wrap ErrConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseProxyJump(f *testing.F) {
	for _, tc := range proxyJumpCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hops, err := ParseProxyJump(s)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
			return
		}
		if len(hops) == 0 {
			if !strings.EqualFold(strings.TrimSpace(s), "none") {
				t.Fatalf("no hops and no error from %q", s)
			}
			return
		}
		var parts []string
		for _, h := range hops {
			if h.Host == "" {
				t.Fatalf("empty host in %+v from %q", hops, s)
			}
			parts = append(parts, h.String())
		}
		again, err := ParseProxyJump(strings.Join(parts, ","))
		if err != nil || !slices.Equal(again, hops) {
			t.Fatalf("round trip %q -> %+v -> %+v, %v", s, hops, again, err)
		}
	})
}

var optionCases = []struct {
	in, key, value string
	wantErr        bool
}{
	{in: "Port=2222", key: "Port", value: "2222"},
	{in: "User alice", key: "User", value: "alice"},
	{in: "  StrictHostKeyChecking = accept-new ", key: "StrictHostKeyChecking", value: "accept-new"},
	{in: `IdentityFile="/path with space/key"`, key: "IdentityFile", value: "/path with space/key"},
	{in: "ProxyJump=a@b:22,c", key: "ProxyJump", value: "a@b:22,c"},
	{in: "UserKnownHostsFile=/a /b", key: "UserKnownHostsFile", value: "/a /b"},
	{in: "Port=", wantErr: true},
	{in: "=22", wantErr: true},
	{in: "Port", wantErr: true},
	{in: "", wantErr: true},
	{in: "Po-rt=1", wantErr: true},
	{in: "User=a\x00b", wantErr: true},
}

func TestParseOption(t *testing.T) {
	for _, tc := range optionCases {
		t.Run(tc.in, func(t *testing.T) {
			k, v, err := ParseOption(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %q=%q, want an error", k, v)
				}
				if !errors.Is(err, ErrConfig) {
					t.Errorf("error %v does not wrap ErrConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k != tc.key || v != tc.value {
				t.Errorf("got %q=%q, want %q=%q", k, v, tc.key, tc.value)
			}
		})
	}
}

func FuzzParseOption(f *testing.F) {
	for _, tc := range optionCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, v, err := ParseOption(s)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
			return
		}
		if k == "" || v == "" {
			t.Fatalf("empty key or value from %q", s)
		}
		for _, r := range k {
			if !(r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
				t.Fatalf("key %q from %q", k, s)
			}
		}
		if quoted := len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"'; !quoted && strings.TrimSpace(v) == v {
			k2, v2, err := ParseOption(k + "=" + v)
			if err != nil || k2 != k || v2 != v {
				t.Fatalf("round trip %q -> %q=%q -> %q=%q, %v", s, k, v, k2, v2, err)
			}
		}
	})
}

var tokenCases = []struct {
	in, want string
	wantErr  bool
}{
	{in: "~/.ssh/id_%h", want: "~/.ssh/id_example.com"},
	{in: "%d/.ssh/%r@%h:%p", want: "/home/me/.ssh/root@example.com:2222"},
	{in: "100%%", want: "100%"},
	{in: "%u-%n", want: "me-alias"},
	{in: "plain", want: "plain"},
	{in: "%C", wantErr: true},
	{in: "trailing%", wantErr: true},
	{in: "%", wantErr: true},
}

var testTokens = map[byte]string{'h': "example.com", 'd': "/home/me", 'r': "root", 'p': "2222", 'u': "me", 'n': "alias"}

func TestExpandTokens(t *testing.T) {
	for _, tc := range tokenCases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := expandTokens(tc.in, testTokens)
			if tc.wantErr {
				if err == nil || !errors.Is(err, ErrConfig) {
					t.Fatalf("got %q, %v; want an ErrConfig error", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func FuzzExpandTokens(f *testing.F) {
	for _, tc := range tokenCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := expandTokens(s, testTokens)
		if err != nil {
			return
		}
		if !strings.Contains(s, "%") && got != s {
			t.Fatalf("%q changed to %q without tokens", s, got)
		}
		// None of the token values contains '%', so a '%' in the output
		// comes from a "%%" in the input.
		if strings.Count(got, "%") != strings.Count(s, "%%") {
			t.Fatalf("%q -> %q: stray percent", s, got)
		}
	})
}
