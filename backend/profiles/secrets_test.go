package profiles

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	gokeyring "github.com/zalando/go-keyring"
)

// secretStoreContract is what every SecretStore must do.
func secretStoreContract(t *testing.T, s SecretStore) {
	t.Helper()
	id1, id2 := NewID(), NewID()
	t.Cleanup(func() { _ = s.DeleteAll(id1); _ = s.DeleteAll(id2) })

	if _, err := s.Get(id1, SecretPassword); !errors.Is(err, ErrSecretNotFound) {
		t.Fatalf("Get before Set: %v", err)
	}
	const pw, pass = "pä$$ wörd\n\"'`;", "key passphrase"
	if err := s.Set(id1, SecretPassword, pw); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := s.Set(id1, SecretKeyPassphrase, pass); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := s.Set(id2, SecretPassword, "other"); err != nil {
		t.Fatalf("Set: %v", err)
	}
	for _, c := range []struct {
		id   string
		kind SecretKind
		want string
	}{{id1, SecretPassword, pw}, {id1, SecretKeyPassphrase, pass}, {id2, SecretPassword, "other"}} {
		got, err := s.Get(c.id, c.kind)
		if err != nil || got != c.want {
			t.Fatalf("Get(%s, %s) = %q, %v; want %q", c.id, c.kind, got, err, c.want)
		}
	}
	// Replace.
	if err := s.Set(id1, SecretPassword, "new"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(id1, SecretPassword); got != "new" {
		t.Fatalf("after replace: %q", got)
	}
	// Delete one kind; deleting again is fine.
	if err := s.Delete(id1, SecretPassword); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(id1, SecretPassword); err != nil {
		t.Fatalf("Delete of a missing secret: %v", err)
	}
	if _, err := s.Get(id1, SecretPassword); !errors.Is(err, ErrSecretNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if got, _ := s.Get(id1, SecretKeyPassphrase); got != pass {
		t.Fatal("Delete removed another kind")
	}
	// DeleteAll touches only that profile.
	if err := s.Set(id1, SecretPassword, "again"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAll(id1); err != nil {
		t.Fatal(err)
	}
	for _, k := range AllSecretKinds {
		if _, err := s.Get(id1, k); !errors.Is(err, ErrSecretNotFound) {
			t.Fatalf("%s after DeleteAll: %v", k, err)
		}
	}
	if got, err := s.Get(id2, SecretPassword); err != nil || got != "other" {
		t.Fatalf("DeleteAll removed another profile's secret: %q %v", got, err)
	}
	if err := s.DeleteAll(id1); err != nil {
		t.Fatalf("DeleteAll with nothing left: %v", err)
	}
	if err := s.DeleteAll(id2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(id2, SecretPassword); !errors.Is(err, ErrSecretNotFound) {
		t.Fatalf("after DeleteAll: %v", err)
	}
	// Bad arguments.
	if err := s.Set("", SecretPassword, "x"); err == nil {
		t.Error("Set with an empty profile id")
	}
	if err := s.Set("a/b", SecretPassword, "x"); err == nil {
		t.Error("Set with a '/' in the profile id")
	}
	if err := s.Set(id1, SecretKind(0), "x"); err == nil {
		t.Error("Set with an unknown kind")
	}
}

func TestMemorySecretStore(t *testing.T) {
	m := NewMemory()
	secretStoreContract(t, m)
	if m.Len() != 0 {
		t.Fatalf("left %d secrets", m.Len())
	}

	id := NewID()
	if err := m.Set(id, SecretPassword, "pw"); err != nil {
		t.Fatal(err)
	}
	m.SetUnavailable(true)
	if _, err := m.Get(id, SecretPassword); !errors.Is(err, ErrKeyringUnavailable) {
		t.Fatalf("unavailable Get: %v", err)
	}
	if err := m.Set(id, SecretPassword, "x"); !errors.Is(err, ErrKeyringUnavailable) {
		t.Fatalf("unavailable Set: %v", err)
	}
	m.SetUnavailable(false)

	// CopySecrets for Store.Duplicate.
	id2 := NewID()
	if err := CopySecrets(m, id, id2); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Get(id2, SecretPassword); got != "pw" {
		t.Fatalf("copied password = %q", got)
	}
	if _, err := m.Get(id2, SecretKeyPassphrase); !errors.Is(err, ErrSecretNotFound) {
		t.Fatalf("CopySecrets invented a passphrase: %v", err)
	}

	// Concurrent use is safe (run with -race).
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pid := fmt.Sprintf("p%d", i)
			_ = m.Set(pid, SecretPassword, "x")
			_, _ = m.Get(pid, SecretPassword)
			_ = m.DeleteAll(pid)
		}()
	}
	wg.Wait()
	if m.Len() != 2 {
		t.Fatalf("Len = %d", m.Len())
	}
}

// fakeBackend stands in for go-keyring to test Keyring's mapping and keys.
type fakeBackend struct {
	mu    sync.Mutex
	items map[string]string // "service|user"
	err   error
	calls []string
}

func (f *fakeBackend) Get(service, user string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "get "+service+" "+user)
	if f.err != nil {
		return "", f.err
	}
	v, ok := f.items[service+"|"+user]
	if !ok {
		return "", gokeyring.ErrNotFound
	}
	return v, nil
}

func (f *fakeBackend) Set(service, user, pw string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "set "+service+" "+user)
	if f.err != nil {
		return f.err
	}
	if f.items == nil {
		f.items = map[string]string{}
	}
	f.items[service+"|"+user] = pw
	return nil
}

