//go:build linux

package agent

import (
	"bufio"
	"bytes"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
)

// sandboxPolicy is what one login's agent may touch on disk once it is
// sandboxed (Linux: Landlock). Everything else is out of reach.
type sandboxPolicy struct {
	// read are files and directories the login reads: its ssh_config files
	// and their Includes, identity files, known_hosts files, and the system
	// files name resolution needs. Read-only.
	read []string
	// write are the known_hosts files that take new host keys (the first
	// user file of each hop): read and append, no truncation, no new files.
	write []string
	// sockets are Unix sockets the login connects to (ssh-agent, the local
	// targets of remote socket forwards).
	sockets []string
	// socketDirs are directories where the login's local socket forwards
	// listen: it may create and remove sockets there.
	socketDirs []string
}

// systemReadFiles are read by Go's net (DNS, /etc/hosts), os/user (the local
// login name), time (the local zone) and, in cgo builds, glibc's name
// service switch. Missing ones are skipped.
var systemReadFiles = []string{
	"/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf",
	"/etc/services", "/etc/protocols", "/etc/passwd", "/etc/group", "/etc/localtime",
	"/etc/mdns.allow", "/usr/share/zoneinfo", "/proc/sys/net/core/somaxconn",
	"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2",
}

// cgoReadFiles are what glibc's NSS modules need (cgo builds only): the
// dynamic loader's cache and the libraries it may dlopen.
var cgoReadFiles = []string{"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/lib", "/lib64", "/usr/lib", "/usr/lib64"}

// systemSockets are name services a cgo build may ask (nscd, systemd-resolved).
var systemSockets = []string{"/run/nscd/socket", "/run/systemd/resolve/io.systemd.Resolve"}

// sandboxPolicyFor lists the files spec's login needs, from the ssh_config
// files as they are now (the agent's spec never changes; a file added to
// the config later is readable only after the agent restarts). homeDir is
// the home directory for "~" when spec.HomeDir is empty.
func sandboxPolicyFor(spec LoginSpec, homeDir string, cgo bool) sandboxPolicy {
	home := spec.HomeDir
	if home == "" {
		home = homeDir
	}
	var p sandboxPolicy
	p.read = append(p.read, systemReadFiles...)
	if cgo {
		p.read = append(p.read, cgoReadFiles...)
		p.sockets = append(p.sockets, systemSockets...)
	}
	// resolv.conf is often a symlink to a file that is replaced, not
	// rewritten, when the network changes: allow the directory it lives in.
	if t, err := filepath.EvalSymlinks("/etc/resolv.conf"); err == nil && filepath.Dir(t) != "/etc" {
		p.read = append(p.read, filepath.Dir(t))
	}

	// ssh_config files (the rules of sshconn.Options) and their Includes.
	incHome := home
	if u, err := user.Current(); err == nil && u.HomeDir != "" {
		incHome = u.HomeDir // github.com/kevinburke/ssh_config resolves relative Includes here
	}
	userPath, userExplicit := spec.SSHConfigPath, spec.SSHConfigPath != ""
	if !userExplicit && home != "" {
		userPath = filepath.Join(home, ".ssh", "config")
	}
	sysPath := spec.SystemConfigPath
	if sysPath == "" && !userExplicit {
		sysPath = "/etc/ssh/ssh_config"
	}
	for _, f := range []string{userPath, sysPath} {
		if f == "" || strings.EqualFold(f, "none") {
			continue
		}
		p.read = append(p.read, sshConfigFiles(expandHome(f, home), incHome, 0, map[string]bool{})...)
	}

	// What the resolved configuration names: identity files (and their
	// .pub halves), known_hosts files, the agent socket.
	if cfg, err := spec.Resolve(); err == nil {
		hops := append(slices.Clone(cfg.Jumps), cfg)
		for _, h := range hops {
			for _, f := range h.IdentityFiles {
				p.read = append(p.read, f, f+".pub")
			}
			if len(spec.KnownHostsFiles) == 0 {
				if len(h.KnownHostsFiles) > 0 {
					p.write = append(p.write, h.KnownHostsFiles[0])
					p.read = append(p.read, h.KnownHostsFiles[1:]...)
				}
				p.read = append(p.read, h.GlobalKnownHostsFiles...)
			}
			if spec.UsesAgent() && spec.AgentSocket == "" && h.IdentityAgent != "" && h.IdentityAgent != "none" {
				p.sockets = append(p.sockets, h.IdentityAgent)
			}
		}
	}
	for _, f := range spec.IdentityFiles {
		f = expandHome(f, home)
		p.read = append(p.read, f, f+".pub")
	}
	if len(spec.KnownHostsFiles) > 0 {
		p.write = append(p.write, expandHome(spec.KnownHostsFiles[0], home))
		for _, f := range spec.KnownHostsFiles[1:] {
			p.read = append(p.read, expandHome(f, home))
		}
	}
	if spec.UsesAgent() {
		switch s := spec.AgentSocket; {
		case s == "":
			if env := os.Getenv("SSH_AUTH_SOCK"); env != "" {
				p.sockets = append(p.sockets, env)
			}
		case s != "none":
			p.sockets = append(p.sockets, expandHome(s, home))
		}
	}
	// Socket forwards of the spec (later ones, added by SetForwards, are
	// out of reach until the agent restarts).
	for _, f := range spec.Forwards {
		if f.Local.BindPath != "" {
			p.socketDirs = append(p.socketDirs, filepath.Dir(f.Local.BindPath))
		}
		if r := f.Remote; r != nil && r.TargetPath != "" {
			p.sockets = append(p.sockets, r.TargetPath)
		}
	}
	p.read = cleanPaths(p.read)
	p.write = cleanPaths(p.write)
	p.sockets = cleanPaths(p.sockets)
	p.socketDirs = cleanPaths(p.socketDirs)
	// A known_hosts file that takes new keys is read through its write rule.
	p.read = slices.DeleteFunc(p.read, func(f string) bool { return slices.Contains(p.write, f) })
	return p
}

