package appview

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	gokeyring "github.com/zalando/go-keyring"
)

type memKeyring map[string]string

func (m memKeyring) Get(s, u string) (string, error) {
	if v, ok := m[s+"|"+u]; ok {
		return v, nil
	}
	return "", gokeyring.ErrNotFound
}
func (m memKeyring) Set(s, u, p string) error { m[s+"|"+u] = p; return nil }
func (m memKeyring) Delete(s, u string) error { delete(m, s+"|"+u); return nil }

func TestSavedAuthPerAppAndRealm(t *testing.T) {
	m := memKeyring{}
	s := &SavedAuth{log: slog.New(slog.DiscardHandler), available: func() error { return nil }, backend: m}
	a, b := "http://127.0.0.2:8080", "http://127.0.0.3:8080"
	if err := s.Save(a, "lab", "amy", "pw 1"); err != nil {
		t.Fatal(err)
	}
	if u, p, ok := s.Lookup(a, "lab"); !ok || u != "amy" || p != "pw 1" {
		t.Fatalf("Lookup = %q %q %v", u, p, ok)
	}
	for _, c := range [][2]string{{b, "lab"}, {a, "other"}} {
		if _, _, ok := s.Lookup(c[0], c[1]); ok {
			t.Fatalf("a sign-in for %s %q was found; it was kept for %s \"lab\" only", c[0], c[1], a)
		}
	}
	for k := range m {
		if !strings.HasPrefix(k, "porthole|http-auth/"+a+"/lab") {
			t.Fatalf("keyring account %q", k)
		}
	}
	s.Forget(a, "lab")
	if _, _, ok := s.Lookup(a, "lab"); ok {
		t.Fatal("a forgotten sign-in is still found")
	}
	// No keyring: nothing kept, nothing found, and the save says so.
	off := &SavedAuth{log: slog.New(slog.DiscardHandler), available: func() error { return errors.New("no Secret Service") }, backend: m}
	if off.Available() {
		t.Fatal("available without a keyring")
	}
	if err := off.Save(a, "lab", "amy", "pw"); err == nil || !strings.Contains(err.Error(), "not kept") {
		t.Fatalf("Save without a keyring: %v", err)
	}
	if len(m) != 0 {
		t.Fatal("written without a keyring")
	}
}
