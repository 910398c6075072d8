package sshconn

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestParseCiphers(t *testing.T) {
	defaults := ssh.SupportedAlgorithms().Ciphers
	tests := []struct {
		in      string
		check   func([]string) bool
		wantErr string
	}{
		{"aes128-gcm@openssh.com", func(c []string) bool { return slices.Equal(c, []string{"aes128-gcm@openssh.com"}) }, ""},
		{"aes128-ctr, chacha20-poly1305@openssh.com", func(c []string) bool { return len(c) == 2 && c[1] == "chacha20-poly1305@openssh.com" }, ""},
		{"^chacha20-poly1305@openssh.com", func(c []string) bool { return c[0] == "chacha20-poly1305@openssh.com" && len(c) == len(defaults) }, ""},
		{"-aes128-ctr", func(c []string) bool { return !slices.Contains(c, "aes128-ctr") && len(c) == len(defaults)-1 }, ""},
		{"+aes128-cbc", func(c []string) bool { return c[len(c)-1] == "aes128-cbc" }, ""},
		{"rot13", nil, `unknown cipher "rot13"`},
		{",", nil, "no cipher named"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseCiphers(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(got) {
				t.Fatalf("parseCiphers(%q) = %v, %v", tt.in, got, err)
			}
		})
	}
}

func TestResolveCiphersOverride(t *testing.T) {
	cfg, err := Resolve("example.com", Options{ConfigPath: "none", SystemConfigPath: "none", HomeDir: t.TempDir(),
		ConfigOverrides: map[string]string{"Ciphers": "aes128-gcm@openssh.com"}})
	if err != nil || !slices.Equal(cfg.Ciphers, []string{"aes128-gcm@openssh.com"}) {
		t.Fatalf("Resolve with -o Ciphers: %v, %v", cfg, err)
	}
	if _, err := Resolve("example.com", Options{ConfigPath: "none", SystemConfigPath: "none", HomeDir: t.TempDir(),
		ConfigOverrides: map[string]string{"Ciphers": "rot13"}}); err == nil {
		t.Fatal("an unknown cipher was accepted")
	}
}
