// Package guard decides who may use a local listener. Porthole's listeners bind
// to loopback, where every local user could connect; guard refuses connections
// whose peer socket belongs to another OS user, so no other user can ride a tunnel.
package guard

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
)

// ErrOtherUser means the connecting socket belongs to another OS user.
var ErrOtherUser = errors.New("connection from another OS user refused")

// ErrUnknownPeer means the owner of the connecting socket could not be found.
var ErrUnknownPeer = errors.New("owner of the connecting socket is unknown")

// SameUser allows loopback connections only from sockets owned by this process's
// user (and root's, which can bypass any local check anyway). Connections from
// other hosts reach a listener only when the user bound it to a non-loopback
// address on purpose; those are allowed. Connections to a Unix socket are
// checked the same way, by the peer's credentials (SO_PEERCRED on Linux).
type SameUser struct {
	UID    int // the allowed user; NewSameUser sets os.Getuid()
	Logger *slog.Logger
}

// NewSameUser returns the policy for the current user.
func NewSameUser(log *slog.Logger) *SameUser {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SameUser{UID: os.Getuid(), Logger: log}
}

// Allow returns nil when conn may be served.
func (g *SameUser) Allow(conn net.Conn) error {
	if uc, ok := conn.(*net.UnixConn); ok {
		return g.allowUnix(uc)
	}
	local, ok1 := conn.LocalAddr().(*net.TCPAddr)
	remote, ok2 := conn.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return nil // neither TCP nor a Unix socket
	}
	if !remote.IP.IsLoopback() {
		return nil
	}
	uid, err := peerUID(local, remote)
	if errors.Is(err, errUnsupported) {
		return nil
	}
	if err != nil {
		g.Logger.Warn("refused a local connection whose owner is unknown", "peer", remote.String(), "err", err)
		return fmt.Errorf("%w: %s: %w", ErrUnknownPeer, remote, err)
	}
	if uid != uint32(g.UID) && uid != 0 {
		g.Logger.Warn("refused a local connection from another user", "peer", remote.String(), "uid", uid)
		return fmt.Errorf("%w (uid %d, from %s)", ErrOtherUser, uid, remote)
	}
	return nil
}

var errUnsupported = errors.New("peer lookup not supported on this OS")

// allowUnix checks the user of the process at the other end of a Unix
// socket connection (its credentials as of connect).
func (g *SameUser) allowUnix(c *net.UnixConn) error {
	where := "a Unix socket"
	if a := c.LocalAddr(); a != nil && a.String() != "" {
		where = a.String()
	}
	uid, err := unixPeerUID(c)
	if errors.Is(err, errUnsupported) {
		return nil // the socket's mode (0600) still keeps other users out
	}
	if err != nil {
		g.Logger.Warn("refused a local connection whose owner is unknown", "socket", where, "err", err)
		return fmt.Errorf("%w: %s: %w", ErrUnknownPeer, where, err)
	}
	if uid != uint32(g.UID) && uid != 0 {
		g.Logger.Warn("refused a local connection from another user", "socket", where, "uid", uid)
		return fmt.Errorf("%w (uid %d, on %s)", ErrOtherUser, uid, where)
	}
	return nil
}
