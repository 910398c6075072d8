package profiles

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestValidate(t *testing.T) {
	ok := func(mod func(*Profile)) Profile {
		p := fullProfile()
		if mod != nil {
			mod(&p)
		}
		return p
	}
	cases := []struct {
		name   string
		p      Profile
		fields []string // every field that must be reported; nil = valid
	}{
		{"full profile", ok(nil), nil},
		{"minimal", minimalProfile("m"), nil},
		{"ipv6 host", ok(func(p *Profile) { p.Host = "2001:db8::1" }), nil},
		{"ip host", ok(func(p *Profile) { p.Host = "10.0.0.1" }), nil},
		{"empty id ok", ok(func(p *Profile) { p.ID = "" }), nil},
		{"zero options ok", ok(func(p *Profile) { p.Options = Options{} }), nil},
		{"no auth ok", ok(func(p *Profile) { p.Auth = nil }), nil},
		{"user with @ ok", ok(func(p *Profile) { p.User = "alice@corp.example" }), nil},
		{"short colour", ok(func(p *Profile) { p.Color = "#3bf" }), nil},
		{"remote forward port 0 on server", ok(func(p *Profile) {
			p.Forwards = []ForwardRule{{Kind: ForwardRemote, RemotePort: 0, LocalPort: 80}}
		}), nil},

		{"host required", ok(func(p *Profile) { p.Host = "" }), []string{"host"}},
		{"host with space", ok(func(p *Profile) { p.Host = "a b" }), []string{"host"}},
		{"host with user", ok(func(p *Profile) { p.Host = "bob@h" }), []string{"host"}},
		{"host with port", ok(func(p *Profile) { p.Host = "h:22" }), []string{"host"}},
		{"bracketed ipv6", ok(func(p *Profile) { p.Host = "[::1]" }), []string{"host"}},
		{"host option-like", ok(func(p *Profile) { p.Host = "-oProxyCommand=x" }), []string{"host"}},
		{"port zero", ok(func(p *Profile) { p.Port = 0 }), []string{"port"}},
		{"port negative", ok(func(p *Profile) { p.Port = -1 }), []string{"port"}},
		{"port too big", ok(func(p *Profile) { p.Port = 65536 }), []string{"port"}},
		{"port max ok", ok(func(p *Profile) { p.Port = 65535 }), nil},
		{"name empty", ok(func(p *Profile) { p.Name = "" }), []string{"name"}},
		{"name blank", ok(func(p *Profile) { p.Name = "  \t" }), []string{"name"}},
		{"name control", ok(func(p *Profile) { p.Name = "a\nb" }), []string{"name"}},
		{"name too long", ok(func(p *Profile) { p.Name = strings.Repeat("x", MaxNameLen+1) }), []string{"name"}},
		{"bad id", ok(func(p *Profile) { p.ID = "a/b" }), []string{"id"}},
		{"user with space", ok(func(p *Profile) { p.User = "a b" }), []string{"user"}},
		{"unknown auth", ok(func(p *Profile) { p.Auth = []AuthMethod{AuthAgent, 99} }), []string{"auth[1]"}},
		{"duplicate auth", ok(func(p *Profile) { p.Auth = []AuthMethod{AuthAgent, AuthKey, AuthAgent} }), []string{"auth[2]"}},
		{"key path spaces", ok(func(p *Profile) { p.KeyPath = " ~/.ssh/id" }), []string{"keyPath"}},
		{"jump empty", ok(func(p *Profile) { p.JumpHosts = []string{"ok", ""} }), []string{"jumpHosts[1]"}},
		{"jump bad port", ok(func(p *Profile) { p.JumpHosts = []string{"h:99999"} }), []string{"jumpHosts[0]"}},
		{"jump comma list", ok(func(p *Profile) { p.JumpHosts = []string{"a,b"} }), []string{"jumpHosts[0]"}},
		{"forward bad kind", ok(func(p *Profile) { p.Forwards = []ForwardRule{{Kind: 0, RemotePort: 1}} }), []string{"forwards[0].kind"}},
		{"web forward needs remote port", ok(func(p *Profile) { p.Forwards = []ForwardRule{{Kind: ForwardWeb}} }), []string{"forwards[0].remotePort"}},
		{"local forward bad local port", ok(func(p *Profile) {
			p.Forwards = []ForwardRule{{Kind: ForwardLocal, LocalPort: 70000, RemotePort: 80}}
		}), []string{"forwards[0].localPort"}},
		{"local forward bad remote host", ok(func(p *Profile) {
			p.Forwards = []ForwardRule{{Kind: ForwardLocal, RemoteHost: "a b", RemotePort: 80}}
		}), []string{"forwards[0].remoteHost"}},
		{"dynamic with remote", ok(func(p *Profile) { p.Forwards = []ForwardRule{{Kind: ForwardDynamic, RemotePort: 80}} }), []string{"forwards[0].remotePort"}},
		{"remote forward needs local port", ok(func(p *Profile) { p.Forwards = []ForwardRule{{Kind: ForwardRemote, RemotePort: 80}} }), []string{"forwards[0].localPort"}},
		{"label control", ok(func(p *Profile) { p.Forwards = []ForwardRule{{Kind: ForwardWeb, RemotePort: 1, Label: "a\x00"}} }), []string{"forwards[0].label"}},
		{"negative ping", ok(func(p *Profile) { p.Options.PingThreshold = Duration(-time.Second) }), []string{"options.pingThreshold"}},
		{"huge idle", ok(func(p *Profile) { p.Options.IdleTimeout = Duration(MaxDurationOpt + 1) }), []string{"options.idleTimeout"}},
		{"pool too big", ok(func(p *Profile) { p.Options.PoolSize = MaxPoolSize + 1 }), []string{"options.poolSize"}},
		{"pool negative", ok(func(p *Profile) { p.Options.PoolSize = -1 }), []string{"options.poolSize"}},
		{"bad colour", ok(func(p *Profile) { p.Color = "blue" }), []string{"color"}},
		{"bad icon", ok(func(p *Profile) { p.Icon = "two words" }), []string{"icon"}},
		{"alias pattern", ok(func(p *Profile) { p.SSHConfigAlias = "*.corp" }), []string{"sshConfigAlias"}},
		{"alias space", ok(func(p *Profile) { p.SSHConfigAlias = "a b" }), []string{"sshConfigAlias"}},
		{"several at once", Profile{Name: "", Host: "", Port: 0}, []string{"name", "host", "port"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if tc.fields == nil {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("want *ValidationError, got %v", err)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field)
				if f.Reason == "" {
					t.Errorf("field %s has no reason", f.Field)
				}
			}
			if !slices.Equal(got, tc.fields) {
				t.Fatalf("fields = %v, want %v (%v)", got, tc.fields, err)
			}
			if r, ok := ve.Reason(tc.fields[0]); !ok || !strings.Contains(err.Error(), r) {
				t.Errorf("Reason(%s) = %q, %v", tc.fields[0], r, ok)
			}
		})
	}
}

