package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// renameAttempts bounds the retries of a rename that fails because another
// process has the target open (Windows only: see renameRetryable). The waits
// between attempts add up to about a second.
const renameAttempts = 8

// WriteFile replaces path with data, atomically: readers see the old or the
// new content, never a mix. perm is the mode of the new file (0600 for
// anything private), whatever the umask or the old file's mode. Missing
// parent directories are created with mode 0700. On error the old file is
// left intact.
func WriteFile(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot save %s: creating the directory %s failed; check its permissions and free disk space: %w", path, dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("cannot save %s: creating a temporary file in %s failed; make the directory writable or free disk space: %w", path, dir, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(perm); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("cannot save %s: setting the mode of %s: %w", path, tmpName, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("cannot save %s: writing %s failed; free disk space and try again: %w", path, tmpName, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("cannot save %s: syncing %s to disk failed; check the disk and try again: %w", path, tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot save %s: closing %s failed; check the disk and try again: %w", path, tmpName, err)
	}
	if err := renameRetrying(tmpName, path); err != nil {
		return fmt.Errorf("cannot save %s: replacing it failed; close programs that have it open, check the directory's permissions and try again: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// renameRetrying renames from over to, retrying (with growing waits) while
// the error is one that another process's open handle causes.
func renameRetrying(from, to string) error {
	wait := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := rename(from, to)
		if err == nil || attempt == renameAttempts || !renameRetryable(err) {
			return err
		}
		time.Sleep(wait)
		wait = min(2*wait, 250*time.Millisecond)
	}
}
