package profiles

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// writeFileAtomic replaces path with data: a temporary file in the same
// directory is written, fsynced and renamed over path, so readers see the old
// or the new content, never a mix. The directory is created with mode 0700
// if missing and fsynced after the rename where the OS allows.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating a temporary file in %s: %w", dir, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	// os.CreateTemp creates the file with mode 0600, which the rename keeps.
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", tmpName, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmpName, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename in dir durable (best effort: not every OS can
// fsync a directory).
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// writeBackup stores data as a new file named base, or base-2, base-3… if
// that name is taken by different content. If a file with that name family
// already holds exactly data, it is reused and nothing is written. It
// returns the path of the backup.
func writeBackup(base string, data []byte) (string, error) {
	for i := 1; i < 1000; i++ {
		name := base
		if i > 1 {
			name = base + "-" + strconv.Itoa(i)
		}
		existing, err := os.ReadFile(name)
		if err == nil {
			if bytes.Equal(existing, data) {
				return name, nil
			}
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("checking backup %s: %w", name, err)
		}
		if err := writeFileExclusive(name, data); err != nil {
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			return "", err
		}
		return name, nil
	}
	return "", fmt.Errorf("too many backups named %s-N; delete old ones", base)
}

// writeFileExclusive writes a new file (never replacing one), fsynced, 0600.
func writeFileExclusive(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating backup %s: %w", name, err)
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("writing backup %s: %w", name, err)
	}
	syncDir(filepath.Dir(name))
	return nil
}

// corruptBackupName is profiles.json.corrupt-<UTC timestamp>.
func corruptBackupName(path string, now time.Time) string {
	return path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
}

// findIdenticalBackup returns an existing file matching pattern whose
// content equals data, so reopening the same corrupt file does not pile up
// copies.
func findIdenticalBackup(pattern string, data []byte) string {
	matches, _ := filepath.Glob(pattern)
	for _, m := range matches {
		if b, err := os.ReadFile(m); err == nil && bytes.Equal(b, data) {
			return m
		}
	}
	return ""
}