func TestParseJumpHost(t *testing.T) {
	for _, tc := range jumpHostCases {
		t.Run(tc.in, func(t *testing.T) {
			j, err := ParseJumpHost(tc.in)
			if tc.err {
				if err == nil {
					t.Fatalf("want an error, got %+v", j)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if j != tc.want {
				t.Fatalf("got %+v want %+v", j, tc.want)
			}
		})
	}
}

var jumpHostCases = []struct {
	in   string
	want JumpHost
	err  bool
}{
	{in: "bastion", want: JumpHost{Host: "bastion"}},
	{in: "bob@bastion", want: JumpHost{User: "bob", Host: "bastion"}},
	{in: "bob@bastion:2222", want: JumpHost{User: "bob", Host: "bastion", Port: 2222}},
	{in: "a@corp@bastion", want: JumpHost{User: "a@corp", Host: "bastion"}},
	{in: "[2001:db8::1]:22", want: JumpHost{Host: "2001:db8::1", Port: 22}},
	{in: "2001:db8::1", want: JumpHost{Host: "2001:db8::1"}},
	{in: "[0::]", want: JumpHost{Host: "0::"}}, // fuzz: wrote back as "0::", which was refused
	{in: "2001:db8::", want: JumpHost{Host: "2001:db8::"}},
	{in: "[2001:db8::]:22", want: JumpHost{Host: "2001:db8::", Port: 22}},
	{in: "[::1]:", err: true},
	{in: "ssh://u@h:23", want: JumpHost{User: "u", Host: "h", Port: 23}},
	{in: "", err: true},
	{in: "@h", err: true},
	{in: "h:", err: true},
	{in: "h:0", err: true},
	{in: "h:x", err: true},
	{in: "a b", err: true},
	{in: "a,b", err: true},
	{in: "[h]:22", err: true},
	{in: "[::1", err: true},
	{in: "1:2:3:22", err: true},
}

func FuzzParseJumpHost(f *testing.F) {
	for _, tc := range jumpHostCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := ParseJumpHost(s)
		if err != nil {
			return
		}
		if j.Host == "" || j.Port < 0 || j.Port > 65535 {
			t.Fatalf("accepted %q as %+v", s, j)
		}
		// What String writes parses back to the same hop.
		j2, err := ParseJumpHost(j.String())
		if err != nil || j2 != j {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, j, j.String(), j2, err)
		}
	})
}

