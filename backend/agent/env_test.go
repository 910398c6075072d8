package agent

import (
	"os"
	"slices"
	"strconv"
	"testing"
)

func TestAgentEnv(t *testing.T) {
	environ := []string{
		"HOME=/home/a", "SSH_AUTH_SOCK=/run/agent.sock", "PATH=/bin", "AWS_SECRET_ACCESS_KEY=leak",
		"XDG_RUNTIME_DIR=/run/user/1000", "LD_PRELOAD=/evil.so", "Path=C:\\bin", "SystemRoot=C:\\Windows", "=C:=C:\\", "garbage",
	}
	for _, tc := range []struct {
		name     string
		goos     string
		authSock bool
		want     []string
	}{
		{"linux, ssh-agent", "linux", true, []string{"SSH_AUTH_SOCK=/run/agent.sock", "PATH=/bin"}},
		{"linux, no ssh-agent", "linux", false, []string{"PATH=/bin"}},
		{"windows, ssh-agent", "windows", true, []string{"SSH_AUTH_SOCK=/run/agent.sock", "PATH=/bin", "Path=C:\\bin", "SystemRoot=C:\\Windows"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := agentEnv(environ, []string{"X_TEST=1"}, tc.goos, tc.authSock)
			want := append(tc.want, EnvMarker+"=1", EnvParentPID+"="+strconv.Itoa(os.Getpid()), "X_TEST=1")
			if !slices.Equal(got, want) {
				t.Fatalf("agentEnv =\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// TestAuthAgentFromEnv: only a login that may use ssh-agent without naming
// its own socket gets $SSH_AUTH_SOCK.
func TestAuthAgentFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec LoginSpec
		want bool
	}{
		{"default methods", LoginSpec{}, true},
		{"agent listed", LoginSpec{AuthMethods: []AuthMethod{AuthKey, AuthAgent}}, true},
		{"agent not listed", LoginSpec{AuthMethods: []AuthMethod{AuthPassword}}, false},
		{"socket none", LoginSpec{AgentSocket: "none"}, false},
		{"own socket", LoginSpec{AgentSocket: "/tmp/agent.sock"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.spec.authAgentFromEnv(); got != tc.want {
				t.Errorf("authAgentFromEnv() = %v, want %v", got, tc.want)
			}
		})
	}
}
