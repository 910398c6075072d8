package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// onlyFiles fails unless dir holds exactly the named entries (no temporary
// file left behind).
func onlyFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s holds %v, want %v", dir, got, want)
	}
}

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name    string
		subdirs string      // created by WriteFile (0700)
		old     []byte      // existing content, nil: no file
		oldPerm fs.FileMode // mode of the existing file
		data    []byte
		perm    fs.FileMode
	}{
		{name: "new file", data: []byte("hello\n"), perm: 0o600},
		{name: "missing directories are created 0700", subdirs: "a/b", data: []byte("x"), perm: 0o600},
		{name: "replaces, keeping 0600", old: []byte("old content that is longer"), oldPerm: 0o600, data: []byte("new"), perm: 0o600},
		{name: "perm wins over the old mode", old: []byte("old"), oldPerm: 0o644, data: []byte("new"), perm: 0o600},
		{name: "0644 is kept too, whatever the umask", data: []byte("shared"), perm: 0o644},
		{name: "empty data", old: []byte("old"), oldPerm: 0o600, data: []byte{}, perm: 0o600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, filepath.FromSlash(tc.subdirs))
			path := filepath.Join(dir, "state.json")
			if tc.old != nil {
				if err := os.WriteFile(path, tc.old, tc.oldPerm); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tc.oldPerm); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(path, tc.data, tc.perm); err != nil {
				t.Fatalf("WriteFile: %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, tc.data) {
				t.Fatalf("content %q (%v), want %q", got, err, tc.data)
			}
			onlyFiles(t, dir, "state.json")
			if runtime.GOOS == "windows" {
				return // no Unix modes
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tc.perm {
				t.Errorf("mode %v, want %v", fi.Mode().Perm(), tc.perm)
			}
			if tc.subdirs != "" {
				for d := dir; d != root; d = filepath.Dir(d) {
					if di, err := os.Stat(d); err != nil || di.Mode().Perm() != 0o700 {
						t.Errorf("%s: %v (%v), want 0700", d, di.Mode().Perm(), err)
					}
				}
			}
		})
	}
}

// TestWriteFileFails: a write that cannot happen says which file and what
// to do, keeps errors.Is working, leaves the old file intact and no
// temporary file behind.
func TestWriteFileFails(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, dir string) (path string)
		asUser bool // run WriteFile without root's power over permissions
		is     error
		msg    string
	}{
		{
			name: "read-only directory",
			setup: func(t *testing.T, dir string) string {
				if runtime.GOOS == "windows" {
					t.Skip("Windows ignores a directory's read-only attribute")
				}
				path := filepath.Join(dir, "state.json")
				if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, 0o500); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
				return path
			},
			asUser: true,
			is:     fs.ErrPermission,
			msg:    "make the directory writable",
		},
		{
			name: "parent is a file",
			setup: func(t *testing.T, dir string) string {
				if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(dir, "state.json", "inner.json")
			},
			msg: "creating the directory",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tc.setup(t, dir)
			var err error
			write := func() { err = WriteFile(path, []byte("new"), 0o600) }
			if tc.asUser {
				asUnprivileged(t, write)
			} else {
				write()
			}
			if err == nil {
				t.Fatal("WriteFile succeeded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not match %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), filepath.Base(path)) {
				t.Errorf("error %q should name the file and say %q", err, tc.msg)
			}
			if got, err := os.ReadFile(filepath.Join(dir, "state.json")); err != nil || string(got) != "old" {
				t.Errorf("old file: %q, %v", got, err)
			}
			onlyFiles(t, dir, "state.json")
		})
	}
}

// TestWriteFileAtomicUnderReaders: readers in a loop never see anything but
// one whole version, while two writers replace the file over and over.
func TestWriteFileAtomicUnderReaders(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	versions := [][]byte{
		bytes.Repeat([]byte("a"), 64<<10),
		bytes.Repeat([]byte("b"), 256<<10),
		bytes.Repeat([]byte("c"), 1),
	}
	if err := WriteFile(path, versions[0], 0o600); err != nil {
		t.Fatal(err)
	}
	const writes = 40
	done := make(chan struct{})
	var writers sync.WaitGroup
	writeErrs := make(chan error, 2)
	for w := range 2 {
		writers.Go(func() {
			for i := range writes {
				if err := WriteFile(path, versions[(i+w)%len(versions)], 0o600); err != nil {
					writeErrs <- err
					return
				}
			}
		})
	}
	go func() { writers.Wait(); close(done) }()

	reads, seen := 0, map[byte]bool{}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read %d: %v", reads, err)
		}
		whole := false
		for _, v := range versions {
			whole = whole || bytes.Equal(b, v)
		}
		if !whole {
			t.Fatalf("read %d saw %d bytes that are no whole version", reads, len(b))
		}
		seen[b[0]] = true
		reads++
	}
	close(writeErrs)
	for err := range writeErrs {
		t.Fatalf("WriteFile: %v", err)
	}
	if reads < 2 {
		t.Fatalf("only %d reads", reads)
	}
	t.Logf("%d reads saw %d versions", reads, len(seen))
	onlyFiles(t, dir, "state.json")
}