func TestEnumsText(t *testing.T) {
	for _, m := range AllAuthMethods {
		b, err := m.MarshalText()
		var back AuthMethod
		if err != nil || back.UnmarshalText(b) != nil || back != m {
			t.Errorf("auth %v: %s %v", m, b, err)
		}
	}
	for _, k := range AllForwardKinds {
		b, err := k.MarshalText()
		var back ForwardKind
		if err != nil || back.UnmarshalText(b) != nil || back != k {
			t.Errorf("forward %v: %s %v", k, b, err)
		}
	}
	for _, k := range AllSecretKinds {
		b, err := k.MarshalText()
		var back SecretKind
		if err != nil || back.UnmarshalText(b) != nil || back != k {
			t.Errorf("secret %v: %s %v", k, b, err)
		}
	}
	if _, err := AuthMethod(42).MarshalText(); err == nil {
		t.Error("unknown auth method marshalled")
	}
	if s := ForwardKind(9).String(); s != "ForwardKind(9)" {
		t.Errorf("String of unknown kind = %q", s)
	}
	if got := (Profile{}).AuthOrder(); !slices.Equal(got, DefaultAuthOrder) {
		t.Errorf("AuthOrder default = %v", got)
	}
}

// TestProfileHasNoSecretFields: the profile type (and everything it holds)
// has no field that could carry a password or passphrase.
func TestProfileHasNoSecretFields(t *testing.T) {
	var walk func(tp reflect.Type, path string)
	seen := map[reflect.Type]bool{}
	walk = func(tp reflect.Type, path string) {
		for tp.Kind() == reflect.Slice || tp.Kind() == reflect.Pointer {
			tp = tp.Elem()
		}
		if tp.Kind() != reflect.Struct || seen[tp] {
			return
		}
		seen[tp] = true
		for i := range tp.NumField() {
			f := tp.Field(i)
			name := strings.ToLower(f.Name + " " + f.Tag.Get("json"))
			for _, bad := range []string{"password", "passphrase", "secret", "token", "credential"} {
				if strings.Contains(name, bad) {
					t.Errorf("field %s.%s looks like it holds a secret", path, f.Name)
				}
			}
			walk(f.Type, path+"."+f.Name)
		}
	}
	walk(reflect.TypeFor[Profile](), "Profile")
	if len(seen) < 3 {
		t.Fatalf("walked only %d struct types", len(seen))
	}
}

func writeKey(t *testing.T, dir, name string, pemBlock *pem.Block) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(pemBlock), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckKeyFile(t *testing.T) {
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := ssh.MarshalPrivateKey(priv, "test key")
	if err != nil {
		t.Fatal(err)
	}
	enc, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "test key", []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	plainPath := writeKey(t, dir, "id_ed25519", plain)
	encPath := writeKey(t, dir, "id_ed25519_enc", enc)
	pubPath := filepath.Join(dir, "id_ed25519.pub")
	textPath := filepath.Join(dir, "notes.txt")
	puttyPath := filepath.Join(dir, "key.ppk")
	brokenPath := filepath.Join(dir, "broken")
	for p, content := range map[string]string{
		pubPath:    string(ssh.MarshalAuthorizedKey(sshPub)),
		textPath:   "remember to buy milk\n",
		puttyPath:  "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n",
		brokenPath: "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
	} {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		name    string
		path    string
		want    error // nil = usable as is
		msg     string
		notInIt string
	}{
		{name: "ed25519", path: plainPath},
		{name: "encrypted", path: encPath, want: ErrKeyNeedsPassphrase, msg: "passphrase"},
		{name: "text file", path: textPath, want: ErrNotPrivateKey, msg: "not an SSH private key", notInIt: "milk"},
		{name: "public key", path: pubPath, want: ErrNotPrivateKey, msg: "public key; choose the matching private key (try " + plainPath + ")"},
		{name: "putty", path: puttyPath, want: ErrNotPrivateKey, msg: "puttygen"},
		{name: "broken pem", path: brokenPath, want: ErrNotPrivateKey, msg: "looks like a private key"},
		{name: "missing", path: filepath.Join(dir, "nope"), want: fs.ErrNotExist, msg: "does not exist"},
		{name: "directory", path: dir, want: ErrKeyUnreadable, msg: "directory"},
		{name: "empty path", path: "", want: ErrKeyUnreadable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckKeyFile(tc.path)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("want usable, got %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q lacks %q", err, tc.msg)
			}
			if tc.notInIt != "" && strings.Contains(err.Error(), tc.notInIt) {
				t.Errorf("message leaks file content: %q", err)
			}
		})
	}

	t.Run("tilde", func(t *testing.T) {
		t.Setenv("HOME", dir)
		if err := CheckKeyFile("~/id_ed25519"); err != nil {
			t.Fatalf("~/ path: %v", err)
		}
	})
	t.Run("unreadable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads every file")
		}
		p := writeKey(t, dir, "locked", plain)
		if err := os.Chmod(p, 0); err != nil {
			t.Fatal(err)
		}
		if err := CheckKeyFile(p); !errors.Is(err, fs.ErrPermission) || !errors.Is(err, ErrKeyUnreadable) {
			t.Fatalf("got %v", err)
		}
	})
}
