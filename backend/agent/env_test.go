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
		"LD_PRELOAD=/evil.so", "Path=C:\\bin", "SystemRoot=C:\\Windows", "=C:=C:\\", "garbage",
	}
	for _, tc := range []struct {
		goos string
		want []string
	}{
		{"linux", []string{"HOME=/home/a", "SSH_AUTH_SOCK=/run/agent.sock", "PATH=/bin"}},
		{"windows", []string{"HOME=/home/a", "SSH_AUTH_SOCK=/run/agent.sock", "PATH=/bin", "Path=C:\\bin", "SystemRoot=C:\\Windows"}},
	} {
		t.Run(tc.goos, func(t *testing.T) {
			got := agentEnv(environ, []string{"X_TEST=1"}, tc.goos)
			want := append(tc.want, EnvMarker+"=1", EnvParentPID+"="+strconv.Itoa(os.Getpid()), "X_TEST=1")
			if !slices.Equal(got, want) {
				t.Fatalf("agentEnv =\n%q\nwant\n%q", got, want)
			}
		})
	}
}
