package agent

import (
	"slices"
	"testing"

	"github.com/porthole-app/porthole/backend/forwarder"
)

// TestSandboxPolicySocketForwards: a login's local socket forwards may
// create sockets in their directories, and its remote socket forwards may
// connect to their local target sockets.
func TestSandboxPolicySocketForwards(t *testing.T) {
	spec := LoginSpec{ID: "s", Host: "h", SSHConfigPath: "none", SystemConfigPath: "none", AgentSocket: "none", Forwards: []ForwardSpec{
		{ID: "L", Local: forwarder.LocalSpec{BindPath: "/run/user/1000/porthole/docker.sock", TargetPath: "/var/run/docker.sock"}},
		{ID: "R", Remote: &forwarder.RemoteSpec{BindPath: "/tmp/r.sock", TargetPath: "/run/user/1000/app.sock"}},
	}}
	p := sandboxPolicyFor(spec, t.TempDir(), false)
	if !slices.Equal(p.socketDirs, []string{"/run/user/1000/porthole"}) {
		t.Errorf("socketDirs %q", p.socketDirs)
	}
	if !slices.Contains(p.sockets, "/run/user/1000/app.sock") || slices.Contains(p.sockets, "/var/run/docker.sock") {
		t.Errorf("sockets %q", p.sockets)
	}
}
