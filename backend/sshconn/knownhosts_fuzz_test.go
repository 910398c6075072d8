package sshconn

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"
)

// knownHostsCases are known_hosts files, host names and ports as the table
// tests in hostkeys_test.go use them. $OTHER stands for another real key
// ("ssh-ed25519 AAAA…").
var knownHostsCases = []struct {
	existing string
	host     string
	port     int
	hash     bool
}{
	{"", "127.0.0.1", 2200, false},
	{"example.org ssh-ed25519 AAAA-no-newline", "127.0.0.1", 2200, false},
	{"# comment\n\nexample.org $OTHER\n", "gpu1.example.org", 22, true},
	{"@revoked * $OTHER\n", "::1", 22, false},
	{"|1|c2FsdA==|aGFzaA== $OTHER\r\n", "fe80::1%eth0", 2222, true},
	{"[127.0.0.1]:2200,example.org ssh-rsa AAAA\n", "host-with.dots_and-dashes", 65535, false},
	{"[127.0.0.1]:2200 $OTHER\n", "127.0.0.1", 2200, false}, // a changed key: the saved one is found too
}

// fuzzHostOK is the host names a profile or ssh_config can give (see
// profiles' checkHost): no spaces or control characters, no user, port,
// brackets around IPv6, pattern characters or path separators.
func fuzzHostOK(h string) bool {
	switch {
	case h == "" || len(h) > 255 || !utf8.ValidString(h):
		return false
	case strings.ContainsFunc(h, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return false
	case strings.HasPrefix(h, "[") || strings.HasPrefix(h, "-") || strings.Contains(h, "@"):
		return false
	case strings.Contains(h, ":") && net.ParseIP(strings.SplitN(h, "%", 2)[0]) == nil:
		return false
	case strings.ContainsAny(h, "/\\*?!,|#][@"):
		// The last three are refused by profile validation and by
		// CheckKnownHostsName: they would forge known_hosts entries.
		return false
	}
	return true
}

// FuzzKnownHosts: a host key Porthole saves (AppendKnownHost, hashed or not)
// to any known_hosts file that reads is found for that host the next time, and
// the lines that were there are kept; a file that does not read is reported
// in one message that says what to do.
func FuzzKnownHosts(f *testing.F) {
	key, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)).Public())
	if err != nil {
		f.Fatal(err)
	}
	other, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize)).Public())
	if err != nil {
		f.Fatal(err)
	}
	otherText := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other)))
	for _, tc := range knownHostsCases {
		f.Add(strings.ReplaceAll(tc.existing, "$OTHER", otherText), tc.host, tc.port, tc.hash)
	}
	log := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, existing, host string, port int, hash bool) {
		if !fuzzHostOK(host) || port < 1 || port > 65535 {
			return
		}
		file := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(file, []byte(existing), 0o600); err != nil {
			t.Fatal(err)
		}
		hop := &Config{HostName: host, Port: port, StrictHostKeyChecking: StrictYes, HashKnownHosts: hash}
		if _, err := newHostKeyChecker(context.Background(), hop, []string{file}, nil, "hop", nil, log, nil, nil); err != nil {
			if !strings.Contains(err.Error(), "fix or delete the offending line") {
				t.Fatalf("unreadable known_hosts: %v", err)
			}
			return
		}
		if err := AppendKnownHost(file, hop.knownHostsName(), key, hash); err != nil {
			t.Fatal(err)
		}
		after, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(after, []byte(existing)) {
			t.Fatalf("the existing lines changed:\n%q\n%q", existing, after)
		}
		added := strings.TrimPrefix(string(after[len(existing):]), "\n")
		if strings.Count(added, "\n") != 1 || !strings.HasSuffix(added, "\n") {
			t.Fatalf("added %q: not one line", added)
		}
		h, err := newHostKeyChecker(context.Background(), hop, []string{file}, nil, "hop", nil, log, nil, nil)
		if err != nil {
			t.Fatalf("known_hosts does not read after adding %q: %v", added, err)
		}
		if err := h.check(host, &net.TCPAddr{IP: net.IPv6loopback, Port: port}, key); err != nil {
			if errors.Is(err, ErrHostKeyRevoked) && strings.Contains(existing, "@revoked") {
				return // the file revokes this key (or every key) already
			}
			t.Fatalf("the key just saved for %s as %q is not found: %v", hop.knownHostsName(), added, err)
		}
	})
}
