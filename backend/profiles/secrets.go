package profiles

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

var (
	// ErrSecretNotFound: no secret of that kind is stored for the profile.
	ErrSecretNotFound = errors.New("no secret stored")
	// ErrKeyringUnavailable: the OS keyring cannot be used (no Secret Service
	// running, no D-Bus session, keyring locked and not unlocked…). The UI
	// should say so and ask for the secret at each connection instead;
	// Porthole never falls back to writing secrets to disk.
	ErrKeyringUnavailable = errors.New("the system keyring is not available")
)

// SecretKind is which secret of a profile.
type SecretKind int

const (
	SecretPassword      SecretKind = iota + 1 // the destination's login password
	SecretKeyPassphrase                       // the passphrase of Profile.KeyPath
	// SecretJumpPasswords holds the passwords of the profile's jump hosts,
	// each keyed by its hop ("user@host:port"), in one entry; use
	// JumpPassword, SetJumpPassword and DeleteJumpPassword.
	SecretJumpPasswords
)

// AllSecretKinds lists every SecretKind.
var AllSecretKinds = []SecretKind{SecretPassword, SecretKeyPassphrase, SecretJumpPasswords}

// String is the name used in keyring entries: "password", "key-passphrase",
// "jump-passwords".
func (k SecretKind) String() string {
	switch k {
	case SecretPassword:
		return "password"
	case SecretKeyPassphrase:
		return "key-passphrase"
	case SecretJumpPasswords:
		return "jump-passwords"
	}
	return fmt.Sprintf("SecretKind(%d)", int(k))
}

