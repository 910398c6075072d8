package portmap

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
// directory is written (mode 0600), fsynced and renamed over path, so a
// reader sees the old or the new content, never a mix. The directory is
// created 0700 if missing and fsynced after the rename where the OS allows.
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
	// os.CreateTemp makes the file 0600; Chmod in case the umask or OS differ.
	if err := tmp.Chmod(0o600); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("setting the mode of %s: %w", tmpName, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", tmpName, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmpName, err)
	}
	// On Windows a rename over a file another process is reading at that
	// instant can fail; a short retry covers it.
	for attempt := 0; ; attempt++ {
		err = os.Rename(tmpName, path)
		if err == nil {
			break
		}
		if attempt == 4 {
			return fmt.Errorf("replacing %s: %w", path, err)
		}
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
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

// backupCorrupt copies a damaged file's bytes to
// <path>.corrupt-<UTC time>[-N], unless a copy with the same bytes already
// exists (reopening the same damaged file does not pile up copies). It
// returns the copy's path.
func backupCorrupt(path string, data []byte, now time.Time) (string, error) {
	if matches, _ := filepath.Glob(globEscape(path) + ".corrupt-*"); len(matches) > 0 {
		for _, m := range matches {
			if b, err := os.ReadFile(m); err == nil && bytes.Equal(b, data) {
				return m, nil
			}
		}
	}
	base := path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	for i := 1; i < 100; i++ {
		name := base
		if i > 1 {
			name += "-" + strconv.Itoa(i)
		}
		err := writeFileExclusive(name, data)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		return name, nil
	}
	return "", fmt.Errorf("too many copies named %s-N; delete old ones", base)
}

// writeFileExclusive writes a new file (never replacing one), fsynced, 0600.
func writeFileExclusive(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("writing %s: %w", name, err)
	}
	syncDir(filepath.Dir(name))
	return nil
}

// globEscape quotes the glob metacharacters of a literal path.
func globEscape(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', '\\':
			if filepath.Separator == '\\' && s[i] == '\\' {
				b = append(b, s[i])
				continue
			}
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}
