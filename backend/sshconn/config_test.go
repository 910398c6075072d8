package sshconn

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const resolveConfig = `
# A config exercising the keywords Porthole resolves.
Host *.example.com !secret.example.com
    User wild
    Port 2200

Host secret.example.com
    HostName 10.0.0.5

Host bastion
    HostName bastion.internal
    User jumper
    Port 2222
    IdentityFile ~/.ssh/bastion_key

Host inner
    HostName inner.internal
    ProxyJump bastion

Host deep
    ProxyJump inner,carol@other:2022

Host web
    HostName %h.corp.example
    IdentityFile ~/.ssh/id_%r_%h
    IdentityFile /keys/%u-%p
    IdentitiesOnly yes
    ConnectTimeout 7
    ServerAliveInterval 15
    ServerAliveCountMax 5
    UserKnownHostsFile ~/.ssh/kh1 %d/kh2
    StrictHostKeyChecking accept-new
    HashKnownHosts yes

Host strict
    StrictHostKeyChecking yes
Host lax
    StrictHostKeyChecking no

Host auth
    PreferredAuthentications password,publickey
    PasswordAuthentication no

Host nokh
    UserKnownHostsFile none
    GlobalKnownHostsFile none

Host loop1
    ProxyJump loop2
Host loop2
    ProxyJump loop1

Host proxycmd
    ProxyCommand nc %h %p

Host badport
    Port ssh
Host badtoken
    IdentityFile ~/.ssh/%C

Host * !local*
    User defaultuser
`

