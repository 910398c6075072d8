package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/porthole-app/porthole/backend/agent"
)

// runAgent is `porthole agent`: it serves one login over stdin/stdout until
// stdin closes (the app is gone). Its logs go to stderr, which the app reads.
func runAgent() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	return agent.Main(ctx, os.Stdin, os.Stdout, newLogger(os.Stderr, false))
}

// agentExecutable is the binary the app starts for each login's agent: the
// plain `porthole` next to this executable when it exists (it links no
// GTK/WebKit, so an agent costs a few MB), else this executable itself.
func agentExecutable() string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved
	}
	if filepath.Base(self) == desktopBinaryName {
		plain := filepath.Join(filepath.Dir(self), "porthole")
		if fi, err := os.Stat(plain); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return plain
		}
	}
	return "" // the Supervisor runs this program again
}
