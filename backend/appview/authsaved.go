package appview

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	gokeyring "github.com/zalando/go-keyring"

	"github.com/porthole-app/porthole/backend/profiles"
)

// HTTP sign-ins an app asked for (basic auth) may be kept in the OS keyring,
// per app and realm: service "porthole", account
// "http-auth/<origin>/<realm>", the value {"user": …, "password": …}. Never
// in a file or a log. Without a reachable keyring nothing is kept and the
// dialog does not offer it.

// SavedAuth keeps HTTP sign-ins in the keyring.
type SavedAuth struct {
	log       *slog.Logger
	available func() error
	backend   keyringBackend
}

type keyringBackend interface {
	Get(service, user string) (string, error)
	Set(service, user, password string) error
	Delete(service, user string) error
}

type goKeyring struct{}

func (goKeyring) Get(s, u string) (string, error) { return gokeyring.Get(s, u) }
func (goKeyring) Set(s, u, p string) error        { return gokeyring.Set(s, u, p) }
func (goKeyring) Delete(s, u string) error        { return gokeyring.Delete(s, u) }

// NewSavedAuth uses the OS keyring (reachability checked first, as for the
// servers' secrets: profiles.Keyring.Available).
func NewSavedAuth(log *slog.Logger) *SavedAuth {
	k := profiles.NewKeyring(log)
	return &SavedAuth{log: log, available: k.Available, backend: goKeyring{}}
}

func authAccount(origin, realm string) string { return "http-auth/" + origin + "/" + realm }

type savedCred struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// Available: the keyring can keep a sign-in now.
func (s *SavedAuth) Available() bool { return s != nil && s.available() == nil }

// Lookup returns the sign-in kept for origin and realm, if any.
func (s *SavedAuth) Lookup(origin, realm string) (user, password string, ok bool) {
	if !s.Available() {
		return "", "", false
	}
	v, err := s.backend.Get(profiles.KeyringService, authAccount(origin, realm))
	if err != nil {
		if !errors.Is(err, gokeyring.ErrNotFound) {
			s.log.Warn("a kept sign-in could not be read from the keyring", "app", origin, "err", err)
		}
		return "", "", false
	}
	var c savedCred
	if json.Unmarshal([]byte(v), &c) != nil || c.User == "" {
		return "", "", false
	}
	return c.User, c.Password, true
}

// Save keeps a sign-in for origin and realm.
func (s *SavedAuth) Save(origin, realm, user, password string) error {
	if !s.Available() {
		return fmt.Errorf("the keyring is not reachable: the sign-in for %s is not kept", origin)
	}
	b, err := json.Marshal(savedCred{User: user, Password: password})
	if err != nil {
		return err
	}
	if err := s.backend.Set(profiles.KeyringService, authAccount(origin, realm), string(b)); err != nil {
		return fmt.Errorf("keep the sign-in for %s in the keyring: %w", origin, err)
	}
	return nil
}

// Forget drops the sign-in kept for origin and realm (it was refused).
func (s *SavedAuth) Forget(origin, realm string) {
	if s.Available() {
		if err := s.backend.Delete(profiles.KeyringService, authAccount(origin, realm)); err != nil && !errors.Is(err, gokeyring.ErrNotFound) {
			s.log.Warn("a refused sign-in could not be removed from the keyring", "app", origin, "err", err)
		}
	}
}
