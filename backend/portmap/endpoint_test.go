package portmap

import (
	"errors"
	"net/netip"
	"testing"
)

var canonicalHostCases = []struct {
	in, want string
	bad      bool
}{
	{in: "localhost", want: "localhost"},
	{in: "LocalHost.", want: "localhost"},
	{in: "127.0.0.1", want: "localhost"},
	{in: "127.1.2.3", want: "localhost"},
	{in: "::1", want: "localhost"},
	{in: "[::1]", want: "localhost"},
	{in: "0.0.0.0", want: "localhost"},
	{in: "::", want: "localhost"},
	{in: "::ffff:127.0.0.1", want: "localhost"},
	{in: " GPU-box.example.org ", want: "gpu-box.example.org"},
	{in: "10.0.0.5", want: "10.0.0.5"},
	{in: "::ffff:10.0.0.5", want: "10.0.0.5"},
	{in: "[fe80::1%eth0]", want: "fe80::1%eth0"},
	{in: "my_host", want: "my_host"},
	{in: "", bad: true},
	{in: "[]", bad: true},
	{in: "a b", bad: true},
	{in: "host:8888", bad: true},
	{in: "http://x", bad: true},
	{in: ".", bad: true},
	{in: "a..b", bad: true},
	{in: ".a", bad: true},
	{in: "0..", bad: true},
}

func TestCanonicalHost(t *testing.T) {
	for _, tc := range canonicalHostCases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := CanonicalHost(tc.in)
			if tc.bad {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("CanonicalHost(%q) = %q, %v; want ErrInvalid", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CanonicalHost(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

// FuzzCanonicalHost: the canonical form is accepted and is its own
// canonical form.
func FuzzCanonicalHost(f *testing.F) {
	for _, tc := range canonicalHostCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := CanonicalHost(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			return
		}
		again, err := CanonicalHost(out)
		if err != nil || again != out {
			t.Fatalf("CanonicalHost(%q) = %q, but CanonicalHost(%q) = %q, %v", in, out, out, again, err)
		}
	})
}

func TestEndpointFormatting(t *testing.T) {
	for _, tc := range []struct {
		ep        Endpoint
		str, url  string
		wantValid bool
	}{
		{Endpoint{netip.MustParseAddr("127.0.0.2"), 8888}, "127.0.0.2:8888", "http://127.0.0.2:8888/", true},
		{Endpoint{netip.MustParseAddr("127.0.0.1"), 65535}, "127.0.0.1:65535", "http://127.0.0.1:65535/", true},
		{Endpoint{netip.MustParseAddr("127.80.72.1"), 8888}, "127.80.72.1:8888", "http://127.80.72.1:8888/", false}, // serve's own
		{Endpoint{netip.MustParseAddr("10.0.0.1"), 80}, "10.0.0.1:80", "http://10.0.0.1:80/", false},
		{Endpoint{netip.MustParseAddr("::1"), 80}, "[::1]:80", "http://[::1]:80/", false},
		{Endpoint{netip.MustParseAddr("127.0.0.2"), 0}, "127.0.0.2:0", "http://127.0.0.2:0/", false},
		{Endpoint{}, "invalid endpoint", "", false},
	} {
		t.Run(tc.str, func(t *testing.T) {
			if got := tc.ep.String(); got != tc.str {
				t.Errorf("String() = %q, want %q", got, tc.str)
			}
			if got := tc.ep.URL(); got != tc.url {
				t.Errorf("URL() = %q, want %q", got, tc.url)
			}
			if got := tc.ep.IsValid(); got != tc.wantValid {
				t.Errorf("IsValid() = %v, want %v", got, tc.wantValid)
			}
		})
	}
}

func TestAddrModeString(t *testing.T) {
	for m, want := range map[AddrMode]string{
		SharedLoopback: "shared 127.0.0.1",
		PerLoginAddrs:  "per-login loopback addresses",
		AddrMode(7):    "AddrMode(7)",
	} {
		if got := m.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(m), got, want)
		}
	}
}
