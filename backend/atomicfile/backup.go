package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CorruptInfix names the copies BackupCorrupt makes:
// <path>.corrupt-<UTC time>[-N].
const CorruptInfix = ".corrupt-"

// corruptTimeLayout is the UTC time in a BackupCorrupt name.
const corruptTimeLayout = "20060102T150405Z"

// maxBackupNames bounds the -N suffixes WriteBackup tries.
const maxBackupNames = 1000

// BackupCorrupt keeps data, the bytes of path that failed to parse, in a new
// file <path>.corrupt-<now, UTC, 20060102T150405Z> (or with -2, -3… when
// that name holds other bytes) and returns its path. The file at path is not
// touched. If a <path>.corrupt-* file already holds exactly data, its path
// is returned and nothing is written, so opening the same damaged file again
// does not pile up copies.
func BackupCorrupt(path string, data []byte, now time.Time) (string, error) {
	if m := findCopy(path+CorruptInfix, data); m != "" {
		return m, nil
	}
	return WriteBackup(path+CorruptInfix+now.UTC().Format(corruptTimeLayout), data)
}

// WriteBackup stores data in a new file named name, or name-2, name-3… when
// that name is taken by other bytes, fsynced, mode 0600, and returns its
// path. A file of that family that already holds exactly data is reused and
// nothing is written. It never replaces a file.
func WriteBackup(name string, data []byte) (string, error) {
	for i := 1; i <= maxBackupNames; i++ {
		n := name
		if i > 1 {
			n = name + "-" + strconv.Itoa(i)
		}
		existing, err := os.ReadFile(n)
		if err == nil {
			if bytes.Equal(existing, data) {
				return n, nil
			}
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("checking the backup %s (make it readable or move it away): %w", n, err)
		}
		err = writeExclusive(n, data)
		if errors.Is(err, fs.ErrExist) {
			continue // created by someone else in the meantime
		}
		if err != nil {
			return "", err
		}
		return n, nil
	}
	return "", fmt.Errorf("too many backups named %s-N; delete old ones", name)
}

// writeExclusive writes a new file (never replacing one), fsynced, 0600.
func writeExclusive(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating the backup %s (check the directory's permissions and free disk space): %w", name, err)
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("writing the backup %s failed; free disk space and try again: %w", name, err)
	}
	syncDir(filepath.Dir(name))
	return nil
}

// findCopy returns a file whose path starts with prefix and whose content
// is data, or "" if there is none. (A directory listing, not a glob: glob
// patterns cannot quote metacharacters on Windows.)
func findCopy(prefix string, data []byte) string {
	dir, base := filepath.Split(prefix)
	listDir := dir
	if listDir == "" {
		listDir = "."
	}
	entries, _ := os.ReadDir(listDir)
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), base) {
			continue
		}
		m := dir + e.Name() // the same spelling as prefix
		if b, err := os.ReadFile(m); err == nil && bytes.Equal(b, data) {
			return m
		}
	}
	return ""
}
