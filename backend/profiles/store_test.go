package profiles

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func fullProfile() Profile {
	return Profile{
		Name:      "GPU box",
		Host:      "gpu.example.com",
		Port:      2222,
		User:      "alice",
		Auth:      []AuthMethod{AuthKey, AuthAgent, AuthPassword, AuthKeyboardInteractive},
		KeyPath:   "~/.ssh/id_ed25519",
		JumpHosts: []string{"bastion.example.com", "bob@[2001:db8::1]:2200"},
		Forwards: []ForwardRule{
			{Kind: ForwardWeb, Label: "Jupyter", RemotePort: 8888},
			{ID: "rule-pg", Kind: ForwardLocal, Label: "postgres", LocalHost: "127.0.0.1", LocalPort: 15432, RemoteHost: "db.internal", RemotePort: 5432, ConnectAtStart: true},
			{ID: "rule-cb", Kind: ForwardRemote, Label: "callback", RemotePort: 9000, LocalPort: 3000},
			{ID: "rule-socks", Kind: ForwardDynamic, Label: "socks", LocalHost: "*", LocalPort: 1080},
		},
		Options:        Options{PingThreshold: Duration(30 * time.Second), PoolSize: 4, IdleTimeout: Duration(15 * time.Minute)},
		Color:          "#3b82f6",
		Icon:           "server",
		SSHConfigAlias: "gpu",
	}
}

func minimalProfile(name string) Profile {
	return Profile{Name: name, Host: "h.example.com", Port: 22}
}

func testPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "porthole", "profiles.json")
}

func mustOpen(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if s == nil {
		t.Fatal("Open returned a nil store")
	}
	return s
}

func TestStoreRoundTrip(t *testing.T) {
	path := testPath(t)
	s := mustOpen(t, path)
	if got := s.List(); len(got) != 0 {
		t.Fatalf("new store has %d profiles", len(got))
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open must not create the file: %v", err)
	}

	in := fullProfile()
	in.ID = "ignored-by-add"
	added, err := s.Add(in)
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	if added.ID == "" || added.ID == "ignored-by-add" {
		t.Fatalf("Add did not assign a fresh ID: %q", added.ID)
	}
	want := fullProfile()
	want.ID = added.ID
	if !reflect.DeepEqual(added, want) {
		t.Fatalf("Add returned\n%+v\nwant\n%+v", added, want)
	}
	second, err := s.Add(minimalProfile("second"))
	if err != nil {
		t.Fatal(err)
	}

	// Reopen from disk.
	s2 := mustOpen(t, path)
	got, err := s2.Get(added.ID)
	if err != nil {
		t.Fatalf("Get after reopen: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if l := s2.List(); len(l) != 2 || l[0].ID != added.ID || l[1].ID != second.ID {
		t.Fatalf("List order: %+v", l)
	}

	// The file: schema version, durations as strings, mode 0600, dir 0700.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["schemaVersion"] != float64(SchemaVersion) {
		t.Errorf("schemaVersion = %v", doc["schemaVersion"])
	}
	opts := doc["profiles"].([]any)[0].(map[string]any)["options"].(map[string]any)
	if opts["pingThreshold"] != "30s" || opts["idleTimeout"] != "15m0s" {
		t.Errorf("durations not written as strings: %v", opts)
	}
	if !bytes.Contains(data, []byte(`"kind": "web"`)) || !bytes.Contains(data, []byte(`"auth": [`)) {
		t.Errorf("enums not written by name:\n%s", data)
	}
	if runtime.GOOS != "windows" {
		st, _ := os.Stat(path)
		if st.Mode().Perm() != 0o600 {
			t.Errorf("file mode %v, want 0600", st.Mode().Perm())
		}
		dst, _ := os.Stat(filepath.Dir(path))
		if dst.Mode().Perm() != 0o700 {
			t.Errorf("dir mode %v, want 0700", dst.Mode().Perm())
		}
	}
	// No temp files left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}

	// Update, Duplicate, Delete.
	got.Name = "renamed"
	got.Forwards = got.Forwards[:1]
	if err := s2.Update(got); err != nil {
		t.Fatalf("Update: %v", err)
	}
	dup, err := s2.Duplicate(got.ID)
	if err != nil {
		t.Fatalf("Duplicate: %v", err)
	}
	if dup.Name != "renamed (copy)" || dup.ID == got.ID || dup.Host != got.Host {
		t.Fatalf("Duplicate = %+v", dup)
	}
	dup2, err := s2.Duplicate(got.ID)
	if err != nil || dup2.Name != "renamed (copy 2)" {
		t.Fatalf("second Duplicate = %q, %v", dup2.Name, err)
	}
	if l := s2.List(); len(l) != 4 || l[1].ID != dup2.ID || l[2].ID != dup.ID {
		t.Fatalf("duplicates should follow the original: %v", names(l))
	}
	if err := s2.Delete(second.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	s3 := mustOpen(t, path)
	if l := s3.List(); len(l) != 3 || l[0].Name != "renamed" || len(l[0].Forwards) != 1 {
		t.Fatalf("after update/duplicate/delete: %+v", l)
	}

	// Not found.
	if _, err := s3.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get missing: %v", err)
	}
	if err := s3.Delete("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete missing: %v", err)
	}
	if _, err := s3.Duplicate("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Duplicate missing: %v", err)
	}
	missing := minimalProfile("x")
	missing.ID = "nope"
	if err := s3.Update(missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update missing: %v", err)
	}

	// Validation on Add and Update.
	if _, err := s3.Add(Profile{Name: "no host", Port: 22}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Add invalid: %v", err)
	}
	bad := s3.List()[0]
	bad.Port = 0
	if err := s3.Update(bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("Update invalid: %v", err)
	}

	// List returns copies.
	l := s3.List()
	l[0].Forwards[0].Label = "mutated"
	l[0].Name = "mutated"
	if s3.List()[0].Name == "mutated" || s3.List()[0].Forwards[0].Label == "mutated" {
		t.Error("List shares memory with the store")
	}
}

