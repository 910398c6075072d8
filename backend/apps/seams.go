package apps

import "github.com/porthole-app/porthole/backend/discovery"

// Seams for tests of the application layer (backend/ui), which drive the
// apps through the facade and cannot reach this package's state.

// SetJupyterLookup replaces how OpenApp finds a Jupyter token; nil restores
// the default ((*discovery.Scanner).Jupyter).
func (am *Manager) SetJupyterLookup(f JupyterLookup) {
	if f == nil {
		f = (*discovery.Scanner).Jupyter
	}
	am.mu.Lock()
	am.jupyter = f
	am.mu.Unlock()
}

// NoteService records svc as found by the last listing of server id, as if
// discovery had listed it (for apps the listing hides, such as listeners of
// the test process itself). The server must have been listed or opened once.
func (am *Manager) NoteService(id string, svc discovery.Service) {
	am.mu.Lock()
	defer am.mu.Unlock()
	if sa := am.state[id]; sa != nil {
		sa.last = append(sa.last, svc)
	}
}

// SetProbeOnly restricts what listings (of servers and of This computer)
// show and probe to the listeners only accepts (Porthole's own stay
// hidden). Tests use it so that a listing never probes other tests'
// loopback listeners — a test SSH server on this machine lists this
// machine's sockets, and tests of other packages run in parallel and count
// their connections. Call it before the first listing.
func (am *Manager) SetProbeOnly(only func(discovery.Service) bool) {
	am.mu.Lock()
	am.probeOnly = only
	am.mu.Unlock()
}