func (f *fakeBackend) Delete(service, user string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "delete "+service+" "+user)
	if f.err != nil {
		return f.err
	}
	if _, ok := f.items[service+"|"+user]; !ok {
		return gokeyring.ErrNotFound
	}
	delete(f.items, service+"|"+user)
	return nil
}

func TestKeyringWithFakeBackend(t *testing.T) {
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logBuf, &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fb := &fakeBackend{}
	k := NewKeyring(log)
	k.backend = fb
	k.probe = func(context.Context) error { return nil }
	secretStoreContract(t, k)

	if err := k.Set("abc", SecretKeyPassphrase, "s3cret-value"); err != nil {
		t.Fatal(err)
	}
	if _, ok := fb.items["porthole|abc/key-passphrase"]; !ok {
		t.Fatalf("entry not stored as service porthole, account <id>/<kind>: %v", fb.items)
	}

	// Backend failures other than "not found" mean the keyring is unusable.
	fb.err = errors.New("org.freedesktop.DBus.Error.ServiceUnknown: The name org.freedesktop.secrets was not provided by any .service files")
	_, err := k.Get("abc", SecretPassword)
	if !errors.Is(err, ErrKeyringUnavailable) || !strings.Contains(err.Error(), "ask for it") {
		t.Fatalf("backend failure: %v", err)
	}
	if err := k.DeleteAll("abc"); !errors.Is(err, ErrKeyringUnavailable) {
		t.Fatalf("DeleteAll on a failing backend: %v", err)
	}
	fb.err = gokeyring.ErrSetDataTooBig
	if err := k.Set("abc", SecretPassword, "x"); err == nil || errors.Is(err, ErrKeyringUnavailable) {
		t.Fatalf("too big: %v", err)
	}
	fb.err = nil

	// A failing probe stops the call before the backend is used.
	k.probe = func(context.Context) error { return errors.New("no bus") }
	fb.calls = nil
	if _, err := k.Get("abc", SecretPassword); !errors.Is(err, ErrKeyringUnavailable) {
		t.Fatalf("probe failure: %v", err)
	}
	if len(fb.calls) != 0 {
		t.Fatalf("backend used although the probe failed: %v", fb.calls)
	}

	logMu.Lock()
	defer logMu.Unlock()
	if strings.Contains(logBuf.String(), "s3cret-value") || strings.Contains(logBuf.String(), "pä$$") {
		t.Fatalf("a secret reached the log:\n%s", logBuf.String())
	}
	if !strings.Contains(logBuf.String(), "keyring saved") {
		t.Fatalf("log is silent, so the check above proves nothing:\n%s", logBuf.String())
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestKeyringNoSessionBus: without a usable D-Bus session the real Keyring
// fails fast with ErrKeyringUnavailable, never hangs, never auto-launches a
// bus, and writes nothing to disk. Safe to run anywhere.
func TestKeyringNoSessionBus(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the D-Bus Secret Service is Linux only")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_DATA_HOME", filepath.Join(home, ".local", "share"))

	// A socket that accepts connections but never says a word.
	dir, err := os.MkdirTemp("", "ph-bus")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	silentPath := filepath.Join(dir, "bus")
	ln, err := net.Listen("unix", silentPath)
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var connsMu sync.Mutex
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			connsMu.Lock()
			conns = append(conns, c)
			connsMu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-acceptDone
		connsMu.Lock()
		defer connsMu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})

	_, runBusErr := os.Stat(fmt.Sprintf("/run/user/%d/bus", os.Getuid()))
	cases := []struct {
		name, addr string
		skip       bool
		msg        string
	}{
		{"unset", "", runBusErr == nil, "no D-Bus session bus"},
		{"autolaunch", "autolaunch:", runBusErr == nil, "no D-Bus session bus"},
		{"missing socket", "unix:path=" + filepath.Join(dir, "nothing-here"), false, "connecting"},
		{"silent bus", "unix:path=" + silentPath, false, "did not answer in time"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip {
				t.Skip("this machine has /run/user/<uid>/bus, which godbus finds without the variable")
			}
			t.Setenv("DBUS_SESSION_BUS_ADDRESS", tc.addr)
			k := NewKeyring(nil)
			k.probeTimeout = time.Second
			start := time.Now()
			err := k.Set(NewID(), SecretPassword, "never-on-disk-123")
			if !errors.Is(err, ErrKeyringUnavailable) {
				t.Fatalf("Set: %v", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			_, err = k.Get(NewID(), SecretPassword)
			if !errors.Is(err, ErrKeyringUnavailable) {
				t.Fatalf("Get: %v", err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("took %s; it must fail fast", d)
			}
			if os.Getenv("DBUS_SESSION_BUS_ADDRESS") != tc.addr {
				t.Fatalf("a session bus was launched: DBUS_SESSION_BUS_ADDRESS=%s", os.Getenv("DBUS_SESSION_BUS_ADDRESS"))
			}
		})
	}
	assertNotOnDisk(t, home, "never-on-disk-123")
}

// assertNotOnDisk fails if any file under dir contains secret.
func assertNotOnDisk(t *testing.T, dir, secret string) {
	t.Helper()
	files := 0
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		files++
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(secret)) {
			t.Errorf("secret found in plain text in %s", p)
		}
		return nil
	})
	t.Logf("checked %d files under %s for the secret", files, dir)
}