func names(l []Profile) []string {
	var out []string
	for _, p := range l {
		out = append(out, p.Name)
	}
	return out
}

func TestStoreDefaultPath(t *testing.T) {
	p, err := DefaultPath()
	if err != nil {
		t.Skipf("no user config dir here: %v", err)
	}
	if filepath.Base(p) != "profiles.json" || filepath.Base(filepath.Dir(p)) != "porthole" {
		t.Fatalf("DefaultPath = %s", p)
	}
}

// TestStoreConcurrentGoroutines: several goroutines, each with its own Store
// on the same file (like separate processes) plus one shared Store, add
// profiles at once; every one ends up in the file.
func TestStoreConcurrentGoroutines(t *testing.T) {
	path := testPath(t)
	shared := mustOpen(t, path)
	const workers, perWorker = 6, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := shared
			if w%2 == 0 {
				var err error
				if s, err = Open(path, nil); err != nil {
					errs <- err
					return
				}
			}
			for i := range perWorker {
				if _, err := s.Add(minimalProfile(fmt.Sprintf("w%d-%d", w, i))); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Add: %v", err)
	}
	checkNames(t, path, workers*perWorker, func(i int) string { return fmt.Sprintf("w%d-%d", i/perWorker, i%perWorker) })
}

func checkNames(t *testing.T, path string, n int, name func(int) string) {
	t.Helper()
	s := mustOpen(t, path)
	l := s.List()
	have := map[string]int{}
	ids := map[string]bool{}
	for _, p := range l {
		have[p.Name]++
		if ids[p.ID] {
			t.Errorf("duplicate id %s", p.ID)
		}
		ids[p.ID] = true
	}
	for i := range n {
		if have[name(i)] != 1 {
			t.Errorf("profile %q present %d times", name(i), have[name(i)])
		}
	}
	if len(l) != n {
		t.Errorf("%d profiles in the file, want %d", len(l), n)
	}
}

const helperEnv = "PORTHOLE_PROFILES_HELPER"

// TestHelperProcessAdd is not a test: TestStoreConcurrentProcesses runs the
// test binary again with helperEnv="path|tag|n" to add n profiles from
// another process.
func TestHelperProcessAdd(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("helper process for TestStoreConcurrentProcesses")
	}
	parts := strings.Split(spec, "|")
	n, _ := strconv.Atoi(parts[2])
	s, err := Open(parts[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := s.Add(minimalProfile(fmt.Sprintf("%s-%d", parts[1], i))); err != nil {
			t.Fatalf("Add %d: %v", i, err)
		}
	}
}

