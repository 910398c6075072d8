package servers

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/porthole-app/porthole/backend/profiles"
)

func TestLoginSpecResolvesProfileOptions(t *testing.T) {
	base := SSHBase{HomeDir: t.TempDir(), ConfigPath: "none", SystemConfigPath: "none"}
	p := profiles.Profile{Name: "x", Host: "::1", Port: 2022, User: "bob", KeyPath: "~/.ssh/k", JumpHosts: []string{"j1", "carol@j2:2200"},
		Auth: []profiles.AuthMethod{profiles.AuthPassword, profiles.AuthKey}}
	spec := LoginSpec(p, base, 0)
	cfg, err := spec.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HostName != "::1" || cfg.Port != 2022 || cfg.User != "bob" || len(cfg.Jumps) != 2 || cfg.Jumps[1].User != "carol" ||
		cfg.IdentityFiles[0] != filepath.Join(base.HomeDir, ".ssh", "k") {
		t.Fatalf("cfg = %+v", cfg)
	}
	if got := authNames(cfg.AuthMethods); got != "password,publickey" {
		t.Fatalf("auth order = %q", got)
	}
	if spec.UsesAgent() || spec.AgentSocket != "none" || !LoginSpec(profiles.Profile{Host: "h"}, base, 0).UsesAgent() {
		t.Fatal("UsesAgent: a list without the agent must not use it; an empty list must")
	}
}

func authNames[T interface{ String() string }](ms []T) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.String())
	}
	return strings.Join(out, ",")
}

// TestAuthOrderMatchesSSH: the auth order a profile gets is what `ssh -G`
// says for the same ~/.ssh/config (PreferredAuthentications when set, else
// OpenSSH's default), restricted to the methods Porthole speaks; a profile's
// own non-empty list wins, like `ssh -o PreferredAuthentications=…`.
// Before the one-login change, the app's path forced the default order over
// the config's PreferredAuthentications for profiles with an empty list.
func TestAuthOrderMatchesSSH(t *testing.T) {
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("no ssh client to compare with")
	}
	home := t.TempDir()
	cfgPath := filepath.Join(home, "ssh_config")
	conf := `Host pwfirst
  HostName 127.0.0.1
  PreferredAuthentications password,keyboard-interactive,publickey
Host kionly
  HostName 127.0.0.1
  PreferredAuthentications keyboard-interactive
Host withgss
  HostName 127.0.0.1
  PreferredAuthentications gssapi-with-mic,hostbased,publickey
Host *
  User alice
`
	if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	base := SSHBase{HomeDir: home, ConfigPath: cfgPath, SystemConfigPath: "none"}
	cases := []struct {
		name  string
		p     profiles.Profile
		sshO  string // the -o PreferredAuthentications=… ssh gets for the profile's own list
		known string // what Porthole must use (checked against ssh -G below)
	}{
		{"config says password first", profiles.Profile{Host: "pwfirst"}, "", "password,keyboard-interactive,publickey"},
		{"config says keyboard-interactive only", profiles.Profile{Host: "kionly"}, "", "keyboard-interactive"},
		{"unsupported methods are skipped", profiles.Profile{Host: "withgss"}, "", "publickey"},
		{"no PreferredAuthentications: OpenSSH's default", profiles.Profile{Host: "plain.example"}, "", "publickey,keyboard-interactive,password"},
		{"linked alias", profiles.Profile{SSHConfigAlias: "pwfirst"}, "", "password,keyboard-interactive,publickey"},
		{"the profile's own list wins", profiles.Profile{Host: "pwfirst", Auth: []profiles.AuthMethod{profiles.AuthKey, profiles.AuthPassword}}, "publickey,password", "publickey,password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := LoginSpec(tc.p, base, 0).Resolve()
			if err != nil {
				t.Fatal(err)
			}
			got := authNames(cfg.AuthMethods)
			host := tc.p.Host
			if tc.p.SSHConfigAlias != "" {
				host = tc.p.SSHConfigAlias
			}
			args := []string{"-G", "-F", cfgPath}
			if tc.sshO != "" {
				args = append(args, "-o", "PreferredAuthentications="+tc.sshO)
			}
			out, err := exec.Command(sshBin, append(args, host)...).Output()
			if err != nil {
				t.Fatalf("ssh -G: %v", err)
			}
			// ssh -G leaves the option out when it is unset: then it is
			// ssh_config(5)'s default.
			pref := "gssapi-with-mic,publickey,keyboard-interactive,password"
			for _, line := range strings.Split(string(out), "\n") {
				if v, ok := strings.CutPrefix(line, "preferredauthentications "); ok {
					pref = v
				}
			}
			var want []string
			for _, m := range strings.Split(pref, ",") {
				if slices.Contains([]string{"publickey", "keyboard-interactive", "password"}, m) {
					want = append(want, m)
				}
			}
			if got != strings.Join(want, ",") || got != tc.known {
				t.Fatalf("auth order %q; ssh -G says %q (known: %q)", got, strings.Join(want, ","), tc.known)
			}
		})
	}
}
