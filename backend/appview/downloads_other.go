//go:build !linux

package appview

import (
	"errors"
	"io/fs"
	"os"
)

// renameNoReplace renames from to to unless to exists (fs.ErrExist): a hard
// link (which fails on an existing name) and an unlink. (Downloads are saved
// by the Linux window only; this keeps the package building elsewhere.)
func renameNoReplace(from, to string) error {
	if err := os.Link(from, to); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fs.ErrExist
		}
		return err
	}
	return os.Remove(from)
}

// freeSpace is unknown here (-1).
func freeSpace(string) int64 { return -1 }

// writableErr: nil (the write itself says why it fails).
func writableErr(string) error { return nil }
