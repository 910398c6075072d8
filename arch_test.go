package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// allowedImports is docs/ARCHITECTURE.md's "Imports point down" as data:
// which of our packages each package may import, the root included. A
// package missing here fails the test: add it to the plan first.
var allowedImports = map[string][]string{
	// main: argv → mode, and the wiring of the rooms (Wails, serve, forward, agent).
	"": {"backend/agent", "backend/apps", "backend/appview", "backend/browseropen", "backend/cli", "backend/desktop", "backend/events", "backend/forwarder", "backend/notify", "backend/portmap",
		"backend/profiles", "backend/prompts", "backend/servers", "backend/settings", "backend/sshconn", "backend/ui", "backend/webui"},
	// The application layer.
	"backend/ui":       {"backend/apperr", "backend/apps", "backend/desktop", "backend/events", "backend/forwarder", "backend/leaks", "backend/notify", "backend/portmap", "backend/profiles", "backend/prompts", "backend/rules", "backend/servers", "backend/settings", "backend/webui"},
	"backend/notify":   {"backend/agent", "backend/apperr", "backend/apps", "backend/atomicfile", "backend/events", "backend/prompts", "backend/servers", "backend/settings"},
	"backend/servers":  {"backend/agent", "backend/apperr", "backend/events", "backend/forwarder", "backend/profiles", "backend/prompts", "backend/sshconn"},
	"backend/apps":     {"backend/agent", "backend/apperr", "backend/atomicfile", "backend/browseropen", "backend/discovery", "backend/events", "backend/forwarder", "backend/portmap", "backend/profiles"},
	"backend/rules":    {"backend/agent", "backend/apperr", "backend/events", "backend/forwarder", "backend/profiles"},
	"backend/prompts":  {"backend/apperr", "backend/events", "backend/profiles", "backend/sshconn"},
	"backend/settings": {"backend/apperr", "backend/atomicfile", "backend/events"},
	"backend/leaks":    {"backend/apperr", "backend/cli", "backend/forwarder", "backend/profiles", "backend/rules", "backend/servers"},
	"backend/desktop":  {"backend/apperr", "backend/apps", "backend/atomicfile", "backend/events", "backend/servers"},
	// The Linux window's app views (cgo, desktop build) over ui's AppViewHost.
	"backend/appview": {"backend/apperr", "backend/atomicfile", "backend/browseropen", "backend/events", "backend/notify", "backend/profiles", "backend/settings", "backend/ui"},
	// The engine and its stores.
	"backend/agent":     {"backend/forwarder", "backend/discovery", "backend/sshconn", "backend/guard"},
	"backend/forwarder": {"backend/sshconn", "backend/guard", "backend/netwatch"},
	"backend/webui":     {"backend/guard"},
	"backend/profiles":  {"backend/atomicfile"},
	"backend/portmap":   {"backend/atomicfile"},
	// Leaves: they import no package of ours.
	"backend/sshconn":     {},
	"backend/discovery":   {},
	"backend/guard":       {},
	"backend/netwatch":    {},
	"backend/events":      {},
	"backend/apperr":      {},
	"backend/atomicfile":  {},
	"backend/browseropen": {},
	"backend/cli":         {},
	// Test-only rigs (imported by tests, `make bench` and the desktop test).
	"internal/testrig":     {},
	"internal/bench":       {"backend/agent", "backend/guard", "internal/faults", "internal/testrig"},
	"internal/desktoptest": {"backend/apps", "backend/profiles", "internal/testrig"},
	// The fault matrix (tests) and the soak's driver (Soak, run by its test and by bench).
	"internal/faults": {"backend/agent", "backend/forwarder", "backend/profiles", "backend/sshconn", "internal/testrig"},
}

const modulePath = "github.com/porthole-app/porthole"

// room is a package's room: "" for the root, else its first two path parts.
func room(pkg string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(pkg, modulePath), "/")
	if parts := strings.SplitN(rel, "/", 3); len(parts) >= 2 {
		return parts[0] + "/" + parts[1]
	}
	return rel
}

// TestImportsPointDown checks the plan's import rules on the real package
// graph (plain and desktop builds), for every package including the root,
// and that only the root depends on Wails.
func TestImportsPointDown(t *testing.T) {
	for _, tags := range []string{"", "desktop,production"} {
		out, err := exec.Command("go", "list", "-tags", tags, "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...").CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			fields := strings.Fields(line)
			if len(fields) == 0 {
				continue
			}
			r := room(fields[0])
			allowed, known := allowedImports[r]
			if !known {
				t.Errorf("%s is not a room of docs/ARCHITECTURE.md; add it to the plan and to allowedImports", fields[0])
				continue
			}
			for _, imp := range fields[1:] {
				if !strings.HasPrefix(imp, modulePath+"/") {
					continue
				}
				dep := room(imp)
				if dep == r || slices.Contains(allowed, dep) {
					continue
				}
				t.Errorf("%s imports %s: against the plan (%q may import %v)", fields[0], imp, r, allowed)
			}
		}
	}

	deps, err := exec.Command("go", "list", "-tags", "desktop,production", "-deps", "./backend/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, deps)
	}
	for _, d := range strings.Fields(string(deps)) {
		if strings.Contains(d, "wailsapp") {
			t.Errorf("a backend package depends on Wails (%s); only main may", d)
		}
	}
}

// TestRootIsOnlyWiring: the root package holds main, the modes, the Wails
// window and the wiring; the application lives in backend/. Its non-test Go
// stays under 1,500 lines (issue 10).
func TestRootIsOnlyWiring(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "desktop,production", "-f", `{{join .GoFiles " "}} {{join .CgoFiles " "}}`, ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, f := range strings.Fields(string(out)) {
		b, err := exec.Command("wc", "-l", f).Output()
		if err != nil {
			t.Fatal(err)
		}
		var n int
		for _, c := range strings.Fields(string(b))[0] {
			n = n*10 + int(c-'0')
		}
		total += n
	}
	if total >= 1500 {
		t.Errorf("the root package has %d lines of non-test Go; keep it under 1,500 (move application code into its room)", total)
	}
}
