package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestClearStaleX(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, lock string
		wantKept   bool
	}{
		{"the server is gone: lock and socket removed", fmt.Sprintf("%10d\n", dead.Process.Pid), false},
		{"the server runs: kept", fmt.Sprintf("%10d\n", os.Getpid()), true},
		{"not a pid: kept", "hello\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			if err := os.MkdirAll(filepath.Join(tmp, ".X11-unix"), 0o755); err != nil {
				t.Fatal(err)
			}
			lock, sock := filepath.Join(tmp, ".X95-lock"), filepath.Join(tmp, ".X11-unix", "X95")
			if err := os.WriteFile(lock, []byte(tc.lock), 0o444); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(sock, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			clearStaleX(tmp, 95)
			for _, f := range []string{lock, sock} {
				_, err := os.Stat(f)
				if kept := err == nil; kept != tc.wantKept {
					t.Errorf("%s kept = %v, want %v", filepath.Base(f), kept, tc.wantKept)
				}
			}
		})
	}
}