func TestStoreConcurrentProcesses(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("inside a helper")
	}
	path := testPath(t)
	const n = 20
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for _, tag := range []string{"a", "b"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessAdd$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), helperEnv+"="+path+"|"+tag+"|"+strconv.Itoa(n))
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		cmds = append(cmds, cmd)
		outs = append(outs, out)
	}
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill() })
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("helper %d: %v\n%s", i, err, outs[i])
		}
		if !strings.Contains(outs[i].String(), "--- PASS: TestHelperProcessAdd") {
			t.Fatalf("helper %d did not run:\n%s", i, outs[i])
		}
	}
	checkNames(t, path, 2*n, func(i int) string {
		return fmt.Sprintf("%s-%d", []string{"a", "b"}[i/n], i%n)
	})
}

// TestStoreLockTimeout: a change waiting for a lock held elsewhere gives up
// with ErrLocked instead of hanging.
func TestStoreLockTimeout(t *testing.T) {
	path := testPath(t)
	holder := mustOpen(t, path)
	unlock, err := holder.lockFile()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	s := mustOpen(t, path)
	s.lockTimeout = 200 * time.Millisecond
	start := time.Now()
	_, err = s.Add(minimalProfile("x"))
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Add under a held lock: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %s", d)
	}
	unlock()
	if _, err := s.Add(minimalProfile("x")); err != nil {
		t.Fatalf("Add after unlock: %v", err)
	}
}

func TestStoreCorruptFile(t *testing.T) {
	cases := []struct {
		name      string
		data      string
		line, col int
		msg       string
	}{
		{"syntax", "{\n  \"schemaVersion\": 2,\n  \"profiles\": [\n    {\"id\": \"a\", \"name\": \"x\",, }\n  ]\n}\n", 4, 29, "invalid character ','"},
		{"truncated", "{\n  \"schemaVersion\": 2,\n  \"profiles\": [\n", 4, 1, "end of file"},
		{"empty", "", 1, 1, "end of file"},
		{"wrong type", "{\n  \"schemaVersion\": 2,\n  \"profiles\": [\n    {\"id\": \"a\", \"name\": \"x\",\n     \"port\": \"22\"}\n  ]\n}\n", 5, 14, `"port" must be a number`},
		{"unknown enum", "{\"schemaVersion\": 2, \"profiles\": [\n {\"id\": \"a\"},\n {\"id\": \"b\", \"auth\": [\"telepathy\"]}]}", 3, 2, `unknown auth method "telepathy"`},
		{"bad duration", "{\"schemaVersion\": 2, \"profiles\": [\n {\"id\": \"b\", \"options\": {\"idleTimeout\": \"soon\"}}]}", 2, 2, "duration \"soon\""},
		{"duplicate id", "{\"schemaVersion\": 2, \"profiles\": [\n {\"id\": \"a\"},\n {\"id\": \"a\"}]}", 3, 2, "same id"},
		{"no version", "{\"profiles\": []}", 1, 1, "schemaVersion"},
		{"unknown version", "{\"schemaVersion\": 1, \"profiles\": []}", 1, 19, "unknown schemaVersion 1"},
		{"not an object", "\"hello\"", 1, 1, "expected an object"},
		{"profiles not array", "{\"schemaVersion\": 2,\n\"profiles\": {}}", 2, 13, "must be an array"},
		{"element not object", "[1]", 1, 2, "must be a JSON object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := testPath(t)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			orig := []byte(tc.data)
			if err := os.WriteFile(path, orig, 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path, nil)
			if s == nil {
				t.Fatal("Open returned no store")
			}
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open error = %v, want a *ParseError wrapping ErrCorrupt", err)
			}
			if pe.Line != tc.line || pe.Column != tc.col {
				t.Errorf("position = line %d col %d, want line %d col %d (%v)", pe.Line, pe.Column, tc.line, tc.col, err)
			}
			msg := err.Error()
			for _, want := range []string{path, tc.msg, fmt.Sprintf("line %d, column %d", tc.line, tc.col)} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if s.LoadError() != err || !s.ReadOnly() {
				t.Errorf("LoadError = %v, ReadOnly = %v", s.LoadError(), s.ReadOnly())
			}
			if len(s.List()) != 0 {
				t.Errorf("corrupt store lists %d profiles", len(s.List()))
			}

			// Backup: same bytes, named profiles.json.corrupt-<timestamp>.
			if pe.Backup == "" || !strings.HasPrefix(filepath.Base(pe.Backup), "profiles.json.corrupt-") {
				t.Fatalf("backup = %q", pe.Backup)
			}
			if b, err := os.ReadFile(pe.Backup); err != nil || !bytes.Equal(b, orig) {
				t.Fatalf("backup content differs (%v)", err)
			}

			// Mutations are refused with an explanation; the file is untouched.
			_, addErr := s.Add(minimalProfile("x"))
			if !errors.Is(addErr, ErrReadOnly) || !errors.Is(addErr, ErrCorrupt) || !strings.Contains(addErr.Error(), "fix the file") {
				t.Errorf("Add on a corrupt store: %v", addErr)
			}
			if err := s.Delete("a"); !errors.Is(err, ErrReadOnly) {
				t.Errorf("Delete on a corrupt store: %v", err)
			}
			if _, err := s.Duplicate("a"); !errors.Is(err, ErrReadOnly) {
				t.Errorf("Duplicate on a corrupt store: %v", err)
			}
			if b, _ := os.ReadFile(path); !bytes.Equal(b, orig) {
				t.Fatal("the corrupt file was modified")
			}

			// Opening again reuses the identical backup instead of piling up copies.
			s2, _ := Open(path, nil)
			var pe2 *ParseError
			if !errors.As(s2.LoadError(), &pe2) || pe2.Backup != pe.Backup {
				t.Errorf("second open made another backup: %v", s2.LoadError())
			}
			matches, _ := filepath.Glob(path + ".corrupt-*")
			if len(matches) != 1 {
				t.Errorf("backups: %v", matches)
			}

			// After the user fixes the file, Reload makes the store writable.
			if err := os.WriteFile(path, []byte(`{"schemaVersion": 2, "profiles": []}`), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := s.Reload(); err != nil {
				t.Fatalf("Reload after fix: %v", err)
			}
			if _, err := s.Add(minimalProfile("x")); err != nil {
				t.Fatalf("Add after fix: %v", err)
			}
		})
	}
}

