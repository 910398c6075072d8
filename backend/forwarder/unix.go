package forwarder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Unix socket forwards: a local or remote end of a -L or -R forward may be a
// Unix socket instead of a TCP port (OpenSSH's streamlocal extensions).

// ErrSocketPathTaken means a local Unix socket could not be created because
// its path is in use: an existing file that is not a stale socket of this
// user, or a socket something accepts connections on. Porthole never
// removes such a file.
var ErrSocketPathTaken = errors.New("local socket path is taken")

// UnixDialer is a Dialer that also reaches Unix sockets on the server's
// side (*Session and agent.LocalLogin have it).
type UnixDialer interface {
	DialUnix(ctx context.Context, path string) (net.Conn, error)
}

// maxSocketPath is the longest socket path Linux takes (sun_path is 108
// bytes with the terminating NUL; macOS has 104).
const maxSocketPath = 107

// SocketDir is where relative local socket names live:
// $XDG_RUNTIME_DIR/porthole, or porthole-<uid> in the temporary directory
// when there is no runtime directory. ListenLocal creates it (0700) and
// refuses it when it belongs to another user or others may enter it.
// A relative name is a plain file name such as "docker.sock".
func SocketDir() string {
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" && filepath.IsAbs(rt) {
		return filepath.Join(rt, "porthole")
	}
	return filepath.Join(os.TempDir(), "porthole-"+strconv.Itoa(os.Getuid()))
}

// resolveSocketName makes a relative local socket name absolute in SocketDir.
func resolveSocketName(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(SocketDir(), p)
}

// isSocketField: like ssh, a field with a '/' is a Unix socket path; so is
// a name ending in ".sock" (a relative name in SocketDir).
func isSocketField(f specField) bool {
	return !f.bracketed && (strings.Contains(f.text, "/") || strings.HasSuffix(f.text, ".sock"))
}

func hasSocketField(fields []specField) bool {
	for _, f := range fields {
		if isSocketField(f) {
			return true
		}
	}
	return false
}

// parseSocketSpec parses the socket forms of -L and -R (the first field is
// the listening end, the rest the target): port:/path, bind:port:/path,
// /path:host:port and /path:/path. Relative names of the local end are
// resolved by the caller's validation rules, not here.
func parseSocketSpec(fields []specField) (LocalSpec, error) {
	var s LocalSpec
	var err error
	switch {
	case len(fields) == 2 && isSocketField(fields[1]):
		s.TargetPath = fields[1].text
		if isSocketField(fields[0]) {
			s.BindPath = fields[0].text
			return s, nil
		}
		if fields[0].bracketed {
			return s, errors.New("ports cannot be in brackets")
		}
		if s.BindPort, err = parsePort(fields[0].text, 0); err != nil {
			return s, errors.New("bind port: " + err.Error())
		}
		return s, nil
	case len(fields) == 3 && isSocketField(fields[2]) && !isSocketField(fields[0]) && !isSocketField(fields[1]):
		s.TargetPath = fields[2].text
		s.BindAddress = fields[0].text
		if s.BindAddress == "" && !fields[0].bracketed {
			s.BindAddress = AllInterfaces
		}
		if fields[1].bracketed {
			return s, errors.New("ports cannot be in brackets")
		}
		if s.BindPort, err = parsePort(fields[1].text, 0); err != nil {
			return s, errors.New("bind port: " + err.Error())
		}
		return s, nil
	case len(fields) == 3 && isSocketField(fields[0]) && !isSocketField(fields[1]) && !isSocketField(fields[2]):
		s.BindPath = fields[0].text
		s.TargetHost = fields[1].text
		if fields[2].bracketed {
			return s, errors.New("ports cannot be in brackets")
		}
		if s.TargetPort, err = parsePort(fields[2].text, 1); err != nil {
			return s, errors.New("target port: " + err.Error())
		}
		return s, nil
	case len(fields) == 2 && isSocketField(fields[0]):
		return s, errors.New("a Unix socket forward needs a target: host:hostport or a socket path")
	}
	return s, errors.New("a Unix socket path (a field with '/') must be the listening end (first) or the target (last)")
}

