package profiles

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/porthole-app/porthole/backend/atomicfile"
)

var (
	// ErrNotFound: no profile has the given ID.
	ErrNotFound = errors.New("profile not found")
	// ErrReadOnly: the file could not be read at load time, so changes are
	// refused until the user fixes it and calls Reload. The error wraps
	// LoadError (a *ParseError, ErrNewerSchema, or a read error).
	ErrReadOnly = errors.New("the profiles are read-only")
	// ErrLocked: another process held the file lock for longer than the
	// lock timeout.
	ErrLocked = errors.New("the profiles file is locked by another Porthole")
)

// DefaultLockTimeout bounds how long a change waits for another process's
// lock on the profiles file.
const DefaultLockTimeout = 10 * time.Second

// DefaultPath is os.UserConfigDir()/porthole/profiles.json.
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the configuration directory: %w", err)
	}
	return filepath.Join(dir, "porthole", "profiles.json"), nil
}

// Store keeps the profiles in one JSON file (see the package doc). It is
// safe for concurrent use, and several processes may use the same file: every
// change takes the file lock, re-reads the file, applies the change and
// writes the result atomically. List and Get answer from the copy read at
// the last load or change; Reload re-reads.
type Store struct {
	path     string
	lockPath string
	log      *slog.Logger

	// lockTimeout bounds the wait for another process's lock.
	lockTimeout time.Duration

	mu      sync.RWMutex
	list    []Profile
	loadErr error // non-nil: read-only
}

// Open reads the profiles file at path ("" means DefaultPath). It always
// returns a usable *Store; the error, if any, is also kept as LoadError:
//
//   - nil: the file was read (or does not exist yet: an empty store);
//   - a *ParseError (errors.Is ErrCorrupt): the file was left untouched,
//     copied to profiles.json.corrupt-<timestamp>, and the store is empty
//     and read-only until Reload succeeds;
//   - ErrNewerSchema, or a read error: empty and read-only too.
//
// An older schema is migrated in memory (no error); the file is rewritten
// only by the next change, after a backup profiles.json.v<N>.bak is made.
// log may be nil.
func Open(path string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{log: log, lockTimeout: DefaultLockTimeout}
	if path == "" {
		p, err := DefaultPath()
		if err != nil {
			s.loadErr = fmt.Errorf("%w; Porthole cannot store profiles", err)
			return s, s.loadErr
		}
		path = p
	}
	s.path = filepath.Clean(path)
	s.lockPath = s.path + ".lock"
	err := s.Reload()
	return s, err
}

// Path is the profiles file.
func (s *Store) Path() string { return s.path }

// LoadError is the error of the last load (Open, Reload, or the re-read at
// the start of a change); nil when the store is writable.
func (s *Store) LoadError() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.loadErr
}

// ReadOnly reports whether changes are refused (LoadError() != nil).
func (s *Store) ReadOnly() bool { return s.LoadError() != nil }

// Reload re-reads the file, e.g. after the user fixed a corrupt file or to
// see another process's changes. It returns the new LoadError.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path == "" {
		return s.loadErr // no file location: stays read-only
	}
	res, _, err := s.read()
	s.apply(res, err)
	return s.loadErr
}

// apply installs a read result (with s.mu held).
func (s *Store) apply(res parsed, err error) {
	if err != nil {
		s.list, s.loadErr = nil, err
		return
	}
	s.list, s.loadErr = res.profiles, nil
}