func TestResolve(t *testing.T) {
	env := newEnv(t)
	env.writeConfig(t, resolveConfig)
	home := env.home
	ssh := func(n string) string { return filepath.Join(home, ".ssh", n) }
	defaultIDs := []string{ssh("id_rsa"), ssh("id_ecdsa"), ssh("id_ecdsa_sk"), ssh("id_ed25519"), ssh("id_ed25519_sk")}
	local := ""
	if u, err := user.Current(); err == nil {
		local = u.Username
	}

	type want struct {
		hostName string
		user     string
		port     int
		ids      []string // nil: not checked
		jumps    []string // "user@host:port" of each hop
		check    func(t *testing.T, c *Config)
	}
	cases := []struct {
		name    string
		host    string
		opts    Options
		want    want
		wantErr error
	}{
		{name: "defaults", host: "plain", want: want{hostName: "plain", user: "defaultuser", port: 22, ids: defaultIDs,
			check: func(t *testing.T, c *Config) {
				if !slices.Equal(c.KnownHostsFiles, []string{ssh("known_hosts"), ssh("known_hosts2")}) {
					t.Errorf("KnownHostsFiles = %v", c.KnownHostsFiles)
				}
				if c.StrictHostKeyChecking != StrictAsk || c.AliveCountMax != 3 || c.AliveInterval != 0 || c.ConnectTimeout != 0 {
					t.Errorf("defaults: %+v", c)
				}
				if !slices.Equal(c.AuthMethods, DefaultAuthOrder) {
					t.Errorf("AuthMethods = %v, want %v", c.AuthMethods, DefaultAuthOrder)
				}
			}}},
		{name: "local user when config has none", host: "localbox", want: want{hostName: "localbox", user: local, port: 22}},
		{name: "wildcard pattern", host: "a.example.com", want: want{hostName: "a.example.com", user: "wild", port: 2200}},
		{name: "negated pattern", host: "secret.example.com", want: want{hostName: "10.0.0.5", user: "defaultuser", port: 22}},
		{name: "user@host beats config", host: "bob@a.example.com", want: want{hostName: "a.example.com", user: "bob", port: 2200}},
		{name: "host:port beats config", host: "a.example.com:2300", want: want{hostName: "a.example.com", user: "wild", port: 2300}},
		{name: "ssh URI", host: "ssh://u@a.example.com:2301", want: want{hostName: "a.example.com", user: "u", port: 2301}},
		{name: "options beat everything", host: "bob@a.example.com:2300", opts: Options{User: "opt", Port: 2401},
			want: want{hostName: "a.example.com", user: "opt", port: 2401}},
		{name: "-o overrides beat user@host and config", host: "bob@bastion",
			opts: Options{ConfigOverrides: map[string]string{"port": "2500", "USER": "ouser", "HostName": "other.internal"}},
			want: want{hostName: "other.internal", user: "ouser", port: 2500}},
		{name: "HostName user port IdentityFile", host: "bastion",
			want: want{hostName: "bastion.internal", user: "jumper", port: 2222, ids: []string{ssh("bastion_key")}}},
		{name: "-i comes before config IdentityFile", host: "bastion", opts: Options{IdentityFiles: []string{"/tmp/k1", "~/k2"}},
			want: want{hostName: "bastion.internal", user: "jumper", port: 2222, ids: []string{"/tmp/k1", filepath.Join(home, "k2"), ssh("bastion_key")}}},
		{name: "tokens and the rest", host: "web", want: want{hostName: "web.corp.example", user: "defaultuser", port: 22,
			ids: []string{ssh("id_defaultuser_web.corp.example"), "/keys/" + local + "-22"},
			check: func(t *testing.T, c *Config) {
				if !c.IdentitiesOnly || c.ConnectTimeout != 7*time.Second || c.AliveInterval != 15*time.Second || c.AliveCountMax != 5 {
					t.Errorf("got %+v", c)
				}
				if !slices.Equal(c.KnownHostsFiles, []string{ssh("kh1"), filepath.Join(home, "kh2")}) {
					t.Errorf("KnownHostsFiles = %v", c.KnownHostsFiles)
				}
				if c.StrictHostKeyChecking != StrictAcceptNew || !c.HashKnownHosts {
					t.Errorf("strict=%v hash=%v", c.StrictHostKeyChecking, c.HashKnownHosts)
				}
			}}},
		{name: "-o IdentityFile and StrictHostKeyChecking", host: "web",
			opts: Options{ConfigOverrides: map[string]string{"IdentityFile": "/o/key", "StrictHostKeyChecking": "yes", "ConnectTimeout": "3"}},
			want: want{hostName: "web.corp.example", user: "defaultuser", port: 22,
				ids: []string{"/o/key", ssh("id_defaultuser_web.corp.example"), "/keys/" + local + "-22"},
				check: func(t *testing.T, c *Config) {
					if c.StrictHostKeyChecking != StrictYes || c.ConnectTimeout != 3*time.Second {
						t.Errorf("strict=%v timeout=%v", c.StrictHostKeyChecking, c.ConnectTimeout)
					}
				}}},
		{name: "StrictHostKeyChecking yes", host: "strict", want: want{hostName: "strict", user: "defaultuser", port: 22,
			check: func(t *testing.T, c *Config) {
				if c.StrictHostKeyChecking != StrictYes {
					t.Errorf("strict=%v", c.StrictHostKeyChecking)
				}
			}}},
		{name: "StrictHostKeyChecking no", host: "lax", want: want{hostName: "lax", user: "defaultuser", port: 22,
			check: func(t *testing.T, c *Config) {
				if c.StrictHostKeyChecking != StrictNo {
					t.Errorf("strict=%v", c.StrictHostKeyChecking)
				}
			}}},
		{name: "PreferredAuthentications and PasswordAuthentication", host: "auth", want: want{hostName: "auth", user: "defaultuser", port: 22,
			check: func(t *testing.T, c *Config) {
				if !slices.Equal(c.AuthMethods, []AuthKind{AuthPublicKey}) {
					t.Errorf("AuthMethods=%v", c.AuthMethods)
				}
			}}},
		{name: "known_hosts none", host: "nokh", want: want{hostName: "nokh", user: "defaultuser", port: 22,
			check: func(t *testing.T, c *Config) {
				if len(c.KnownHostsFiles) != 0 || len(c.GlobalKnownHostsFiles) != 0 {
					t.Errorf("known=%v global=%v", c.KnownHostsFiles, c.GlobalKnownHostsFiles)
				}
			}}},
		{name: "ProxyJump from config, hop resolved through config", host: "inner",
			want: want{hostName: "inner.internal", user: "defaultuser", port: 22, jumps: []string{"jumper@bastion.internal:2222"},
				check: func(t *testing.T, c *Config) {
					if !slices.Equal(c.Jumps[0].IdentityFiles, []string{ssh("bastion_key")}) || c.Jumps[0].Alias != "bastion" {
						t.Errorf("hop: %+v", c.Jumps[0])
					}
				}}},
		{name: "ProxyJump chain: first hop's own ProxyJump comes first", host: "deep",
			want: want{hostName: "deep", user: "defaultuser", port: 22,
				jumps: []string{"jumper@bastion.internal:2222", "defaultuser@inner.internal:22", "carol@other:2022"}}},
		{name: "ProxyJump none option", host: "inner", opts: Options{ProxyJump: "none"},
			want: want{hostName: "inner.internal", user: "defaultuser", port: 22, jumps: nil}},
		{name: "ProxyJump none override", host: "inner", opts: Options{ConfigOverrides: map[string]string{"ProxyJump": "none"}},
			want: want{hostName: "inner.internal", user: "defaultuser", port: 22, jumps: nil}},
		{name: "ProxyJump option with hop syntax", host: "plain", opts: Options{ProxyJump: "alice@bastion:2022,a.example.com"},
			want: want{hostName: "plain", user: "defaultuser", port: 22, jumps: []string{"alice@bastion.internal:2022", "wild@a.example.com:2200"}}},
		{name: "options do not reach jump hosts", host: "inner", opts: Options{User: "x", Port: 99, IdentityFiles: []string{"/x"}},
			want: want{hostName: "inner.internal", user: "x", port: 99, jumps: []string{"jumper@bastion.internal:2222"},
				check: func(t *testing.T, c *Config) {
					if slices.Contains(c.Jumps[0].IdentityFiles, "/x") {
						t.Errorf("-i reached the jump host: %v", c.Jumps[0].IdentityFiles)
					}
				}}},
		{name: "ProxyJump loop", host: "loop1", wantErr: ErrConfig},
		{name: "ProxyCommand", host: "proxycmd", wantErr: ErrUnsupported},
		{name: "ProxyCommand with ProxyJump none is still refused", host: "proxycmd", opts: Options{ProxyJump: "none"}, wantErr: ErrUnsupported},
		{name: "bad port", host: "badport", wantErr: ErrConfig},
		{name: "bad token", host: "badtoken", wantErr: ErrConfig},
		{name: "bad destination", host: "a b", wantErr: ErrConfig},
		{name: "bad option value", host: "plain", opts: Options{ConfigOverrides: map[string]string{"IdentitiesOnly": "maybe"}}, wantErr: ErrConfig},
		{name: "unsupported option", host: "plain", opts: Options{ConfigOverrides: map[string]string{"Compression": "yes"}}, wantErr: ErrUnsupported},
		{name: "bad ProxyJump option", host: "plain", opts: Options{ProxyJump: "a,,b"}, wantErr: ErrConfig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.HomeDir, opts.ConfigPath = home, env.config
			c, err := Resolve(tc.host, opts)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %+v, %v; want %v", c, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.HostName != tc.want.hostName || c.User != tc.want.user || c.Port != tc.want.port {
				t.Errorf("got %s@%s:%d, want %s@%s:%d", c.User, c.HostName, c.Port, tc.want.user, tc.want.hostName, tc.want.port)
			}
			if tc.want.ids != nil && !slices.Equal(c.IdentityFiles, tc.want.ids) {
				t.Errorf("IdentityFiles = %v, want %v", c.IdentityFiles, tc.want.ids)
			}
			var jumps []string
			for _, j := range c.Jumps {
				jumps = append(jumps, j.String())
				if len(j.Jumps) != 0 {
					t.Errorf("hop %s has nested jumps", j)
				}
			}
			if !slices.Equal(jumps, tc.want.jumps) {
				t.Errorf("jumps = %v, want %v", jumps, tc.want.jumps)
			}
			if tc.want.check != nil {
				tc.want.check(t, c)
			}
		})
	}
}

