package main

import (
	"os/exec"
	"strings"
	"testing"
)

// allowedImports is ../shared/DESIGN.md's "Imports point down" as data: which of
// our packages each backend package may import. main may import any of them.
var allowedImports = map[string][]string{
	"backend/sshconn":   {},
	"backend/profiles":  {},
	"backend/portmap":   {},
	"backend/guard":     {},
	"backend/discovery": {},
	"backend/webui":     {},
	"backend/forwarder": {"backend/sshconn", "backend/guard"},
	"backend/agent":     {"backend/forwarder", "backend/discovery", "backend/sshconn", "backend/guard"},
}

const modulePath = "github.com/porthole-app/porthole/"

// TestImportsPointDown checks the plan's import rules on the real package graph,
// including that nothing under backend/ depends on Wails.
func TestImportsPointDown(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./backend/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		pkg := strings.TrimPrefix(fields[0], modulePath)
		room := pkg
		if parts := strings.SplitN(pkg, "/", 3); len(parts) >= 2 {
			room = parts[0] + "/" + parts[1]
		}
		allowed, known := allowedImports[room]
		if !known {
			t.Errorf("%s is not a room of ../shared/DESIGN.md; add it to the plan and to allowedImports", room)
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, modulePath) {
				continue
			}
			dep := strings.TrimPrefix(imp, modulePath)
			if strings.HasPrefix(dep, room+"/") || dep == room {
				continue // its own subpackages
			}
			ok := false
			for _, a := range allowed {
				if dep == a || strings.HasPrefix(dep, a+"/") {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s imports %s: against the plan (allowed: %v)", pkg, dep, allowed)
			}
		}
	}

	deps, err := exec.Command("go", "list", "-deps", "./backend/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, deps)
	}
	for _, d := range strings.Fields(string(deps)) {
		if strings.Contains(d, "wailsapp") {
			t.Errorf("a backend package depends on Wails (%s); only main may", d)
		}
	}
}