// read reads and parses the file. A missing file is an empty store. A
// corrupt file is backed up and reported as a *ParseError with Path and
// Backup set.
func (s *Store) read() (parsed, []byte, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return parsed{}, nil, nil
	}
	if err != nil {
		s.log.Warn("profiles file unreadable", "path", s.path, "err", err)
		return parsed{}, nil, fmt.Errorf("reading the profiles file %s: %w; check that your user can read it, then reload", s.path, err)
	}
	res, err := parseFile(data)
	var pe *ParseError
	switch {
	case errors.As(err, &pe):
		pe.Path = s.path
		pe.Backup = s.backupCorrupt(data)
		s.log.Warn("profiles file is corrupt; kept as is, profiles read-only",
			"path", s.path, "line", pe.Line, "column", pe.Column, "backup", pe.Backup, "err", pe.Err)
		return parsed{}, data, pe
	case err != nil:
		s.log.Warn("profiles file not usable; profiles read-only", "path", s.path, "err", err)
		return parsed{}, data, fmt.Errorf("profiles file %s: %w", s.path, err)
	}
	if res.version < SchemaVersion {
		s.log.Info("profiles file has an older schema; it will be converted on the next change",
			"path", s.path, "schemaVersion", res.version, "current", SchemaVersion)
	}
	if res.missingIDs > 0 {
		s.log.Info("profiles without an id were given one; it is saved on the next change",
			"path", s.path, "count", res.missingIDs)
	}
	return res, data, nil
}

func (s *Store) backupCorrupt(data []byte) string {
	b, err := atomicfile.BackupCorrupt(s.path, data, time.Now())
	if err != nil {
		s.log.Error("cannot back up the corrupt profiles file", "path", s.path, "err", err)
		return ""
	}
	return b
}

// List returns a copy of every profile, in file order.
func (s *Store) List() []Profile {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Profile, len(s.list))
	for i, p := range s.list {
		out[i] = p.Clone()
	}
	return out
}

// Get returns the profile with the given ID, or an error wrapping ErrNotFound.
func (s *Store) Get(id string) (Profile, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if i := indexOf(s.list, id); i >= 0 {
		return s.list[i].Clone(), nil
	}
	return Profile{}, notFound(id)
}

// Add validates p, gives it a new random ID (any ID in p is ignored), saves
// it at the end of the list and returns it as saved.
func (s *Store) Add(p Profile) (Profile, error) {
	p = p.Clone()
	p.ID = ""
	if err := p.Validate(); err != nil {
		return Profile{}, err
	}
	err := s.mutate("add a profile", func(list []Profile) ([]Profile, error) {
		p.ID = uniqueID(list)
		return append(list, p), nil
	})
	if err != nil {
		return Profile{}, err
	}
	return p.Clone(), nil
}

// Update validates p and replaces the saved profile with the same ID.
func (s *Store) Update(p Profile) error {
	p = p.Clone()
	if p.ID == "" {
		return notFound(p.ID)
	}
	if err := p.Validate(); err != nil {
		return err
	}
	return s.mutate("update the profile", func(list []Profile) ([]Profile, error) {
		i := indexOf(list, p.ID)
		if i < 0 {
			return nil, notFound(p.ID)
		}
		list[i] = p
		return list, nil
	})
}

// Delete removes the profile with the given ID. Its secrets are not touched:
// call SecretStore.DeleteAll(id) too.
func (s *Store) Delete(id string) error {
	return s.mutate("delete the profile", func(list []Profile) ([]Profile, error) {
		i := indexOf(list, id)
		if i < 0 {
			return nil, notFound(id)
		}
		return append(list[:i], list[i+1:]...), nil
	})
}

// Duplicate saves a copy of the profile with a new ID and the name
// "<name> (copy)" ("(copy 2)", … if taken), right after the original. Secrets
// are not copied (see CopySecrets).
func (s *Store) Duplicate(id string) (Profile, error) {
	var dup Profile
	err := s.mutate("duplicate the profile", func(list []Profile) ([]Profile, error) {
		i := indexOf(list, id)
		if i < 0 {
			return nil, notFound(id)
		}
		dup = list[i].Clone()
		dup.ID = uniqueID(list)
		dup.Name = copyName(list[i].Name, list)
		if err := dup.Validate(); err != nil {
			return nil, fmt.Errorf("the copy of %q is not valid; fix the original first: %w", list[i].Name, err)
		}
		out := make([]Profile, 0, len(list)+1)
		out = append(out, list[:i+1]...)
		out = append(out, dup)
		return append(out, list[i+1:]...), nil
	})
	if err != nil {
		return Profile{}, err
	}
	return dup.Clone(), nil
}

