package profiles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	gokeyring "github.com/zalando/go-keyring"
)

// KeyringService is the service name of Porthole's keyring entries; the
// account name is "<profileID>/<kind>".
const KeyringService = "porthole"

// DefaultKeyringProbeTimeout bounds the check that the keyring is reachable
// (D-Bus session bus and Secret Service on Linux).
const DefaultKeyringProbeTimeout = 3 * time.Second

// keyringBackend is the part of go-keyring that Keyring uses (a seam for tests).
type keyringBackend interface {
	Get(service, user string) (string, error)
	Set(service, user, password string) error
	Delete(service, user string) error
}

type goKeyring struct{}

func (goKeyring) Get(service, user string) (string, error) { return gokeyring.Get(service, user) }
func (goKeyring) Set(service, user, pw string) error       { return gokeyring.Set(service, user, pw) }
func (goKeyring) Delete(service, user string) error        { return gokeyring.Delete(service, user) }

// Keyring is the SecretStore of the operating system: the Secret Service
// (GNOME Keyring, KWallet…) over D-Bus on Linux, the Keychain on macOS, the
// Credential Manager on Windows, through github.com/zalando/go-keyring.
//
// Entries are service "porthole", account "<profileID>/<kind>".
//
// On Linux every call first checks, within the probe timeout, that a D-Bus
// session bus is reachable (never auto-launching one) and that a Secret
// Service owns or can be activated on it; if not, the call fails with
// ErrKeyringUnavailable instead of hanging. Any other failure of the keyring
// (locked and the unlock prompt dismissed, service gone…) is reported as
// ErrKeyringUnavailable too. A secret is never written anywhere else.
//
// If the collection is locked, the Secret Service shows its own unlock
// prompt and the call waits while the user answers it (go-keyring offers no
// way to cancel).
type Keyring struct {
	log          *slog.Logger
	backend      keyringBackend
	probe        func(ctx context.Context) error
	probeTimeout time.Duration

	mu sync.Mutex // one keyring conversation at a time (at most one prompt)
}

var _ SecretStore = (*Keyring)(nil)

// NewKeyring returns the OS keyring as a SecretStore. log may be nil; it
// never receives secret values.
func NewKeyring(log *slog.Logger) *Keyring {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Keyring{log: log, backend: goKeyring{}, probe: probeKeyring, probeTimeout: DefaultKeyringProbeTimeout}
}

// Available reports nil if the keyring can be used now, else an error
// wrapping ErrKeyringUnavailable that says why. It does not block longer
// than the probe timeout.
func (k *Keyring) Available() error {
	ctx, cancel := context.WithTimeout(context.Background(), k.probeTimeout)
	defer cancel()
	if err := k.probe(ctx); err != nil {
		if !errors.Is(err, ErrKeyringUnavailable) {
			err = fmt.Errorf("%w: %w", ErrKeyringUnavailable, err)
		}
		return err
	}
	return nil
}

func (k *Keyring) start(op string, profileID string, kind SecretKind) (string, error) {
	key, err := secretKey(profileID, kind)
	if err != nil {
		return "", err
	}
	if err := k.Available(); err != nil {
		k.log.Warn("keyring unavailable", "op", op, "profile", profileID, "kind", kind, "err", err)
		return "", fmt.Errorf("cannot %s the %s of profile %s: %w; Porthole will ask for it when connecting instead", op, kind, profileID, err)
	}
	return key, nil
}

// mapErr turns a go-keyring error into ours. go-keyring's errors never
// contain the secret.
func (k *Keyring) mapErr(op, profileID string, kind SecretKind, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gokeyring.ErrNotFound):
		return fmt.Errorf("%w: no %s saved for profile %s", ErrSecretNotFound, kind, profileID)
	case errors.Is(err, gokeyring.ErrSetDataTooBig):
		return fmt.Errorf("cannot %s the %s of profile %s: the keyring refuses a value this large: %w", op, kind, profileID, err)
	}
	k.log.Warn("keyring call failed", "op", op, "profile", profileID, "kind", kind, "err", err)
	return fmt.Errorf("cannot %s the %s of profile %s: %w: %v; unlock the keyring or let Porthole ask for it when connecting", op, kind, profileID, ErrKeyringUnavailable, err)
}

// Get implements SecretStore.
func (k *Keyring) Get(profileID string, kind SecretKind) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.start("read", profileID, kind)
	if err != nil {
		return "", err
	}
	v, err := k.backend.Get(KeyringService, key)
	if err != nil {
		return "", k.mapErr("read", profileID, kind, err)
	}
	k.log.Debug("keyring read", "profile", profileID, "kind", kind)
	return v, nil
}

// Set implements SecretStore.
func (k *Keyring) Set(profileID string, kind SecretKind, secret string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.start("save", profileID, kind)
	if err != nil {
		return err
	}
	if err := k.backend.Set(KeyringService, key, secret); err != nil {
		return k.mapErr("save", profileID, kind, err)
	}
	k.log.Debug("keyring saved", "profile", profileID, "kind", kind)
	return nil
}

// Delete implements SecretStore; deleting a missing secret is not an error.
func (k *Keyring) Delete(profileID string, kind SecretKind) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.delete(profileID, kind)
}

func (k *Keyring) delete(profileID string, kind SecretKind) error {
	key, err := k.start("delete", profileID, kind)
	if err != nil {
		return err
	}
	err = k.mapErr("delete", profileID, kind, k.backend.Delete(KeyringService, key))
	if errors.Is(err, ErrSecretNotFound) {
		return nil
	}
	if err == nil {
		k.log.Debug("keyring deleted", "profile", profileID, "kind", kind)
	}
	return err
}

// DeleteAll implements SecretStore: it deletes every kind of secret of the
// profile (and only of that profile).
func (k *Keyring) DeleteAll(profileID string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var errs []error
	for _, kind := range AllSecretKinds {
		if err := k.delete(profileID, kind); err != nil {
			errs = append(errs, err)
			if errors.Is(err, ErrKeyringUnavailable) {
				break
			}
		}
	}
	return errors.Join(errs...)
}
