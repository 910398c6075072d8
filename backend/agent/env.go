package agent

import (
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// keptEnv are the variables an agent inherits from the app; everything else
// (tokens, proxies, LD_PRELOAD…) stays behind. USER names the local login
// when /etc/passwd cannot; PATH, LANG and the locale, TMPDIR and TZ keep the
// runtime sane. HOME and XDG_RUNTIME_DIR stay behind: the Supervisor hands
// the agent its home directory in the spec (LoginSpec.HomeDir), and nothing
// in the agent uses the runtime directory.
var keptEnv = []string{
	"USER", "LOGNAME", "PATH", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TMPDIR", "TZ",
}

// envAuthSock reaches ssh-agent; only an agent whose login may use
// $SSH_AUTH_SOCK (authAgentFromEnv) inherits it.
const envAuthSock = "SSH_AUTH_SOCK"

// authAgentFromEnv: the login may ask ssh-agent at $SSH_AUTH_SOCK (its
// methods include the agent and it names no socket of its own).
func (s LoginSpec) authAgentFromEnv() bool { return s.UsesAgent() && s.AgentSocket == "" }

// keptEnvWindows are needed by any Windows program (SYSTEMROOT for the
// network stack) or name the user's folders.
var keptEnvWindows = []string{
	"SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "USERPROFILE", "USERNAME", "APPDATA", "LOCALAPPDATA",
	"PROGRAMDATA", "TEMP", "TMP", "HOMEDRIVE", "HOMEPATH", "PATHEXT", "COMSPEC",
}

// agentEnv is the agent's minimal environment: the kept variables of
// environ (with SSH_AUTH_SOCK when authSock), the agent marker and the app's
// PID, and extra (never secrets).
func agentEnv(environ, extra []string, goos string, authSock bool) []string {
	keep := slices.Clone(keptEnv)
	if goos == "windows" {
		keep = append(keep, keptEnvWindows...)
	}
	if authSock {
		keep = append(keep, envAuthSock)
	}
	var out []string
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			continue
		}
		if slices.ContainsFunc(keep, func(k string) bool {
			if goos == "windows" {
				return strings.EqualFold(k, name)
			}
			return k == name
		}) {
			out = append(out, kv)
		}
	}
	out = append(out, EnvMarker+"=1", EnvParentPID+"="+strconv.Itoa(os.Getpid()))
	return append(out, extra...)
}

func defaultAgentEnv(spec LoginSpec, extra []string) []string {
	return agentEnv(os.Environ(), extra, runtime.GOOS, spec.authAgentFromEnv())
}