// TestKeyringGnome runs against a real gnome-keyring inside a private D-Bus
// session; see testdata/keyring-test.sh, which sets PORTHOLE_KEYRING_TEST=1.
func TestKeyringGnome(t *testing.T) {
	if os.Getenv("PORTHOLE_KEYRING_TEST") != "1" {
		t.Skip("set PORTHOLE_KEYRING_TEST=1 inside a D-Bus session with an unlocked keyring (backend/profiles/testdata/keyring-test.sh)")
	}
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		t.Fatal("PORTHOLE_KEYRING_TEST=1 but DBUS_SESSION_BUS_ADDRESS is not set; run testdata/keyring-test.sh")
	}
	k := NewKeyring(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err := k.Available(); err != nil {
		t.Fatalf("Available: %v", err)
	}

	t.Run("contract", func(t *testing.T) { secretStoreContract(t, k) })

	t.Run("entry format and not on disk", func(t *testing.T) {
		id := NewID()
		const secret = "gnome-test-secret-6f1c2b"
		if err := k.Set(id, SecretKeyPassphrase, secret); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k.DeleteAll(id) })
		// Another client of the Secret Service finds it under service
		// "porthole" and account "<id>/<kind>" (go-keyring's attributes).
		if path, err := exec.LookPath("secret-tool"); err == nil {
			out, err := exec.Command(path, "lookup", "service", KeyringService, "username", id+"/key-passphrase").Output()
			if err != nil || string(out) != secret {
				t.Fatalf("secret-tool lookup = %q, %v", out, err)
			}
		} else {
			t.Log("secret-tool not installed; skipping the cross-check")
		}
		if home, err := os.UserHomeDir(); err == nil && strings.HasPrefix(home, os.TempDir()) {
			assertNotOnDisk(t, home, secret)
		}
	})

	t.Run("no session bus", func(t *testing.T) {
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/porthole-test-bus")
		start := time.Now()
		_, err := NewKeyring(nil).Get(NewID(), SecretPassword)
		if !errors.Is(err, ErrKeyringUnavailable) {
			t.Fatalf("Get: %v", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("took %s", d)
		}
	})
}

