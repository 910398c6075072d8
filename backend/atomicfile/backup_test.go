package atomicfile

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestBackupCorrupt(t *testing.T) {
	t1 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
	t2 := t1.Add(time.Hour)
	type backup struct {
		data []byte
		now  time.Time
		want string // base name of the backup
	}
	tests := []struct {
		name    string
		file    string // base name of the damaged file
		backups []backup
		copies  int // .corrupt- files at the end
	}{
		{
			name:    "copy named after the UTC time",
			file:    "profiles.json",
			backups: []backup{{[]byte("{broken"), t1, "profiles.json.corrupt-20240102T020405Z"}},
			copies:  1,
		},
		{
			name: "the same bytes again reuse the copy",
			file: "endpoints.json",
			backups: []backup{
				{[]byte("{broken"), t1, "endpoints.json.corrupt-20240102T020405Z"},
				{[]byte("{broken"), t2, "endpoints.json.corrupt-20240102T020405Z"},
			},
			copies: 1,
		},
		{
			name: "other bytes in the same second get -2",
			file: "tabs.json",
			backups: []backup{
				{[]byte("{one"), t1, "tabs.json.corrupt-20240102T020405Z"},
				{[]byte("{two"), t1, "tabs.json.corrupt-20240102T020405Z-2"},
				{[]byte("{one"), t2, "tabs.json.corrupt-20240102T020405Z"},
			},
			copies: 2,
		},
		{
			name: "glob characters in the name",
			file: "[a]*?.json",
			backups: []backup{
				{[]byte("x"), t1, "[a]*?.json.corrupt-20240102T020405Z"},
				{[]byte("x"), t2, "[a]*?.json.corrupt-20240102T020405Z"},
			},
			copies: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && tc.file == "[a]*?.json" {
				t.Skip("* and ? are not allowed in Windows file names")
			}
			dir := t.TempDir()
			path := filepath.Join(dir, tc.file)
			for i, b := range tc.backups {
				if err := os.WriteFile(path, b.data, 0o600); err != nil {
					t.Fatal(err)
				}
				got, err := BackupCorrupt(path, b.data, b.now)
				if err != nil {
					t.Fatalf("backup %d: %v", i, err)
				}
				if got != filepath.Join(dir, b.want) {
					t.Fatalf("backup %d: %s, want %s", i, got, b.want)
				}
				if c, err := os.ReadFile(got); err != nil || string(c) != string(b.data) {
					t.Fatalf("backup %d holds %q (%v), want %q", i, c, err, b.data)
				}
				if c, err := os.ReadFile(path); err != nil || string(c) != string(b.data) {
					t.Fatalf("the original now holds %q (%v)", c, err)
				}
				if fi, err := os.Stat(got); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
					t.Fatalf("backup mode: %v %v", fi.Mode(), err)
				}
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != tc.copies+1 {
				t.Fatalf("%d files, want the original and %d copies", len(entries), tc.copies)
			}
		})
	}
}

func TestWriteBackup(t *testing.T) {
	tests := []struct {
		name     string
		existing map[string]string // base name: content
		data     string
		want     string
	}{
		{name: "free name", data: "v1", want: "p.json.v1.bak"},
		{name: "identical file reused", existing: map[string]string{"p.json.v1.bak": "v1"}, data: "v1", want: "p.json.v1.bak"},
		{name: "other content is never replaced", existing: map[string]string{"p.json.v1.bak": "other"}, data: "v1", want: "p.json.v1.bak-2"},
		{
			name:     "identical -2 reused",
			existing: map[string]string{"p.json.v1.bak": "other", "p.json.v1.bak-2": "v1"},
			data:     "v1", want: "p.json.v1.bak-2",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, c := range tc.existing {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(c), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := WriteBackup(filepath.Join(dir, "p.json.v1.bak"), []byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if got != filepath.Join(dir, tc.want) {
				t.Fatalf("%s, want %s", got, tc.want)
			}
			if c, err := os.ReadFile(got); err != nil || string(c) != tc.data {
				t.Fatalf("backup holds %q (%v)", c, err)
			}
			for name, c := range tc.existing {
				if b, _ := os.ReadFile(filepath.Join(dir, name)); string(b) != c {
					t.Errorf("%s changed to %q", name, b)
				}
			}
		})
	}
}
