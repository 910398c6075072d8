package appview

import (
	"os"
	"path/filepath"
	"testing"
)

func TestGPUFor(t *testing.T) {
	withNode := t.TempDir()
	if err := os.WriteFile(filepath.Join(withNode, "renderD128"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cardOnly := t.TempDir()
	if err := os.WriteFile(filepath.Join(cardOnly, "card0"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "no-dri")
	for _, tc := range []struct {
		name, override, dir string
		want                bool
	}{
		{"render node: composite", "", withNode, true},
		{"no DRI at all (Xvfb, VM): software GL is all cost", "", missing, false},
		{"a card but no render node", "", cardOnly, false},
		{"override on without a node", "on", missing, true},
		{"override ON, spaces", "  ON ", missing, true},
		{"override off with a node", "off", withNode, false},
		{"override 0", "0", withNode, false},
		{"unknown override is ignored", "maybe", withNode, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := gpuFor(tc.override, tc.dir); got != tc.want {
				t.Errorf("gpuFor(%q, %s) = %v, want %v", tc.override, tc.dir, got, tc.want)
			}
		})
	}
}
