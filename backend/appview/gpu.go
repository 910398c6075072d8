package appview

import (
	"os"
	"path/filepath"
	"strings"
)

// GPU says whether the window's web views (the shell's and every app tab's)
// should use hardware-accelerated compositing.
//
// WebKitGTK composites with OpenGL when it may. On a machine with no GPU
// render node (a VM, a remote X display, Xvfb) that OpenGL is Mesa's llvmpipe,
// a software renderer: each web process then loads LLVM and keeps its
// compositing buffers in ordinary memory, about 150 MB of Pss per process
// measured under Xvfb (docs/BENCHMARKS.md), and paints no faster than without
// compositing. So Porthole composites only where a render node exists.
//
// PORTHOLE_GPU=on or =off overrides the guess (for a render node that is
// broken, or a driver the user wants); anything else is ignored.
func GPU() bool { return gpuFor(os.Getenv("PORTHOLE_GPU"), "/dev/dri") }

// gpuFor is GPU with its inputs: the override and the DRI directory.
func gpuFor(override, driDir string) bool {
	switch strings.ToLower(strings.TrimSpace(override)) {
	case "on", "1", "true", "yes":
		return true
	case "off", "0", "false", "no":
		return false
	}
	nodes, _ := filepath.Glob(filepath.Join(driDir, "renderD*"))
	return len(nodes) > 0
}
