package sshconn

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

var knownHostsNameCases = []struct {
	name string
	ok   bool
}{
	{"example.com:22", true},
	{"example.com:2222", true},
	{"127.0.0.1:22", true},
	{"[::1]:2222", true},
	{"[fe80::1%eth0]:22", true},
	{"host_name-1.internal", true},
	{"bücher.example:22", true},
	// Issue 14 finding 10b: a name that forges a hashed entry, a comment,
	// a marker, a pattern or a second field.
	{"|1|c2FsdA==|aGFzaA==:22", false},
	{"a|b:22", false},
	{"#comment:22", false},
	{"host#x:22", false},
	{"@revoked:22", false},
	{"@cert-authority:22", false},
	{"a,b:22", false},
	{"*.example.com:22", false},
	{"h?st:22", false},
	{"!example.com:22", false},
	{"[x]y:22", false},
	{"a\\b:22", false},
	{"host name:22", false},
	{"host\tname:22", false},
	{"host\nevil ssh-ed25519 AAAA:22", false},
	{"host\x00:22", false},
	{"host\u2028:22", false},
	{"host\u00a0:22", false},
	{"\xff:22", false},
	{":22", false},
	{"", false},
	{"example.com:0", false},
	{"example.com:65536", false},
	{"example.com:022", false},
	{strings.Repeat("a", 256) + ":22", false},
}

func TestCheckKnownHostsName(t *testing.T) {
	for _, tc := range knownHostsNameCases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckKnownHostsName(tc.name)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckKnownHostsName(%q) = %v; want ok=%v", tc.name, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
		})
	}
}

// A refused name is never written: the file stays as it was.
func TestAppendKnownHostRefusesForgedNames(t *testing.T) {
	key := testPublicKey(t)
	for _, tc := range knownHostsNameCases {
		if tc.ok {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "known_hosts")
			for _, hash := range []bool{false, true} {
				if err := AppendKnownHost(file, tc.name, key, hash); !errors.Is(err, ErrConfig) {
					t.Fatalf("AppendKnownHost(%q, hash=%v) = %v; want ErrConfig", tc.name, hash, err)
				}
			}
			if _, err := os.Stat(file); err == nil {
				t.Fatal("known_hosts was written")
			}
		})
	}
}

func testPublicKey(t testing.TB) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(strings.NewReader(strings.Repeat("k", 64)))
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Every name CheckKnownHostsName accepts is written as exactly one entry
// for exactly that host: one field, no marker, plain or hashed, matching
// the host it was written for.
func FuzzCheckKnownHostsName(f *testing.F) {
	for _, tc := range knownHostsNameCases {
		f.Add(tc.name)
	}
	key := testPublicKey(f)
	f.Fuzz(func(t *testing.T, name string) {
		if CheckKnownHostsName(name) != nil {
			return
		}
		host := knownhosts.Normalize(name)
		for _, line := range []string{
			knownhosts.Line([]string{host}, key),
			xknownhosts.HashHostname(host) + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))),
		} {
			if strings.ContainsAny(line, "\n\r") {
				t.Fatalf("line for %q has a line break: %q", name, line)
			}
			marker, hosts, got, _, rest, err := ssh.ParseKnownHosts([]byte(line + "\n"))
			if err != nil || marker != "" || len(hosts) != 1 || len(rest) != 0 || string(got.Marshal()) != string(key.Marshal()) {
				t.Fatalf("line for %q parses as marker %q hosts %q rest %q err %v", name, marker, hosts, rest, err)
			}
			if !strings.HasPrefix(hosts[0], "|1|") && hosts[0] != host {
				t.Fatalf("line for %q names %q, want %q", name, hosts[0], host)
			}
		}
	})
}