// ParseSecretKind is the inverse of String.
func ParseSecretKind(s string) (SecretKind, error) {
	for _, k := range AllSecretKinds {
		if s == k.String() {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown secret kind %q (known: password, key-passphrase, jump-passwords)", s)
}

// MarshalText writes the name; an unknown value is an error.
func (k SecretKind) MarshalText() ([]byte, error) {
	if _, err := ParseSecretKind(k.String()); err != nil {
		return nil, err
	}
	return []byte(k.String()), nil
}

// UnmarshalText reads a name written by MarshalText.
func (k *SecretKind) UnmarshalText(b []byte) error {
	v, err := ParseSecretKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// SecretStore keeps the secrets of profiles, outside the profiles file.
// Implementations never log secret values.
type SecretStore interface {
	// Get returns the secret, ErrSecretNotFound, or ErrKeyringUnavailable.
	Get(profileID string, kind SecretKind) (string, error)
	// Set stores (or replaces) the secret.
	Set(profileID string, kind SecretKind, secret string) error
	// Delete removes the secret; removing a missing secret is not an error.
	Delete(profileID string, kind SecretKind) error
	// DeleteAll removes every secret of the profile (e.g. when it is deleted).
	DeleteAll(profileID string) error
}

// secretKey is the account name of a secret: "<profileID>/<kind>".
func secretKey(profileID string, kind SecretKind) (string, error) {
	if profileID == "" || !idPattern.MatchString(profileID) {
		return "", fmt.Errorf("invalid profile id %q for a secret: want 1–64 letters, digits, '-' or '_'", profileID)
	}
	if _, err := ParseSecretKind(kind.String()); err != nil {
		return "", err
	}
	return profileID + "/" + kind.String(), nil
}

// MaxHopLen bounds a hop identity ("user@host:port") of a jump password.
const MaxHopLen = 512

// checkHop validates a hop identity "user@host:port".
func checkHop(hop string) error {
	if hop == "" || len(hop) > MaxHopLen || !utf8.ValidString(hop) || hasSpaceOrControl(hop) || !strings.Contains(hop, "@") {
		return fmt.Errorf("invalid hop %q for a jump host password: want user@host:port", hop)
	}
	return nil
}

func jumpPasswords(s SecretStore, profileID string) (map[string]string, error) {
	v, err := s.Get(profileID, SecretJumpPasswords)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		// Never wrap the JSON error: it could quote the value.
		return nil, fmt.Errorf("the saved jump host passwords of profile %s are unreadable; save them again", profileID)
	}
	return m, nil
}

// JumpPassword returns the saved password of jump host hop (its
// "user@host:port") of the profile: ErrSecretNotFound if there is none.
// The profile's own password (SecretPassword) is the destination's and is
// never returned for a jump host.
func JumpPassword(s SecretStore, profileID, hop string) (string, error) {
	if err := checkHop(hop); err != nil {
		return "", err
	}
	m, err := jumpPasswords(s, profileID)
	if err != nil {
		return "", err
	}
	v, ok := m[hop]
	if !ok {
		return "", fmt.Errorf("%w: password of jump host %s of profile %s", ErrSecretNotFound, hop, profileID)
	}
	return v, nil
}

// SetJumpPassword saves the password of jump host hop of the profile.
func SetJumpPassword(s SecretStore, profileID, hop, secret string) error {
	if err := checkHop(hop); err != nil {
		return err
	}
	m, err := jumpPasswords(s, profileID)
	if errors.Is(err, ErrSecretNotFound) {
		m, err = map[string]string{}, nil
	}
	if err != nil {
		return err
	}
	m[hop] = secret
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("cannot encode the jump host passwords of profile %s", profileID)
	}
	return s.Set(profileID, SecretJumpPasswords, string(b))
}

// DeleteJumpPassword removes the password of jump host hop of the profile;
// removing a missing one is not an error.
func DeleteJumpPassword(s SecretStore, profileID, hop string) error {
	if err := checkHop(hop); err != nil {
		return err
	}
	m, err := jumpPasswords(s, profileID)
	if errors.Is(err, ErrSecretNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, ok := m[hop]; !ok {
		return nil
	}
	delete(m, hop)
	if len(m) == 0 {
		return s.Delete(profileID, SecretJumpPasswords)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("cannot encode the jump host passwords of profile %s", profileID)
	}
	return s.Set(profileID, SecretJumpPasswords, string(b))
}

// CopySecrets copies every secret of profile from to profile to (for
// Store.Duplicate). Missing secrets are skipped.
func CopySecrets(s SecretStore, from, to string) error {
	for _, k := range AllSecretKinds {
		v, err := s.Get(from, k)
		if errors.Is(err, ErrSecretNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := s.Set(to, k, v); err != nil {
			return err
		}
	}
	return nil
}

// Memory is an in-memory SecretStore for tests and for "remember until
// Porthole quits". The zero value is ready to use.
type Memory struct {
	mu          sync.Mutex
	m           map[string]string
	unavailable bool
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory { return &Memory{} }

// SetUnavailable makes every call fail with ErrKeyringUnavailable (or work
// again), to test how callers handle a missing keyring.
func (m *Memory) SetUnavailable(v bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unavailable = v
}

func (m *Memory) check(profileID string, kind SecretKind) (string, error) {
	key, err := secretKey(profileID, kind)
	if err != nil {
		return "", err
	}
	if m.unavailable {
		return "", fmt.Errorf("%w (memory store switched off)", ErrKeyringUnavailable)
	}
	return key, nil
}

// Get implements SecretStore.
func (m *Memory) Get(profileID string, kind SecretKind) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key, err := m.check(profileID, kind)
	if err != nil {
		return "", err
	}
	v, ok := m.m[key]
	if !ok {
		return "", fmt.Errorf("%w: %s of profile %s", ErrSecretNotFound, kind, profileID)
	}
	return v, nil
}

// Set implements SecretStore.
func (m *Memory) Set(profileID string, kind SecretKind, secret string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	key, err := m.check(profileID, kind)
	if err != nil {
		return err
	}
	if m.m == nil {
		m.m = make(map[string]string)
	}
	m.m[key] = secret
	return nil
}

// Delete implements SecretStore.
func (m *Memory) Delete(profileID string, kind SecretKind) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	key, err := m.check(profileID, kind)
	if err != nil {
		return err
	}
	delete(m.m, key)
	return nil
}

// DeleteAll implements SecretStore.
func (m *Memory) DeleteAll(profileID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.check(profileID, SecretPassword); err != nil {
		return err
	}
	for key := range m.m {
		if strings.HasPrefix(key, profileID+"/") {
			delete(m.m, key)
		}
	}
	return nil
}

// Len is the number of stored secrets.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}