// validateSockets checks a spec with a socket end and resolves a relative
// local socket name (in place, through the pointer-free copy the callers
// keep). remote: the spec is a -R one (BindPath is on the server,
// TargetPath here); otherwise -L (BindPath here, TargetPath on the server).
func (s *LocalSpec) validateSockets(remote bool) error {
	if s.BindPath != "" {
		if s.BindAddress != "" || s.BindPort != 0 {
			return fmt.Errorf("%w: %q: a socket forward listens on a path, not also on an address or port", ErrBadSpec, s.String())
		}
		if err := checkSocketPath(s.BindPath, remote); err != nil {
			return fmt.Errorf("%w: %q: listening socket: %s", ErrBadSpec, s.String(), err)
		}
		if !remote {
			s.BindPath = resolveSocketName(s.BindPath)
			if len(s.BindPath) > maxSocketPath {
				return fmt.Errorf("%w: %q: listening socket %s is longer than %d bytes, the limit for a Unix socket", ErrBadSpec, s.String(), s.BindPath, maxSocketPath)
			}
		}
	} else {
		if s.BindPort < 0 || s.BindPort > 65535 {
			return fmt.Errorf("%w: %q: bind port %d is out of range 0-65535", ErrBadSpec, s.String(), s.BindPort)
		}
		if s.BindAddress != "" && s.BindAddress != AllInterfaces {
			if err := checkHost(s.BindAddress, "bind address"); err != nil {
				return fmt.Errorf("%w: %q: %s", ErrBadSpec, s.String(), err)
			}
		}
	}
	if s.TargetPath != "" {
		if s.TargetHost != "" || s.TargetPort != 0 {
			return fmt.Errorf("%w: %q: a socket target is a path, not also a host or port", ErrBadSpec, s.String())
		}
		if err := checkSocketPath(s.TargetPath, !remote); err != nil {
			return fmt.Errorf("%w: %q: target socket: %s", ErrBadSpec, s.String(), err)
		}
		if remote {
			s.TargetPath = resolveSocketName(s.TargetPath)
			if len(s.TargetPath) > maxSocketPath {
				return fmt.Errorf("%w: %q: target socket %s is longer than %d bytes, the limit for a Unix socket", ErrBadSpec, s.String(), s.TargetPath, maxSocketPath)
			}
		}
		return nil
	}
	if s.TargetPort < 1 || s.TargetPort > 65535 {
		return fmt.Errorf("%w: %q: target port %d is out of range 1-65535", ErrBadSpec, s.String(), s.TargetPort)
	}
	if err := checkHost(s.TargetHost, "target host"); err != nil {
		return fmt.Errorf("%w: %q: %s", ErrBadSpec, s.String(), err)
	}
	return nil
}

// checkSocketPath checks a socket path; onServer paths must be absolute
// (a relative one would depend on sshd's working directory).
func checkSocketPath(p string, onServer bool) error {
	switch {
	case p == "":
		return errors.New("the path is empty")
	case onServer && !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q on the server must be an absolute path", p)
	case !onServer && !strings.HasPrefix(p, "/") && !filepath.IsAbs(p) && strings.Contains(p, "/"):
		return fmt.Errorf("%q: a relative socket name (kept in %s) has no '/'; give an absolute path", p, SocketDir())
	case strings.HasSuffix(p, "/"):
		return fmt.Errorf("%q ends with '/'", p)
	case strings.ContainsAny(p, ":[]"):
		return fmt.Errorf("%q contains ':', '[' or ']'", p)
	}
	for _, r := range p {
		if r < ' ' || r == 0x7f {
			return fmt.Errorf("%q contains a control character", p)
		}
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return fmt.Errorf("%q contains '..'", p)
		}
	}
	if len(p) > maxSocketPath {
		return fmt.Errorf("%q is longer than %d bytes, the limit for a Unix socket", p, maxSocketPath)
	}
	return nil
}

// listenUnixSocket creates the local socket path (mode 0600). The socket
// directory is created (0700) when path is in it. An existing file is
// replaced only when it is a stale socket of this user: a socket owned by
// this user that refuses connections (ECONNREFUSED). Anything else is left
// untouched and the error (wrapping ErrSocketPathTaken) names the path.
func listenUnixSocket(path string, log *slog.Logger) (*net.UnixListener, error) {
	if !filepath.IsAbs(path) {
		path = resolveSocketName(path)
	}
	if err := prepareSocketDir(path); err != nil {
		return nil, err
	}
	replaced, err := clearStaleSocket(path)
	if err != nil {
		return nil, err
	}
	if replaced {
		log.Info("replaced a stale socket of this user that nothing accepted connections on", "path", path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%w: %s appeared while Porthole was creating it: %w", ErrSocketPathTaken, path, err)
		}
		return nil, fmt.Errorf("listen on Unix socket %s: %w", path, err)
	}
	// The same-user guard covers the moment before the mode is set.
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("make Unix socket %s private (0600): %w", path, err)
	}
	return ln, nil
}

// IsSocketDir reports whether dir is one of Porthole's socket directories
// (named "porthole" or "porthole-<uid>", as SocketDir is, whatever the
// environment of the process that resolved the name).
func IsSocketDir(dir string) bool {
	b := filepath.Base(dir)
	return b == "porthole" || b == "porthole-"+strconv.Itoa(os.Getuid())
}