// A file that becomes corrupt while the store is open is detected by the
// re-read at the start of a change, and not overwritten.
func TestStoreCorruptedWhileOpen(t *testing.T) {
	path := testPath(t)
	s := mustOpen(t, path)
	if _, err := s.Add(minimalProfile("a")); err != nil {
		t.Fatal(err)
	}
	garbage := []byte("{ this is not json")
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := s.Add(minimalProfile("b"))
	if !errors.Is(err, ErrReadOnly) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Add over a corrupted file: %v", err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, garbage) {
		t.Fatal("corrupt file overwritten")
	}
	if !errors.Is(s.LoadError(), ErrCorrupt) {
		t.Fatalf("LoadError = %v", s.LoadError())
	}
}

func TestStoreNewerSchema(t *testing.T) {
	path := testPath(t)
	_ = os.MkdirAll(filepath.Dir(path), 0o700)
	orig := []byte(`{"schemaVersion": 99, "profiles": [{"id": "a", "name": "x", "futureField": {"k": 1}}]}`)
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, nil)
	if !errors.Is(err, ErrNewerSchema) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v", err)
	}
	if _, err := s.Add(minimalProfile("x")); !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), "update Porthole") {
		t.Fatalf("Add = %v", err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, orig) {
		t.Fatal("newer file modified")
	}
	if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 0 {
		t.Errorf("a newer file is not corrupt, but was backed up as such: %v", m)
	}
}

