package sshconn

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestConfigForwards(t *testing.T) {
	home := t.TempDir()
	cfg := filepath.Join(home, "config")
	content := "Host gpu\n  HostName gpu.example.com\n  LocalForward 8080 localhost:80\n  LocalForward 127.0.0.1:5432 db:5432\n" +
		"  RemoteForward 9000 localhost:3000\n  DynamicForward 1080\n\nHost other\n  LocalForward 1 a:1\n\nHost *\n  DynamicForward 1081\n"
	if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ConfigForwards("gpu", Options{HomeDir: home, ConfigPath: cfg, SystemConfigPath: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"8080 localhost:80", "127.0.0.1:5432 db:5432"}; !slices.Equal(got.Local, want) {
		t.Errorf("Local = %q, want %q", got.Local, want)
	}
	if want := []string{"9000 localhost:3000"}; !slices.Equal(got.Remote, want) {
		t.Errorf("Remote = %q, want %q", got.Remote, want)
	}
	if want := []string{"1080", "1081"}; !slices.Equal(got.Dynamic, want) {
		t.Errorf("Dynamic = %q, want %q", got.Dynamic, want)
	}
}
