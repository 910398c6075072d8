package apps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/porthole-app/porthole/backend/agent"
	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/discovery"
)

// SocketForward is where ForwardSocket forwarded a server's Unix socket: a
// local TCP endpoint (stable across restarts, like ForwardPort's) and how
// to use it.
type SocketForward struct {
	Path      string `json:"path"`      // the socket on the server
	LocalAddr string `json:"localAddr"` // "127.0.0.2:2375"
	// Hint is e.g. "DOCKER_HOST=tcp://127.0.0.2:2375 docker ps".
	Hint   string `json:"hint"`
	Notice string `json:"notice,omitempty"`
}

// socketKeyHost is the portmap key of a socket forward: a name under
// .invalid (which no real host has) derived from the path.
func socketKeyHost(p string) string {
	sum := sha256.Sum256([]byte(p))
	return "s" + hex.EncodeToString(sum[:8]) + ".unix.invalid"
}

// socketPort is the local port a socket's endpoint prefers: the service's
// usual one.
func socketPort(k discovery.SocketKind, p string) int {
	switch k {
	case discovery.SocketDocker:
		return 2375
	case discovery.SocketPostgres:
		if n, err := strconv.Atoi(strings.TrimPrefix(path.Base(p), ".s.PGSQL.")); err == nil && n > 0 && n <= 65535 {
			return n
		}
		return 5432
	case discovery.SocketMySQL:
		return 3306
	}
	return 8000
}

// socketHint says how to use a forwarded socket from a terminal.
func socketHint(k discovery.SocketKind, host string, port int) string {
	ps := strconv.Itoa(port)
	switch k {
	case discovery.SocketDocker:
		return "DOCKER_HOST=tcp://" + host + ":" + ps + " docker ps"
	case discovery.SocketPostgres:
		return "psql -h " + host + " -p " + ps
	case discovery.SocketMySQL:
		return "mysql -h " + host + " -P " + ps + " --protocol=TCP"
	}
	return "connect to " + host + ":" + ps
}

// ForwardSocket forwards a Unix socket of a connected server (e.g.
// /var/run/docker.sock) to a stable local TCP endpoint of the server's
// loopback address, through direct-streamlocal@openssh.com, and says how to
// use it.
func (am *Manager) ForwardSocket(ctx context.Context, id, socketPath string) (SocketForward, error) {
	if id == LocalServerID {
		return SocketForward{}, badInput("the sockets of this computer need no forward; use %s directly", socketPath)
	}
	if !strings.HasPrefix(socketPath, "/") || strings.ContainsAny(socketPath, ":[]\x00\n\r") || path.Clean(socketPath) != socketPath || len(socketPath) > 107 {
		return SocketForward{}, badInput("%q is not an absolute Unix socket path such as /var/run/docker.sock", socketPath)
	}
	if am.ports == nil {
		return SocketForward{}, apperr.Mark(errors.New("local endpoints are not available in this mode"), apperr.ErrUnavailable)
	}
	p, l, err := am.login(id)
	if err != nil {
		return SocketForward{}, err
	}
	kind := discovery.KindOfSocketPath(socketPath)
	sa, fresh := am.stateFor(p.ID, l)
	sa.fwdMu.Lock()
	defer sa.fwdMu.Unlock()
	am.mu.Lock()
	cur := sa.sockets[socketPath]
	am.mu.Unlock()
	if cur != nil && !fresh {
		return SocketForward{Path: socketPath, LocalAddr: cur.bound.String(), Hint: socketHint(kind, cur.bound.IP.String(), cur.bound.Port), Notice: cur.notice}, nil
	}
	fctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	ep, err := am.ports.Endpoint(fctx, p.ID, socketKeyHost(socketPath), socketPort(kind, socketPath))
	if err != nil {
		return SocketForward{}, fmt.Errorf("choose a local endpoint for %s of %s: %w", socketPath, p.Name, err)
	}
	want := &appForward{kind: agent.ForwardLocal, targetPath: socketPath, bound: ep}
	if cur != nil {
		want.bound, want.notice = cur.bound, cur.notice
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 || cur == nil {
			ln, bound, notice, err := am.ports.Bind(fctx, ep)
			if err != nil {
				return SocketForward{}, fmt.Errorf("listen for %s of %s: %w", socketPath, p.Name, err)
			}
			_ = ln.Close()
			want.bound, want.notice = bound, notice
		}
		am.mu.Lock()
		next := make(map[string]*appForward, len(sa.sockets)+1)
		for k, v := range sa.sockets {
			next[k] = v
		}
		next[socketPath] = want
		ports := sa.forwards
		am.mu.Unlock()
		infos, err := l.SetForwards(fctx, am.specs(p, ports, next))
		info, found := findInfo(infos, want.id())
		if err != nil && !errors.Is(err, agent.ErrListen) && !isRemoteListenError(err) {
			return SocketForward{}, fmt.Errorf("set up the forward to %s of %s: %w", socketPath, p.Name, err)
		}
		if found && info.Addr != "" {
			am.mu.Lock()
			sa.sockets = next
			am.mu.Unlock()
			am.log.Info("forwarding a socket", "server", p.ID, "remote", socketPath, "local", info.Addr)
			if cur == nil && am.changed != nil {
				am.changed()
			}
			h := want.bound.IP.String()
			return SocketForward{Path: socketPath, LocalAddr: want.bound.String(), Hint: socketHint(kind, h, want.bound.Port), Notice: want.notice}, nil
		}
		if attempt >= 2 || ctx.Err() != nil {
			why := "the agent did not report it"
			if found {
				why = info.Error
			}
			return SocketForward{}, fmt.Errorf("cannot listen for %s of %s: %s", socketPath, p.Name, why)
		}
	}
}
