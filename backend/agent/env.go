package agent

import (
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// keptEnv are the variables an agent inherits from the app; everything else
// (tokens, proxies, LD_PRELOAD…) stays behind. SSH_AUTH_SOCK reaches
// ssh-agent; HOME and USER find ~/.ssh and the login name; PATH, LANG and
// the locale, TMPDIR, XDG_RUNTIME_DIR and TZ keep the runtime sane.
var keptEnv = []string{
	"SSH_AUTH_SOCK", "HOME", "USER", "LOGNAME", "PATH", "LANG", "LC_ALL", "LC_CTYPE",
	"LC_MESSAGES", "TMPDIR", "XDG_RUNTIME_DIR", "TZ",
}

// keptEnvWindows are needed by any Windows program (SYSTEMROOT for the
// network stack) or name the user's folders.
var keptEnvWindows = []string{
	"SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "USERPROFILE", "USERNAME", "APPDATA", "LOCALAPPDATA",
	"PROGRAMDATA", "TEMP", "TMP", "HOMEDRIVE", "HOMEPATH", "PATHEXT", "COMSPEC",
}

// agentEnv is the agent's minimal environment: the kept variables of
// environ, the agent marker and the app's PID, and extra (never secrets).
func agentEnv(environ, extra []string, goos string) []string {
	keep := keptEnv
	if goos == "windows" {
		keep = append(slices.Clone(keptEnv), keptEnvWindows...)
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

func defaultAgentEnv(extra []string) []string { return agentEnv(os.Environ(), extra, runtime.GOOS) }