// Jump hosts' passwords are kept per hop, apart from the profile's own
// (the destination's) password, and go with the profile (Duplicate, delete).
func TestJumpPasswords(t *testing.T) {
	m := NewMemory()
	id := NewID()
	const a, b = "alice@bastion:22", "bob@[::1]:2222"
	if err := m.Set(id, SecretPassword, "dest"); err != nil {
		t.Fatal(err)
	}
	if _, err := JumpPassword(m, id, a); !errors.Is(err, ErrSecretNotFound) {
		t.Fatalf("JumpPassword before Set: %v", err)
	}
	if err := SetJumpPassword(m, id, a, "pw-a"); err != nil {
		t.Fatal(err)
	}
	if err := SetJumpPassword(m, id, b, "pw-b"); err != nil {
		t.Fatal(err)
	}
	for hop, want := range map[string]string{a: "pw-a", b: "pw-b"} {
		if v, err := JumpPassword(m, id, hop); err != nil || v != want {
			t.Errorf("JumpPassword(%s) = %q, %v", hop, v, err)
		}
	}
	if v, _ := m.Get(id, SecretPassword); v != "dest" {
		t.Fatalf("the destination's password became %q", v)
	}
	for _, bad := range []string{"", "bastion:22", "a b@h:1", "a@h:1\n", strings.Repeat("x", MaxHopLen) + "@h:1"} {
		if err := SetJumpPassword(m, id, bad, "x"); err == nil {
			t.Errorf("SetJumpPassword(%q) accepted", bad)
		}
	}
	id2 := NewID()
	if err := CopySecrets(m, id, id2); err != nil {
		t.Fatal(err)
	}
	if v, err := JumpPassword(m, id2, b); err != nil || v != "pw-b" {
		t.Fatalf("copied jump password = %q, %v", v, err)
	}
	if err := DeleteJumpPassword(m, id, a); err != nil {
		t.Fatal(err)
	}
	if _, err := JumpPassword(m, id, a); !errors.Is(err, ErrSecretNotFound) {
		t.Fatalf("after DeleteJumpPassword: %v", err)
	}
	if err := DeleteJumpPassword(m, id, a); err != nil {
		t.Fatalf("deleting a missing one: %v", err)
	}
	if err := m.DeleteAll(id); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteAll(id2); err != nil {
		t.Fatal(err)
	}
	if m.Len() != 0 {
		t.Fatalf("DeleteAll left %d secrets", m.Len())
	}
}