// mutate runs fn on a fresh read of the file, under the file lock, and
// writes the result.
func (s *Store) mutate(op string, fn func([]Profile) ([]Profile, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loadErr != nil {
		return s.readOnlyErr(op)
	}
	unlock, err := s.lockFile()
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	defer unlock()

	res, old, err := s.read()
	s.apply(res, err)
	if err != nil {
		return s.readOnlyErr(op)
	}
	list, err := fn(cloneList(res.profiles))
	if err != nil {
		return err
	}
	if res.version != 0 && res.version < SchemaVersion {
		name := s.path + ".v" + strconv.Itoa(res.version) + ".bak"
		b, err := atomicfile.WriteBackup(name, old)
		if err != nil {
			return fmt.Errorf("cannot %s: backing up the schema %d file before converting it: %w", op, res.version, err)
		}
		s.log.Info("converted the profiles file to the current schema", "path", s.path,
			"from", res.version, "to", SchemaVersion, "backup", b)
	}
	data, err := encodeFile(list)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	if err := atomicfile.WriteFile(s.path, data, 0o600); err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	s.list = list
	s.log.Debug("profiles saved", "path", s.path, "count", len(list), "op", op)
	return nil
}

func (s *Store) readOnlyErr(op string) error {
	return fmt.Errorf("%w: cannot %s: %w", ErrReadOnly, op, s.loadErr)
}

// lockFile takes the exclusive lock on profiles.json.lock, waiting at most
// s.lockTimeout. The lock file is never deleted (deleting it would let two
// processes lock different files).
func (s *Store) lockFile() (func(), error) {
	l, err := atomicfile.Lock(context.Background(), s.lockPath, s.lockTimeout)
	if errors.Is(err, atomicfile.ErrLocked) {
		return nil, fmt.Errorf("%w: waited %s for %s; close the other Porthole window or try again", ErrLocked, s.lockTimeout, s.lockPath)
	}
	if err != nil {
		return nil, err
	}
	return func() {
		if err := l.Unlock(); err != nil {
			s.log.Warn("unlocking the profiles lock file", "path", s.lockPath, "err", err)
		}
	}, nil
}

func notFound(id string) error {
	return fmt.Errorf("%w: no profile has id %q (it may have been deleted elsewhere; reload the list)", ErrNotFound, id)
}

func indexOf(list []Profile, id string) int {
	for i := range list {
		if list[i].ID == id {
			return i
		}
	}
	return -1
}

func cloneList(list []Profile) []Profile {
	out := make([]Profile, len(list))
	for i, p := range list {
		out[i] = p.Clone()
	}
	return out
}

func uniqueID(list []Profile) string {
	for {
		id := NewID()
		if indexOf(list, id) < 0 {
			return id
		}
	}
}

func copyName(name string, list []Profile) string {
	taken := func(n string) bool {
		for _, p := range list {
			if p.Name == n {
				return true
			}
		}
		return false
	}
	c := name + " (copy)"
	for i := 2; taken(c); i++ {
		c = fmt.Sprintf("%s (copy %d)", name, i)
	}
	return c
}

// UpdateForwards replaces the forward rules of the profile id with what fn
// returns from the saved ones, under the file lock (other fields are kept
// as saved, so it never undoes a concurrent edit of the server). The result
// is validated like Update; the saved profile is returned.
func (s *Store) UpdateForwards(id string, fn func([]ForwardRule) ([]ForwardRule, error)) (Profile, error) {
	var saved Profile
	err := s.mutate("save the forward rules", func(list []Profile) ([]Profile, error) {
		i := indexOf(list, id)
		if i < 0 {
			return nil, notFound(id)
		}
		p := list[i].Clone()
		fwds, err := fn(slices.Clone(p.Forwards))
		if err != nil {
			return nil, err
		}
		p.Forwards = fwds
		if err := p.Validate(); err != nil {
			return nil, err
		}
		list[i], saved = p, p.Clone()
		return list, nil
	})
	if err != nil {
		return Profile{}, err
	}
	return saved, nil
}
