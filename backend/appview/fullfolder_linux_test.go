//go:build linux

package appview

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/porthole-app/porthole/backend/ui"
)

// TestDownloadToFullOrReadOnlyFolder uses real file systems: in a mount
// namespace of its own (unshare, as root), a 64 KiB tmpfs that fills up
// during a download, and a read-only tmpfs. Each download says why in
// words, and nothing is left in the folder.
func TestDownloadToFullOrReadOnlyFolder(t *testing.T) {
	if os.Getenv("PORTHOLE_APPVIEW_MOUNTNS") == "1" {
		fullOrReadOnlyChild(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a mount namespace with its own tmpfs")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare(1)")
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", os.Args[0], "-test.run=^TestDownloadToFullOrReadOnlyFolder$", "-test.v")
	cmd.Env = append(os.Environ(), "PORTHOLE_APPVIEW_MOUNTNS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in a mount namespace: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("the child ran no test:\n%s", out)
	}
	t.Logf("%s", out)
}

func fullOrReadOnlyChild(t *testing.T) {
	full, ro := filepath.Join(t.TempDir(), "full"), filepath.Join(t.TempDir(), "ro")
	for _, d := range []string{full, ro} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mount("tmpfs", full, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mount a small tmpfs: %v", err)
	}
	defer syscall.Unmount(full, 0)
	if err := syscall.Mount("tmpfs", ro, "tmpfs", syscall.MS_RDONLY, ""); err != nil {
		t.Fatalf("mount a read-only tmpfs: %v", err)
	}
	defer syscall.Unmount(ro, 0)

	// A full disk: the transfer fails as WebKit's write does.
	var rec recorder
	d := NewDownloads(nil, rec.publish, func() (string, error) { return full, nil }, nil)
	id, temp, err := d.Begin("t1", "http://127.0.0.2:1/big.bin", "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	werr := os.WriteFile(temp, make([]byte, 1<<20), 0o644)
	if !errors.Is(werr, syscall.ENOSPC) {
		t.Fatalf("writing 1 MiB into 64 KiB: %v", werr)
	}
	d.Fail(id, errors.New("Error writing data to local file")) // WebKit's words
	got, _ := d.Get(id)
	if got.State != ui.DownloadFailed || !strings.Contains(got.Error, "big.bin was not saved: the disk holding "+full+" is full") {
		t.Fatalf("full disk: %+v", got)
	}
	if ents, _ := os.ReadDir(full); len(ents) != 0 {
		t.Fatalf("a failed download left %v", ents)
	}

	// A read-only folder: refused before any byte arrives.
	d2 := NewDownloads(nil, rec.publish, func() (string, error) { return ro, nil }, nil)
	id2, temp2, err := d2.Begin("t1", "http://127.0.0.2:1/a.csv", "a.csv")
	got2, _ := d2.Get(id2)
	if err == nil || temp2 != "" || got2.State != ui.DownloadFailed || !strings.Contains(got2.Error, "a.csv was not saved: the download folder "+ro+" is on a read-only file system") {
		t.Fatalf("read-only folder: %v %q %+v", err, temp2, got2)
	}
	if rec.last.Downloads[0].Error != got2.Error {
		t.Fatal("the published list does not carry the message")
	}
}