func expandHome(p, home string) string {
	if p == "~" {
		return home
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok && home != "" {
		return filepath.Join(home, rest)
	}
	return p
}

func cleanPaths(ps []string) []string {
	var out []string
	for _, p := range ps {
		if p == "" || !filepath.IsAbs(p) {
			continue
		}
		p = filepath.Clean(p)
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// maxIncludeDepth is github.com/kevinburke/ssh_config's limit.
const maxIncludeDepth = 5

// sshConfigFiles returns path and, recursively, what its Include
// directives name, resolved like github.com/kevinburke/ssh_config does
// (relative to incHome/.ssh; "~/" is incHome). For a pattern, the
// directory it is matched in is listed (it must be read to glob).
func sshConfigFiles(path, incHome string, depth int, seen map[string]bool) []string {
	out := []string{path}
	if depth > maxIncludeDepth || seen[path] {
		return out
	}
	seen[path] = true
	b, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	for _, arg := range includeArgs(b) {
		var p string
		switch {
		case filepath.IsAbs(arg):
			p = arg
		case strings.HasPrefix(arg, "~/"):
			p = filepath.Join(incHome, arg[2:])
		default:
			p = filepath.Join(incHome, ".ssh", arg)
		}
		if hasGlobMeta(p) {
			out = append(out, globRoot(p))
		}
		matches, err := filepath.Glob(p)
		if err != nil {
			continue
		}
		for _, m := range matches {
			out = append(out, sshConfigFiles(m, incHome, depth+1, seen)...)
		}
	}
	return out
}

// includeArgs returns the arguments of every Include directive in an
// ssh_config file ("Include a b", "include=a", quoted or not).
func includeArgs(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.IndexAny(line, " \t=")
		if i < 0 || !strings.EqualFold(line[:i], "include") {
			continue
		}
		rest := strings.TrimLeft(line[i:], " \t")
		rest = strings.TrimLeft(strings.TrimPrefix(rest, "="), " \t")
		for _, f := range strings.Fields(rest) {
			if f = strings.Trim(f, `"`); f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}

func hasGlobMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// globRoot is the deepest directory of pattern p without glob characters.
func globRoot(p string) string {
	dir := filepath.Dir(p)
	for hasGlobMeta(dir) {
		dir = filepath.Dir(dir)
	}
	return dir
}
