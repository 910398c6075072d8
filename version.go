package main

import (
	"runtime"
	"runtime/debug"

	"github.com/porthole-app/porthole/backend/ui"
)

// currentVersion is this build's version (App.Version).
func currentVersion() ui.VersionInfo {
	v := ui.VersionInfo{Version: version, Commit: commit, Go: runtime.Version(), Wails: "unknown", OS: runtime.GOOS, Arch: runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/wailsapp/wails/v2" {
				v.Wails = d.Version
			}
		}
		if v.Commit == "unknown" {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v.Commit = s.Value[:12]
				}
			}
		}
	}
	return v
}