func TestResolveInclude(t *testing.T) {
	env := newEnv(t)
	confd := filepath.Join(env.home, "confd")
	writeFile(t, filepath.Join(confd, "10-work.conf"), `
Host work
    HostName work.internal
    Port 2022
    User worker
Host *.work
    ProxyJump work
`)
	writeFile(t, filepath.Join(confd, "20-more.conf"), `
Host more
    HostName more.internal
`)
	writeFile(t, filepath.Join(confd, "ignored.txt"), "Host more\n    HostName wrong\n")
	// Include comes first, so its values win over the catch-all below (first value wins).
	env.writeConfig(t, "Include "+confd+"/*.conf\n\nHost *\n    User fallback\n    Port 22\n")

	cases := []struct {
		host     string
		hostName string
		user     string
		port     int
		jumps    []string
	}{
		{host: "work", hostName: "work.internal", user: "worker", port: 2022},
		{host: "more", hostName: "more.internal", user: "fallback", port: 22},
		{host: "db.work", hostName: "db.work", user: "fallback", port: 22, jumps: []string{"worker@work.internal:2022"}},
		{host: "elsewhere", hostName: "elsewhere", user: "fallback", port: 22},
	}
	for _, tc := range cases {
		t.Run(tc.host, func(t *testing.T) {
			c := env.resolve(t, tc.host, Options{})
			if c.HostName != tc.hostName || c.User != tc.user || c.Port != tc.port {
				t.Errorf("got %s, want %s@%s:%d", c, tc.user, tc.hostName, tc.port)
			}
			var jumps []string
			for _, j := range c.Jumps {
				jumps = append(jumps, j.String())
			}
			if !slices.Equal(jumps, tc.jumps) {
				t.Errorf("jumps = %v, want %v", jumps, tc.jumps)
			}
		})
	}
}