func TestStoreMigrationV1(t *testing.T) {
	path := testPath(t)
	_ = os.MkdirAll(filepath.Dir(path), 0o700)
	v1 := []byte(`[
  {"id": "old1", "name": "web", "hostname": "web.example.com", "port": 2222, "username": "root", "identityFile": "~/.ssh/id_rsa"},
  {"hostname": "db.example.com", "username": "postgres"}
]
`)
	if err := os.WriteFile(path, v1, 0o600); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, path)
	l := s.List()
	if len(l) != 2 {
		t.Fatalf("migrated %d profiles", len(l))
	}
	want0 := Profile{ID: "old1", Name: "web", Host: "web.example.com", Port: 2222, User: "root", KeyPath: "~/.ssh/id_rsa"}
	if !reflect.DeepEqual(l[0], want0) {
		t.Errorf("profile 0 = %+v, want %+v", l[0], want0)
	}
	if l[1].Host != "db.example.com" || l[1].Name != "db.example.com" || l[1].Port != 22 || l[1].User != "postgres" || l[1].ID == "" {
		t.Errorf("profile 1 = %+v", l[1])
	}
	// Loading does not write, and the ID given to the id-less profile is
	// stable across loads.
	if b, _ := os.ReadFile(path); !bytes.Equal(b, v1) {
		t.Fatal("load rewrote the file")
	}
	if _, err := os.Stat(path + ".v1.bak"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("backup made before any write")
	}
	if again := mustOpen(t, path).List(); again[1].ID != l[1].ID {
		t.Fatalf("id of an id-less profile changed between loads: %s vs %s", again[1].ID, l[1].ID)
	}

	// The first change writes v2 after backing up v1; Update by the ID seen at load works.
	l[1].Name = "db"
	if err := s.Update(l[1]); err != nil {
		t.Fatalf("Update migrated profile: %v", err)
	}
	bak, err := os.ReadFile(path + ".v1.bak")
	if err != nil || !bytes.Equal(bak, v1) {
		t.Fatalf("v1 backup: %v", err)
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(bytes.TrimSpace(data), []byte(`{`)) || !bytes.Contains(data, []byte(`"schemaVersion": 2`)) || bytes.Contains(data, []byte("hostname")) {
		t.Fatalf("not written as v2:\n%s", data)
	}
	if _, err := s.Add(minimalProfile("new")); err != nil {
		t.Fatal(err)
	}
	if bak2, _ := os.ReadFile(path + ".v1.bak"); !bytes.Equal(bak2, v1) {
		t.Fatal("v1 backup overwritten by a later save")
	}
	l2 := mustOpen(t, path).List()
	if len(l2) != 3 || l2[0].ID != "old1" || l2[1].Name != "db" || l2[1].ID != l[1].ID {
		t.Fatalf("after migration: %+v", l2)
	}
}

func TestDurationJSON(t *testing.T) {
	cases := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{`"30s"`, 30 * time.Second, false},
		{`"1h30m"`, 90 * time.Minute, false},
		{`45`, 45 * time.Second, false},
		{`0.5`, 500 * time.Millisecond, false},
		{`null`, 0, false},
		{`"soon"`, 0, true},
		{`true`, 0, true},
		{`1e300`, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			var d Duration
			err := json.Unmarshal([]byte(tc.in), &d)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && d.D() != tc.want {
				t.Fatalf("got %s want %s", d, tc.want)
			}
		})
	}
	b, _ := json.Marshal(Duration(90 * time.Second))
	if string(b) != `"1m30s"` {
		t.Fatalf("marshal = %s", b)
	}
}

