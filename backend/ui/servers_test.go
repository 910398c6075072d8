package ui

import (
	"encoding/json"
	"github.com/porthole-app/porthole/backend/servers"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/porthole-app/porthole/backend/profiles"
)

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%v in %s", err, s)
	}
}

func TestServerMethodsThroughTheBridge(t *testing.T) {
	ta := newTestApp(t, testAppOptions{})
	b := newBridge(t, ta)
	keyPath := writeTestKey(t, ta.home)
	pub := filepath.Join(ta.home, "id_test.pub")
	if err := os.WriteFile(pub, []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("AddServer refuses bad fields with a 400 naming each", func(t *testing.T) {
		code, body := b.call("AddServer", map[string]any{"name": "", "host": "", "port": 0, "keyPath": filepath.Join(ta.home, "missing"), "options": map[string]any{}})
		if code != 400 {
			t.Fatalf("status %d: %s", code, body)
		}
		for _, want := range []string{"name: is required", "host: is required", "port: must be between 1 and 65535", "keyPath: does not exist"} {
			if !strings.Contains(body, want) {
				t.Errorf("body %s lacks %q", body, want)
			}
		}
		if n := len(ta.store.List()); n != 0 {
			t.Fatalf("%d profiles saved after a refusal", n)
		}
	})

	t.Run("ValidateServer lists per-field reasons, key file checks included", func(t *testing.T) {
		tests := []struct {
			name    string
			profile map[string]any
			fields  map[string]string // field → part of the reason
			notes   map[string]string
		}{
			{"valid", map[string]any{"name": "a", "host": "h", "port": 22, "options": map[string]any{}}, nil, nil},
			{"port out of range", map[string]any{"name": "a", "host": "h", "port": 70000, "options": map[string]any{}}, map[string]string{"port": "between 1 and 65535"}, nil},
			{"host with user", map[string]any{"name": "a", "host": "me@h", "port": 22, "options": map[string]any{}}, map[string]string{"host": "'@'"}, nil},
			{"missing key", map[string]any{"name": "a", "host": "h", "port": 22, "keyPath": "/nonexistent/id", "options": map[string]any{}}, map[string]string{"keyPath": "does not exist"}, nil},
			{"public key", map[string]any{"name": "a", "host": "h", "port": 22, "keyPath": pub, "options": map[string]any{}}, map[string]string{"keyPath": "is a public key"}, nil},
			{"directory", map[string]any{"name": "a", "host": "h", "port": 22, "keyPath": ta.home, "options": map[string]any{}}, map[string]string{"keyPath": "is a directory"}, nil},
			{"good key", map[string]any{"name": "a", "host": "h", "port": 22, "keyPath": keyPath, "options": map[string]any{}}, nil, nil},
			{"encrypted key is a note", map[string]any{"name": "a", "host": "h", "port": 22, "keyPath": writeEncryptedKey(t, ta.home), "options": map[string]any{}}, nil, map[string]string{"keyPath": "encrypted"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				code, body := b.call("ValidateServer", tt.profile)
				if code != 200 {
					t.Fatalf("status %d: %s", code, body)
				}
				var res servers.ValidationResult
				mustJSON(t, body, &res)
				if res.Valid != (len(tt.fields) == 0) || len(res.Fields) != len(tt.fields) {
					t.Fatalf("result %s; want fields %v", body, tt.fields)
				}
				for _, f := range res.Fields {
					if !strings.Contains(f.Reason, tt.fields[f.Field]) || tt.fields[f.Field] == "" {
						t.Errorf("field %s: %q; want it to contain %q", f.Field, f.Reason, tt.fields[f.Field])
					}
				}
				if len(res.Notes) != len(tt.notes) {
					t.Fatalf("notes %v; want %v", res.Notes, tt.notes)
				}
				for _, n := range res.Notes {
					if !strings.Contains(n.Reason, tt.notes[n.Field]) {
						t.Errorf("note %s: %q", n.Field, n.Reason)
					}
				}
			})
		}
	})

	t.Run("an unknown field is refused by the bridge", func(t *testing.T) {
		code, body := b.call("AddServer", map[string]any{"name": "a", "host": "h", "port": 22, "hostname": "x"})
		if code != 400 || !strings.Contains(body, "unknown field") {
			t.Fatalf("status %d: %s", code, body)
		}
	})

	var saved profiles.Profile
	t.Run("add, get, update, list", func(t *testing.T) {
		code, body := b.call("AddServer", map[string]any{"name": "gpu", "host": "gpu.lab", "port": 2222, "user": "alice", "keyPath": keyPath, "color": "#3b82f6", "options": map[string]any{"pingThreshold": "45s"}})
		if code != 200 {
			t.Fatalf("status %d: %s", code, body)
		}
		mustJSON(t, body, &saved)
		if saved.ID == "" || saved.Host != "gpu.lab" || saved.Options.PingThreshold.String() != "45s" {
			t.Fatalf("saved %+v", saved)
		}
		code, body = b.call("GetServer", saved.ID)
		if code != 200 || !strings.Contains(body, `"host":"gpu.lab"`) {
			t.Fatalf("GetServer: %d %s", code, body)
		}
		saved.Name = "gpu box"
		code, body = b.call("UpdateServer", saved)
		if code != 200 || !strings.Contains(body, `"name":"gpu box"`) {
			t.Fatalf("UpdateServer: %d %s", code, body)
		}
		saved.Port = 0
		if code, body = b.call("UpdateServer", saved); code != 400 || !strings.Contains(body, "port: must be between 1 and 65535") {
			t.Fatalf("UpdateServer with port 0: %d %s", code, body)
		}
		saved.Port = 2222
		code, body = b.call("ListServers")
		var list []servers.ServerSummary
		mustJSON(t, body, &list)
		if code != 200 || len(list) != 1 || list[0].Name != "gpu box" || list[0].Port != 2222 || list[0].User != "alice" ||
			list[0].State != servers.ServerDisconnected || list[0].Color != "#3b82f6" {
			t.Fatalf("ListServers: %d %s", code, body)
		}
		if !strings.Contains(body, `"state":"disconnected"`) {
			t.Fatalf("state is not written as its name: %s", body)
		}
		// The servers event carries the list and app.status the count.
		snap := ta.bus.Snapshot()
		var sawServers, sawStatus bool
		for _, e := range snap {
			switch e.Topic {
			case servers.TopicServers.Name():
				l := e.Data.(servers.ServerList)
				sawServers = len(l.Servers) == 1 && l.Path == ta.store.Path() && !l.ReadOnly
			case TopicStatus.Name():
				sawStatus = e.Data.(AppStatus).Servers == 1
			}
		}
		if !sawServers || !sawStatus {
			t.Fatalf("snapshot %+v lacks the servers list or the count", snap)
		}
	})

	t.Run("unknown ids are 404", func(t *testing.T) {
		for _, m := range []string{"GetServer", "DeleteServer", "DuplicateServer", "Connect", "Disconnect", "ServerLog"} {
			if code, body := b.call(m, "nosuchid"); code != 404 {
				t.Errorf("%s(nosuchid): %d %s", m, code, body)
			}
		}
		if code, body := b.call("AnswerPrompt", "nosuchprompt", map[string]any{"secret": "x"}); code != 404 || !strings.Contains(body, "no longer open") {
			t.Errorf("AnswerPrompt: %d %s", code, body)
		}
		if code, _ := b.call("CancelPrompt", "nosuchprompt"); code != 404 {
			t.Errorf("CancelPrompt: %d", code)
		}
		if code, body := b.call("AnswerPrompt", "x", map[string]any{"hostKey": "maybe"}); code != 400 {
			t.Errorf("AnswerPrompt with a bad host key choice: %d %s", code, body)
		}
	})

	t.Run("duplicate copies secrets; delete deletes them; profiles.json never holds them", func(t *testing.T) {
		const secret = "s3cret-Pa55-for-test"
		if err := ta.secrets.Set(saved.ID, profiles.SecretPassword, secret); err != nil {
			t.Fatal(err)
		}
		code, body := b.call("DuplicateServer", saved.ID)
		var dup profiles.Profile
		mustJSON(t, body, &dup)
		if code != 200 || dup.ID == saved.ID || dup.Name != "gpu box (copy)" {
			t.Fatalf("DuplicateServer: %d %s", code, body)
		}
		if v, err := ta.secrets.Get(dup.ID, profiles.SecretPassword); err != nil || v != secret {
			t.Fatalf("the copy's password: %q, %v", v, err)
		}
		data, err := os.ReadFile(ta.store.Path())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), secret) {
			t.Fatal("profiles.json contains a secret")
		}
		if code, body := b.call("DeleteServer", saved.ID); code != 200 {
			t.Fatalf("DeleteServer: %d %s", code, body)
		}
		if _, err := ta.secrets.Get(saved.ID, profiles.SecretPassword); err == nil {
			t.Fatal("the deleted server's password is still in the keyring")
		}
		if ta.secrets.Len() != 1 {
			t.Fatalf("secrets left: %d; want the copy's only", ta.secrets.Len())
		}
		if _, err := ta.store.Get(saved.ID); err == nil {
			t.Fatal("the profile is still there")
		}
	})

	t.Run("KeyringStatus", func(t *testing.T) {
		code, body := b.call("KeyringStatus")
		if code != 200 || !strings.Contains(body, `"available":true`) || !strings.Contains(body, `"service":"porthole"`) {
			t.Fatalf("KeyringStatus: %d %s", code, body)
		}
		ta.secrets.SetUnavailable(true)
		defer ta.secrets.SetUnavailable(false)
		code, body = b.call("KeyringStatus")
		if code != 200 || !strings.Contains(body, `"available":false`) || !strings.Contains(body, "not available") {
			t.Fatalf("KeyringStatus when unavailable: %d %s", code, body)
		}
	})
}

