//go:build linux

package appview

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames from to to unless to exists (fs.ErrExist).
// RENAME_NOREPLACE where the file system has it, else a hard link (which
// fails on an existing name too) and an unlink.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EEXIST) {
		return fs.ErrExist
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	if err := os.Link(from, to); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fs.ErrExist
		}
		return err
	}
	return os.Remove(from)
}

// freeSpace is the bytes an unprivileged user may still write in dir (-1:
// unknown).
func freeSpace(dir string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * st.Bsize
}

// writableErr is why dir cannot take a new file (nil: it can, as far as
// access(2) knows).
func writableErr(dir string) error {
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return err
	}
	return nil
}