// FuzzParseFile: the loader never panics; what it accepts has unique,
// non-empty IDs and survives a write and re-read unchanged; what it rejects
// is a *ParseError with a position inside the file, or ErrNewerSchema.
func FuzzParseFile(f *testing.F) {
	seeds := []string{
		`{"schemaVersion": 2, "profiles": []}`,
		`{"schemaVersion": 2, "profiles": null}`,
		`[{"hostname": "a", "username": "b", "port": 22}]`,
		`{"schemaVersion": 2, "profiles": [{"id": "a", "auth": ["agent"], "options": {"idleTimeout": 30}}]}`,
		`{"schemaVersion": 3}`,
		"",
		// saved rules (issue 12 section 5)
		`{"schemaVersion": 2, "profiles": [{"id": "a", "name": "a", "host": "h", "port": 22, "forwards": [` +
			`{"id": "r1", "kind": "local", "localPort": 8080, "remoteHost": "localhost", "remotePort": 80, "connectAtStart": true},` +
			`{"id": "r2", "kind": "remote", "remotePort": 9000, "localPort": 3000},` +
			`{"id": "r3", "kind": "dynamic", "localHost": "*", "localPort": 1080}]}]}`,
		`{"schemaVersion": 2, "profiles": [{"id": "a", "forwards": [{"kind": "socket"}]}]}`,
	}
	for _, tc := range []string{"{\n  \"schemaVersion\": 2,\n  \"profiles\": [\n    {\"id\": \"a\", \"name\": \"x\",, }\n  ]\n}\n", "{\"schemaVersion\": 2, \"profiles\": [\n {\"id\": \"a\"},\n {\"id\": \"a\"}]}"} {
		seeds = append(seeds, tc)
	}
	if data, err := encodeFile([]Profile{func() Profile { p := fullProfile(); p.ID = "x"; return p }()}); err == nil {
		seeds = append(seeds, string(data))
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := parseFile(data)
		if err != nil {
			var pe *ParseError
			switch {
			case errors.As(err, &pe):
				lines := bytes.Count(data, []byte("\n")) + 1
				if pe.Line < 1 || pe.Line > lines || pe.Column < 1 {
					t.Fatalf("position line %d col %d outside a %d-line file", pe.Line, pe.Column, lines)
				}
			case errors.Is(err, ErrNewerSchema):
			default:
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		ids := map[string]bool{}
		for _, p := range res.profiles {
			if p.ID == "" || ids[p.ID] {
				t.Fatalf("bad or duplicate id %q", p.ID)
			}
			ids[p.ID] = true
		}
		enc, err := encodeFile(res.profiles)
		if err != nil {
			return // e.g. an out-of-range enum cannot be written; never produced by a parse
		}
		res2, err := parseFile(enc)
		if err != nil {
			t.Fatalf("re-reading what was written: %v\n%s", err, enc)
		}
		if len(res.profiles) != len(res2.profiles) {
			t.Fatalf("round trip lost profiles")
		}
		for i := range res.profiles {
			a, b := res.profiles[i], res2.profiles[i]
			if !reflect.DeepEqual(normalize(a), normalize(b)) {
				t.Fatalf("round trip changed a profile:\n%+v\n%+v", a, b)
			}
		}
	})
}

// normalize makes empty and nil slices equal (omitempty drops empty ones).
func normalize(p Profile) Profile {
	if len(p.Auth) == 0 {
		p.Auth = nil
	}
	if len(p.JumpHosts) == 0 {
		p.JumpHosts = nil
	}
	if len(p.Forwards) == 0 {
		p.Forwards = nil
	}
	return p
}

func TestStoreUpdateForwards(t *testing.T) {
	path := testPath(t)
	s := mustOpen(t, path)
	p, err := s.Add(minimalProfile("a"))
	if err != nil {
		t.Fatal(err)
	}
	rule := ForwardRule{ID: "r1", Kind: ForwardLocal, LocalPort: 8080, RemotePort: 80}
	got, err := s.UpdateForwards(p.ID, func(fs []ForwardRule) ([]ForwardRule, error) { return append(fs, rule), nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Forwards) != 1 || got.Forwards[0] != rule {
		t.Fatalf("UpdateForwards returned %+v", got.Forwards)
	}
	// Saved on disk: a new Store over the same file (an app restart) has it.
	again, err := mustOpen(t, path).Get(p.ID)
	if err != nil || len(again.Forwards) != 1 || again.Forwards[0] != rule {
		t.Fatalf("after reopening: %+v, %v", again.Forwards, err)
	}
	// An invalid result is refused and nothing is written.
	_, err = s.UpdateForwards(p.ID, func(fs []ForwardRule) ([]ForwardRule, error) {
		return append(fs, ForwardRule{Kind: ForwardLocal}), nil
	})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("invalid rule: err = %v", err)
	}
	if _, ok := ve.Reason("forwards[1].remotePort"); !ok {
		t.Fatalf("reasons %+v", ve.Fields)
	}
	if cur, _ := mustOpen(t, path).Get(p.ID); len(cur.Forwards) != 1 {
		t.Fatalf("an invalid update was written: %+v", cur.Forwards)
	}
	if _, err := s.UpdateForwards("nope", func(fs []ForwardRule) ([]ForwardRule, error) { return fs, nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown profile: %v", err)
	}
}
