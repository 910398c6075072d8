package ui

import "github.com/porthole-app/porthole/backend/leaks"

// --- leaked tunnels (backend/leaks) ---

// ListLeakedTunnels lists your ssh and autossh processes that hold -L/-R/-D
// forwards: what each exposes, to whom, and whether it is leaked (the
// program that started it is gone); the leaked ones first.
func (a *App) ListLeakedTunnels() (leaks.TunnelList, error) { return a.leaks.List(a.context()) }

// EndTunnelProcess ends one of your ssh or autossh processes (SIGTERM, then
// SIGKILL); another user's process is refused.
func (a *App) EndTunnelProcess(pid int) (leaks.Ended, error) { return a.leaks.End(a.context(), pid) }

// AdoptTunnelProcess takes a tunnel over: its forwards become rules of the
// host's profile (made from ~/.ssh/config if there is none), the ssh is
// ended, and Porthole listens on the same ports.
func (a *App) AdoptTunnelProcess(pid int) (leaks.Adopted, error) {
	return a.leaks.Adopt(a.context(), pid)
}