func TestBrokenProfilesFileStillStarts(t *testing.T) {
	broken := "{\n  \"schemaVersion\": 2,\n  \"profiles\": [ oops ]\n}\n"
	ta := newTestApp(t, testAppOptions{profilesJSON: broken})
	b := newBridge(t, ta)
	var list servers.ServerList
	for _, e := range ta.bus.Snapshot() {
		if e.Topic == servers.TopicServers.Name() {
			list = e.Data.(servers.ServerList)
		}
	}
	if !list.ReadOnly || !strings.Contains(list.LoadError, "line 3") || !strings.Contains(list.LoadError, ta.store.Path()) {
		t.Fatalf("servers event = %+v; want the load error naming the file and line 3", list)
	}
	code, body := b.call("AddServer", map[string]any{"name": "a", "host": "h", "port": 22, "options": map[string]any{}})
	if code != 409 || !strings.Contains(body, "read-only") {
		t.Fatalf("AddServer over a broken file: %d %s", code, body)
	}
	if got, _ := os.ReadFile(ta.store.Path()); string(got) != broken {
		t.Fatalf("the broken file was changed:\n%s", got)
	}
	// Fixed by hand, then reloaded.
	if err := os.WriteFile(ta.store.Path(), []byte(`{"schemaVersion":2,"profiles":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, body = b.call("ReloadServers")
	if code != 200 || !strings.Contains(body, `"readOnly":false`) {
		t.Fatalf("ReloadServers: %d %s", code, body)
	}
	if code, body := b.call("AddServer", map[string]any{"name": "a", "host": "h", "port": 22, "options": map[string]any{}}); code != 200 {
		t.Fatalf("AddServer after the fix: %d %s", code, body)
	}
}

func TestImportFromSSHConfig(t *testing.T) {
	ta := newTestApp(t, testAppOptions{sshConfig: `
Host bastion
    HostName bastion.example.com
    User jump

Host gpu gpu-alias
    HostName 10.0.0.7
    Port 2200
    User alice
    IdentityFile ~/.ssh/id_gpu
    ProxyJump bastion
    LocalForward 8888 localhost:8888
    RemoteForward 9000 localhost:3000
    DynamicForward 127.0.0.1:1080
    LocalForward /tmp/a.sock /tmp/b.sock

Host *.corp web?
    User corp

Host plain
`})
	b := newBridge(t, ta)
	code, body := b.call("ImportCandidates")
	if code != 200 {
		t.Fatalf("ImportCandidates: %d %s", code, body)
	}
	var l servers.ImportList
	mustJSON(t, body, &l)
	var aliases []string
	for _, c := range l.Candidates {
		aliases = append(aliases, c.Alias)
	}
	if !l.Exists || strings.Join(aliases, ",") != "bastion,gpu,gpu-alias,plain" {
		t.Fatalf("candidates %v (exists %v); want bastion,gpu,gpu-alias,plain", aliases, l.Exists)
	}
	gpu := l.Candidates[1]
	if gpu.Resolved.HostName != "10.0.0.7" || gpu.Resolved.Port != 2200 || gpu.Resolved.User != "alice" ||
		strings.Join(gpu.Resolved.IdentityFiles, ",") != "~/.ssh/id_gpu" || gpu.Resolved.ProxyJump != "jump@bastion" {
		t.Fatalf("gpu resolved as %+v", gpu.Resolved)
	}
	if len(l.Candidates[3].Resolved.IdentityFiles) != 0 {
		t.Fatalf("plain got the default identities: %v", l.Candidates[3].Resolved.IdentityFiles)
	}

	code, body = b.call("ImportServers", []string{"gpu", "nope"}, true)
	if code != 200 {
		t.Fatalf("ImportServers: %d %s", code, body)
	}
	var res servers.ImportResult
	mustJSON(t, body, &res)
	if len(res.Added) != 1 || res.Added[0].SSHConfigAlias != "gpu" || res.Added[0].Host != "10.0.0.7" ||
		strings.Join(res.Added[0].JumpHosts, ",") != "jump@bastion" || len(res.Skipped) != 1 || res.Skipped[0].Alias != "nope" {
		t.Fatalf("ImportServers result %s", body)
	}
	// Its forward lines are rules (the socket one is left out and logged).
	if fw := res.Added[0].Forwards; len(fw) != 3 ||
		fw[0].SSHForwardString() != "-L 8888:localhost:8888" || fw[1].SSHForwardString() != "-R 9000:localhost:3000" ||
		fw[2].SSHForwardString() != "-D 127.0.0.1:1080" || fw[0].ID == "" {
		t.Fatalf("imported rules %+v", fw)
	}
	if !strings.Contains(ta.logs.String(), "not imported as rules: LocalForward /tmp/a.sock") {
		t.Fatal("the skipped socket forward line is not logged")
	}
	// Now marked as imported.
	_, body = b.call("ImportCandidates")
	mustJSON(t, body, &l)
	if !l.Candidates[1].AlreadyImported || l.Candidates[0].AlreadyImported {
		t.Fatalf("AlreadyImported marks: %s", body)
	}
	if code, _ := b.call("ImportServers", []string{}, false); code != 400 {
		t.Fatalf("ImportServers with nothing: %d", code)
	}

	// The linked profile resolves through the alias at connect time.
	cfg, err := servers.LoginSpec(res.Added[0], servers.SSHBase{HomeDir: ta.home, ConfigPath: filepath.Join(ta.home, ".ssh", "config"), SystemConfigPath: "none"}, 0).Resolve()
	if err != nil || cfg.HostName != "10.0.0.7" || cfg.Port != 2200 || len(cfg.Jumps) != 1 || cfg.Jumps[0].HostName != "bastion.example.com" {
		t.Fatalf("resolveProfile: %+v, %v", cfg, err)
	}
}

func TestImportWithoutSSHConfig(t *testing.T) {
	ta := newTestApp(t, testAppOptions{defaultSSHConfig: true}) // ~/.ssh/config, which does not exist
	l, err := ta.app.ImportCandidates()
	if err != nil || l.Exists || len(l.Candidates) != 0 || l.ConfigPath != filepath.Join(ta.home, ".ssh", "config") {
		t.Fatalf("ImportCandidates = %+v, %v", l, err)
	}
}
