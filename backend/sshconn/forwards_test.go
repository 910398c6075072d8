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

func TestConfigForwardsClearAllAndExitOnFailure(t *testing.T) {
	home := t.TempDir()
	cfg := filepath.Join(home, "config")
	content := "Host gpu\n  LocalForward 8080 localhost:80\n  ExitOnForwardFailure yes\n\nHost clear\n  ClearAllForwardings yes\n  LocalForward 1 a:1\n"
	if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := func(o map[string]string) Options {
		return Options{HomeDir: home, ConfigPath: cfg, SystemConfigPath: "none", ConfigOverrides: o}
	}
	for _, tc := range []struct {
		dest      string
		overrides map[string]string
		clear     bool
		local     int
	}{
		{"gpu", nil, false, 1},
		{"me@gpu:2222", nil, false, 1}, // a destination names its host
		{"gpu", map[string]string{"ClearAllForwardings": "yes"}, true, 1},
		{"clear", nil, true, 1},
		{"clear", map[string]string{"clearallforwardings": "no"}, false, 1},
	} {
		got, err := ConfigForwards(tc.dest, opts(tc.overrides))
		if err != nil {
			t.Fatalf("%s %v: %v", tc.dest, tc.overrides, err)
		}
		if got.ClearAll != tc.clear || len(got.Local) != tc.local {
			t.Errorf("%s %v: ClearAll %v, Local %q; want %v, %d lines", tc.dest, tc.overrides, got.ClearAll, got.Local, tc.clear, tc.local)
		}
	}
	if _, err := ConfigForwards("gpu", opts(map[string]string{"ClearAllForwardings": "maybe"})); err == nil {
		t.Error("ClearAllForwardings=maybe: no error")
	}
	for _, tc := range []struct {
		overrides map[string]string
		want      bool
	}{{nil, true}, {map[string]string{"ExitOnForwardFailure": "no"}, false}} {
		c, err := Resolve("gpu", opts(tc.overrides))
		if err != nil {
			t.Fatal(err)
		}
		if c.ExitOnForwardFailure != tc.want {
			t.Errorf("%v: ExitOnForwardFailure = %v, want %v", tc.overrides, c.ExitOnForwardFailure, tc.want)
		}
	}
}
