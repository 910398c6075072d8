package sshconn

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A jump host that shares the destination's name (another port on the same
// address) is not a loop; a ProxyJump cycle in the config is.
func TestProxyJumpSameAliasIsNotALoop(t *testing.T) {
	home := t.TempDir()
	cfg, err := Resolve("root@127.0.0.1", Options{Port: 2222, ProxyJump: "root@127.0.0.1:2200", ConfigPath: "none", SystemConfigPath: "none", HomeDir: home})
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if len(cfg.Jumps) != 1 || cfg.Jumps[0].Port != 2200 || cfg.Port != 2222 {
		t.Fatalf("jumps = %+v, port %d", cfg.Jumps, cfg.Port)
	}

	path := filepath.Join(home, "config")
	if err := os.WriteFile(path, []byte("Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve("a", Options{ConfigPath: path, SystemConfigPath: "none", HomeDir: home}); !errors.Is(err, ErrConfig) {
		t.Fatalf("a → b → a: err = %v, want a ProxyJump loop error", err)
	}
}