// prepareSocketDir creates a socket directory of Porthole's (IsSocketDir;
// 0700; its parent must exist) for a path inside it and checks that it is
// this user's and private. Other directories are the user's choice.
func prepareSocketDir(path string) error {
	dir := filepath.Dir(path)
	if !IsSocketDir(dir) {
		return nil
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create the socket directory %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("socket directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: socket directory %s is not a directory", ErrSocketPathTaken, dir)
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Getuid() {
		return fmt.Errorf("%w: socket directory %s belongs to another user (uid %d); Porthole does not use it", ErrSocketPathTaken, dir, uid)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: socket directory %s is open to other users (mode %v); make it 0700 (chmod 700 %s)", ErrSocketPathTaken, dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// clearStaleSocket removes path if it is a stale socket of this user, does
// nothing if it does not exist, and refuses anything else.
func clearStaleSocket(path string) (replaced bool, err error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: %s: %w", ErrSocketPathTaken, path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		what := "a file"
		switch {
		case fi.IsDir():
			what = "a directory"
		case fi.Mode()&fs.ModeSymlink != 0:
			what = "a symbolic link"
		}
		return false, fmt.Errorf("%w: %s exists and is %s, not a socket; Porthole leaves it alone: choose another path or remove it yourself", ErrSocketPathTaken, path, what)
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Getuid() {
		return false, fmt.Errorf("%w: socket %s belongs to another user (uid %d); Porthole leaves it alone: choose another path", ErrSocketPathTaken, path, uid)
	}
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err == nil {
		_ = c.Close()
		return false, fmt.Errorf("%w: something accepts connections on socket %s (another forward?); stop it or choose another path", ErrSocketPathTaken, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return false, fmt.Errorf("%w: socket %s exists and cannot be checked (%v); Porthole leaves it alone", ErrSocketPathTaken, path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("remove the stale socket %s: %w", path, err)
	}
	return true, nil
}

// peerName names the other end of a local connection for logs (a Unix
// socket's client usually has no address).
func peerName(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil && a.String() != "" {
		return a.String()
	}
	if a := c.LocalAddr(); a != nil {
		return "a client of " + a.String()
	}
	return "a client"
}

// directStreamlocal is the payload of a direct-streamlocal@openssh.com
// channel open (OpenSSH's PROTOCOL, section 2.4).
type directStreamlocal struct {
	SocketPath string
	Reserved0  string
	Reserved1  uint32
}

// DialUnix opens a connection to the Unix socket path on the server (a
// direct-streamlocal@openssh.com channel), connecting first if needed, like
// Dial. When the server refuses, the error (wrapping ErrChannelRefused)
// says why as far as one read-only look at the path on the server can
// tell: no such socket, no permission, or — when the socket is there and
// usable — sshd's AllowStreamLocalForwarding or DisableForwarding setting.
func (s *Session) DialUnix(ctx context.Context, path string) (net.Conn, error) {
	if err := checkSocketPath(path, true); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadTarget, err)
	}
	return s.dialTarget(ctx, target{path: path})
}

// unixRefusal explains why the server refused a direct-streamlocal channel
// to path, with one read-only command (test -e/-S/-r/-w).
func (s *Session) unixRefusal(ctx context.Context, client SSHClient, gen uint64, path string) string {
	s.mu.Lock()
	dead := s.dead[gen]
	s.mu.Unlock()
	if dead == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := s.runScript(ctx, client, dead, shellCommand(socketCheckScript, shQuoteArg(path)))
	if err != nil {
		return fmt.Sprintf("the server refused to connect to Unix socket %s: its sshd_config may have AllowStreamLocalForwarding no (or remote) or DisableForwarding yes, or the socket is missing", path)
	}
	switch strings.TrimSpace(string(out)) {
	case "missing":
		return fmt.Sprintf("there is no Unix socket %s on the server", path)
	case "notsock":
		return fmt.Sprintf("%s on the server is not a Unix socket", path)
	case "noaccess":
		return fmt.Sprintf("the login user may not use Unix socket %s on the server (its permissions; e.g. the user is not in the socket's group)", path)
	}
	return fmt.Sprintf("the server refused to connect to Unix socket %s, which exists and is usable: its sshd_config has AllowStreamLocalForwarding no (or remote) or DisableForwarding yes — or nothing accepts connections on the socket", path)
}

// socketCheckScript looks at a socket path on the server; it only reads.
const socketCheckScript = `p=$1
if [ ! -e "$p" ]; then echo missing
elif [ ! -S "$p" ]; then echo notsock
elif [ -r "$p" ] && [ -w "$p" ]; then echo ok
else echo noaccess
fi`

// bindCheckScript looks at where the server was asked to listen on a
// socket; it only reads.
const bindCheckScript = `p=$1
d=$(dirname "$p")
if [ -S "$p" ]; then echo sock
elif [ -e "$p" ] || [ -L "$p" ]; then echo file
elif [ ! -d "$d" ]; then echo nodir
elif [ ! -w "$d" ]; then echo nowrite
else echo free
fi`

// shQuoteArg quotes an argument of shellCommand for the login shell (POSIX
// shells and fish).
func shQuoteArg(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// parseStreamlocalOpen reads the socket path of a
// forwarded-streamlocal@openssh.com channel open (path, then a reserved
// string that is ignored).
func parseStreamlocalOpen(b []byte) (string, error) {
	if len(b) < 4 {
		return "", errors.New("short forwarded-streamlocal payload")
	}
	n := int(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
	if n < 0 || n > len(b)-4 {
		return "", errors.New("bad forwarded-streamlocal payload")
	}
	return string(b[4 : 4+n]), nil
}

// streamlocalPayload is the payload of streamlocal-forward@openssh.com and
// its cancel.
func streamlocalPayload(path string) []byte {
	return ssh.Marshal(&struct{ SocketPath string }{path})
}