func TestResolveConfigFiles(t *testing.T) {
	t.Run("missing default config is fine", func(t *testing.T) {
		home := t.TempDir()
		c, err := Resolve("h", Options{HomeDir: home, SystemConfigPath: "none"})
		if err != nil || c.HostName != "h" || c.Port != 22 {
			t.Fatalf("%+v, %v", c, err)
		}
	})
	t.Run("missing explicit config is an error", func(t *testing.T) {
		_, err := Resolve("h", Options{HomeDir: t.TempDir(), ConfigPath: filepath.Join(t.TempDir(), "nope")})
		if !errors.Is(err, ErrConfig) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unparsable config is an error naming the file", func(t *testing.T) {
		env := newEnv(t)
		env.writeConfig(t, "Match exec \"true\"\n  User x\n")
		_, err := Resolve("h", Options{HomeDir: env.home, ConfigPath: env.config})
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), env.config) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("system config is read after the user config", func(t *testing.T) {
		env := newEnv(t)
		env.writeConfig(t, "Host h\n  Port 2000\n")
		sys := filepath.Join(env.home, "system_config")
		writeFile(t, sys, "Host *\n  Port 3000\n  User sysuser\n")
		c, err := Resolve("h", Options{HomeDir: env.home, ConfigPath: env.config, SystemConfigPath: sys})
		if err != nil || c.Port != 2000 || c.User != "sysuser" {
			t.Fatalf("%+v, %v", c, err)
		}
	})
	t.Run("default config path is HomeDir/.ssh/config", func(t *testing.T) {
		env := newEnv(t)
		env.writeConfig(t, "Host h\n  HostName from-home\n")
		c, err := Resolve("h", Options{HomeDir: env.home, SystemConfigPath: "none"})
		if err != nil || c.HostName != "from-home" {
			t.Fatalf("%+v, %v", c, err)
		}
	})
}

func TestPingDefaults(t *testing.T) {
	cases := []struct {
		interval     time.Duration
		count        int
		wantInterval time.Duration
		wantTimeout  time.Duration
	}{
		{interval: 0, count: 3, wantInterval: 0, wantTimeout: DefaultPingTimeout},
		{interval: 15 * time.Second, count: 5, wantInterval: 15 * time.Second, wantTimeout: 75 * time.Second},
		{interval: 10 * time.Second, count: 0, wantInterval: 10 * time.Second, wantTimeout: 30 * time.Second},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%v×%d", tc.interval, tc.count), func(t *testing.T) {
			c := &Config{AliveInterval: tc.interval, AliveCountMax: tc.count}
			i, to := c.PingDefaults()
			if i != tc.wantInterval || to != tc.wantTimeout {
				t.Errorf("got %v, %v; want %v, %v", i, to, tc.wantInterval, tc.wantTimeout)
			}
		})
	}
}

// FuzzResolveConfig: whatever ~/.ssh/config holds and whatever host is asked
// for, Resolve either gives a dialable destination (a host name, a port in
// range, flat jump hosts that are dialable too) or an ErrConfig/ErrUnsupported
// error of one line. Seeded with TestResolve's config and hosts.
func FuzzResolveConfig(f *testing.F) {
	for _, h := range []string{"plain", "localbox", "a.example.com", "secret.example.com", "bob@a.example.com", "a.example.com:2300",
		"ssh://u@a.example.com:2301", "bastion", "web", "strict", "lax", "auth", "nokh", "inner", "deep", "loop1", "proxycmd",
		"badport", "badtoken", "a b"} {
		f.Add(resolveConfig, h)
	}
	f.Add("Host x\n  HostName \"a b\"\n", "x")
	f.Add("Host=x\n\tPort=0\n", "x")
	f.Add("Host x\n  ProxyJump x\n", "x")
	f.Add("Host *\n  HostName %h.%h.%h.%h\n  User %r%r\n", "x")
	f.Fuzz(func(t *testing.T, content, host string) {
		if strings.Contains(strings.ToLower(content), "include") {
			return // Include reads files outside the test (the real home directory)
		}
		home := t.TempDir()
		cfgPath := filepath.Join(home, "config")
		if err := os.WriteFile(cfgPath, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Resolve(host, Options{HomeDir: home, ConfigPath: cfgPath, SystemConfigPath: "none"})
		if err != nil {
			if !errors.Is(err, ErrConfig) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Resolve(%q): error %v is neither ErrConfig nor ErrUnsupported", host, err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("Resolve(%q): error is not one line: %q", host, err)
			}
			return
		}
		for i, hop := range append([]*Config{c}, c.Jumps...) {
			if hop.HostName == "" || hop.Port < 1 || hop.Port > 65535 {
				t.Fatalf("Resolve(%q): hop %d is not dialable: %q port %d", host, i, hop.HostName, hop.Port)
			}
			if i > 0 && len(hop.Jumps) != 0 {
				t.Fatalf("Resolve(%q): hop %d has its own jumps", host, i)
			}
		}
	})
}
