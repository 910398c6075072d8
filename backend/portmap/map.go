package portmap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porthole-app/porthole/backend/atomicfile"
)

var (
	// ErrNotSaved: assignments are kept in memory for this run only,
	// because the endpoints file is damaged, newer, unreadable or cannot be
	// written. Every error from ReadOnly matches it.
	ErrNotSaved = errors.New("endpoints are not being saved")
	// ErrLocked: another process held the endpoints file lock for longer
	// than the lock timeout.
	ErrLocked = errors.New("the endpoints file is locked by another Porthole")
	// ErrNoFreePort: no local port could be found for an endpoint.
	ErrNoFreePort = errors.New("no free local port")
)

// DefaultLockTimeout bounds how long a change waits for another process's
// lock on the endpoints file.
const DefaultLockTimeout = 10 * time.Second

// maxFileSize bounds the endpoints file; a bigger one is refused as damaged.
const maxFileSize = 16 << 20

// DefaultPath is os.UserConfigDir()/porthole/endpoints.json.
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the configuration directory: %w", err)
	}
	return filepath.Join(dir, "porthole", "endpoints.json"), nil
}

// Option configures Open.
type Option func(*options)

type options struct {
	probe       func(netip.Addr) bool
	free        func(netip.Addr, int) bool
	listen      func(ctx context.Context, addr string) (net.Listener, error)
	lockTimeout time.Duration
	now         func() time.Time
}

// WithLoopbackProbe replaces the test that decides whether a loopback
// address other than 127.0.0.1 can be bound on this computer. It is called
// once by Open with 127.0.0.2 (false: SharedLoopback mode), and again with
// each address about to be given to a new login (false: that login uses
// 127.0.0.1 for now and is offered an address again next time). The default
// binds addr:0 and closes it.
func WithLoopbackProbe(probe func(addr netip.Addr) bool) Option {
	return func(o *options) { o.probe = probe }
}

// WithLockTimeout bounds the wait for another process's lock on the file
// (default DefaultLockTimeout).
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) { o.lockTimeout = d }
}

// Map is the persisted map (login ID, remote host, remote port) → local
// endpoint, plus login ID → loopback address. It is safe for concurrent use,
// and several processes may share one file: every change takes an advisory
// lock on <file>.lock, re-reads the file, applies the change and writes the
// file atomically (temporary file, fsync, rename; mode 0600). Lookups
// re-read the file when it changed on disk.
//
// Once assigned, an endpoint is returned for its key forever (however long
// the login stays unused) until Forget or ForgetLogin removes it. A login's
// address is never handed to another login, even after ForgetLogin, so a new
// server never inherits an old server's cookies.
//
// If the file is damaged (or newer, or cannot be read or written), the Map
// keeps working in memory: lookups and new assignments still succeed but are
// not saved, the file is never overwritten, and ReadOnly says why.
type Map struct {
	path     string
	lockPath string
	log      *slog.Logger
	opt      options
	mode     AddrMode
	shared   atomic.Bool // SetSharedLoopback: new endpoints use 127.0.0.1
	perApp   atomic.Bool // SetPerApp: each new endpoint gets an address of its own

	mu       sync.Mutex
	st       *state
	stamp    os.FileInfo // the file as last read or written; nil: none
	readOnly error       // non-nil: in-memory only
}

// Open reads the endpoints file at path ("" means DefaultPath) and probes
// once whether per-login loopback addresses work here. It always returns a
// usable *Map; the error, if any, is also returned by ReadOnly and matches
// ErrNotSaved:
//
//   - nil: the file was read, or does not exist yet (it is created on the
//     first assignment);
//   - a *FileError (errors.Is ErrCorrupt): the file could not be parsed; it
//     is left as it is, copied to <file>.corrupt-<UTC time>, and the map
//     starts empty in memory;
//   - ErrNewerVersion, or an I/O error: the map starts empty in memory too.
//
// log may be nil.
func Open(path string, log *slog.Logger, opts ...Option) (*Map, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := options{
		probe:       probeLoopback,
		free:        portFree,
		listen:      listenTCP,
		lockTimeout: DefaultLockTimeout,
		now:         time.Now,
	}
	for _, opt := range opts {
		opt(&o)
	}
	m := &Map{log: log, opt: o, st: newState(), mode: SharedLoopback}
	if o.probe(firstLoginAddr) {
		m.mode = PerLoginAddrs
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if path == "" {
		p, err := DefaultPath()
		if err != nil {
			m.setReadOnly(fmt.Errorf("%w: %w", ErrNotSaved, err))
			return m, m.readOnly
		}
		path = p
	}
	m.path = filepath.Clean(path)
	m.lockPath = m.path + ".lock"
	m.load()
	log.Debug("endpoints map opened", "path", m.path, "mode", m.mode, "endpoints", len(m.st.entries))
	return m, m.readOnly
}

// Path is the endpoints file.
func (m *Map) Path() string { return m.path }

// Mode says whether logins get their own loopback addresses here.
func (m *Map) Mode() AddrMode { return m.mode }

// SetSharedLoopback: on, new endpoints use 127.0.0.1 with distinct ports
// even where each login could have its own address (the user's "a loopback
// address per server" off); endpoints assigned before keep their address.
func (m *Map) SetSharedLoopback(on bool) { m.shared.Store(on) }

// SetPerApp: on, each new endpoint gets a loopback address of its own
// (127.N.A.1, in a block 127.N.0.0/16 of its login), so two apps of one
// server never share cookies (browsers scope cookies by host, not port);
// off, new endpoints use their login's address. It matters only in
// PerLoginAddrs mode while SetSharedLoopback is off. Endpoints assigned
// before keep their address either way, so nobody loses a login.
func (m *Map) SetPerApp(on bool) { m.perApp.Store(on) }

// PerApp says whether new endpoints get an address of their own: per-app
// addresses are on, this computer allows them, and shared is off.
func (m *Map) PerApp() bool {
	return m.mode == PerLoginAddrs && !m.shared.Load() && m.perApp.Load()
}

// ReadOnly is nil while assignments are saved. Otherwise it says why they
// are kept in memory for this run only; it matches ErrNotSaved and, as the
// case may be, ErrCorrupt (a *FileError), ErrNewerVersion or an I/O error.
func (m *Map) ReadOnly() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.readOnly
}

// Endpoint returns the local endpoint of remoteHost:remotePort on the server
// of loginID, assigning and saving one if there is none yet:
//
//   - its IP is an address of its own with SetPerApp on (127.N.A.1), else
//     the login's own loopback address in PerLoginAddrs mode (see
//     LoginAddr), 127.0.0.1 otherwise;
//   - its port is remotePort when that is 1024 or more, free on that IP,
//     and not assigned to another app; otherwise the first such port of a
//     sequence determined by (loginID, canonical remoteHost, remotePort): a
//     hash picks a start in 20000–29999 and the sequence walks up from it,
//     wrapping around. The same inputs give the same port wherever it is free.
//
// remoteHost is canonicalised (see CanonicalHost), so "localhost",
// "127.0.0.1" and "::1" name the same app. Endpoint does not bind the
// endpoint: use Bind, which copes with a port taken since.
func (m *Map) Endpoint(ctx context.Context, loginID, remoteHost string, remotePort int) (Endpoint, error) {
	k, err := makeKey(loginID, remoteHost, remotePort)
	if err != nil {
		return Endpoint{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refresh()
	if ep, ok := m.st.entries[k]; ok {
		return ep, nil
	}
	var ep Endpoint
	assigned := false
	err = m.mutate(ctx, func(st *state) error {
		if e, ok := st.entries[k]; ok { // another process assigned it meanwhile
			ep = e
			return nil
		}
		addr := m.assignAddr(st, k)
		port, err := m.pickPort(ctx, st, addr, k)
		if err != nil {
			return err
		}
		ep, assigned = Endpoint{IP: addr, Port: port}, true
		st.entries[k] = ep
		return nil
	})
	if err != nil {
		return Endpoint{}, fmt.Errorf("assigning a local endpoint to %s:%d: %w", k.host, k.port, err)
	}
	if assigned {
		m.log.Info("local endpoint assigned", "login", k.login, "remote", net.JoinHostPort(k.host, fmt.Sprint(k.port)),
			"local", ep.String(), "saved", m.readOnly == nil)
	}
	return ep, nil
}

// LoginAddr returns the loopback address of loginID's endpoints: its own
// address in PerLoginAddrs mode (assigned and saved on first use: the first
// login gets 127.0.0.2, the next 127.0.0.3, and so on; never 127.0.0.1), or
// 127.0.0.1 in SharedLoopback mode.
func (m *Map) LoginAddr(ctx context.Context, loginID string) (netip.Addr, error) {
	if err := validateLoginID(loginID); err != nil {
		return netip.Addr{}, err
	}
	if m.mode != PerLoginAddrs || m.shared.Load() {
		return loopback1, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refresh()
	if a, ok := m.st.logins[loginID]; ok {
		return a, nil
	}
	var a netip.Addr
	err := m.mutate(ctx, func(st *state) error {
		a = m.assignLoginAddr(st, loginID)
		return nil
	})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("assigning a loopback address to login %q: %w", loginID, err)
	}
	return a, nil
}

// Forget removes the endpoint of remoteHost:remotePort of loginID (nothing
// happens if there is none). A later Endpoint call assigns it afresh.
func (m *Map) Forget(ctx context.Context, loginID, remoteHost string, remotePort int) error {
	k, err := makeKey(loginID, remoteHost, remotePort)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.mutate(ctx, func(st *state) error {
		delete(st.entries, k)
		return nil
	}); err != nil {
		return fmt.Errorf("forgetting the endpoint of %s:%d: %w", k.host, k.port, err)
	}
	return nil
}

// ForgetLogin removes every endpoint of loginID and its address. The
// address is not handed to any other login afterwards.
func (m *Map) ForgetLogin(ctx context.Context, loginID string) error {
	if err := validateLoginID(loginID); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.mutate(ctx, func(st *state) error {
		delete(st.logins, loginID)
		delete(st.nets, loginID)
		delete(st.lastApp, loginID)
		for k := range st.entries {
			if k.login == loginID {
				delete(st.entries, k)
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("forgetting the endpoints of login %q: %w", loginID, err)
	}
	return nil
}

// List returns the assignments of loginID ("" means every login), sorted by
// login, remote host and remote port.
func (m *Map) List(loginID string) []Assignment {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refresh()
	var out []Assignment
	for k, e := range m.st.entries {
		if loginID == "" || k.login == loginID {
			out = append(out, Assignment{LoginID: k.login, RemoteHost: k.host, RemotePort: k.port, Local: e})
		}
	}
	slices.SortFunc(out, func(a, b Assignment) int {
		if c := strings.Compare(a.LoginID, b.LoginID); c != 0 {
			return c
		}
		if c := strings.Compare(a.RemoteHost, b.RemoteHost); c != 0 {
			return c
		}
		return a.RemotePort - b.RemotePort
	})
	return out
}

// Reload re-reads the file. After the user fixed or removed a damaged file,
// this leaves the in-memory mode: the file's assignments win, and those made
// in memory meanwhile are added and saved where they do not clash (same
// key, same local endpoint, or an address that belongs to another login in
// the file). It returns what ReadOnly returns afterwards.
func (m *Map) Reload(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.path == "" {
		return m.readOnly
	}
	prev := m.st
	wasReadOnly := m.readOnly != nil
	m.readOnly = nil
	m.load()
	if m.readOnly != nil {
		m.st = prev
		return m.readOnly
	}
	if !wasReadOnly {
		return nil
	}
	if err := m.mutate(ctx, func(st *state) error {
		mergeInto(st, prev)
		return nil
	}); err != nil {
		return fmt.Errorf("saving the endpoints assigned while the file was unusable: %w", err)
	}
	if m.readOnly == nil {
		m.log.Info("endpoints file usable again; saving assignments", "path", m.path)
	}
	return m.readOnly
}

// mergeInto adds prev's logins and endpoints to st where they do not clash.
func mergeInto(st, prev *state) {
	fileLast := st.lastAddr
	for id, a := range prev.logins {
		if _, ok := st.logins[id]; ok {
			continue
		}
		if _, taken := st.addrOwner(a); taken || (fileLast.IsValid() && a.Compare(fileLast) <= 0) {
			continue // maybe a forgotten login's address: never reuse it
		}
		st.logins[id] = a
		if !st.lastAddr.IsValid() || a.Compare(st.lastAddr) > 0 {
			st.lastAddr = a
		}
	}
	fileNet := st.lastNet
	for id, n := range prev.nets {
		if _, ok := st.nets[id]; ok {
			continue
		}
		if _, taken := st.netOwner(n); taken || n <= fileNet {
			continue // maybe a forgotten login's block: never reuse it
		}
		st.nets[id] = n
		if a, ok := prev.lastApp[id]; ok {
			st.lastApp[id] = a
		}
		st.lastNet = max(st.lastNet, n)
	}
	for k, e := range prev.entries {
		if _, ok := st.entries[k]; ok {
			continue
		}
		if _, used := st.localUser(e); used {
			continue
		}
		owner, owned := st.addrOwner(e.IP)
		if !owned && e.IP.Is4() {
			owner, owned = st.netOwner(netOf(e.IP))
		}
		if owned && owner != k.login || !owned && e.IP != loopback1 {
			continue
		}
		st.entries[k] = e
	}
}

// setReadOnly switches to in-memory mode (mu held).
func (m *Map) setReadOnly(err error) {
	m.readOnly = err
	m.log.Warn("endpoints are kept in memory for this run only", "err", err)
}

// load reads the file into m.st (mu held). A damaged file switches to
// in-memory mode and keeps the current m.st.
func (m *Map) load() {
	data, fi, err := readFile(m.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		m.st, m.stamp = newState(), nil
		return
	case err != nil:
		m.setReadOnly(fmt.Errorf("%w: reading %s: %w", ErrNotSaved, m.path, err))
		return
	}
	st, err := parse(data)
	if err != nil {
		m.setReadOnly(m.fileProblem(data, err))
		return
	}
	m.st, m.stamp = st, fi
}

// fileProblem describes a parse failure; a damaged file is backed up.
func (m *Map) fileProblem(data []byte, err error) error {
	var pe *parseError
	if !errors.As(err, &pe) {
		return fmt.Errorf("%w: %s: %w", ErrNotSaved, m.path, err)
	}
	line, col := lineCol(data, pe.offset)
	fe := &FileError{Path: m.path, Line: line, Column: col, Problem: pe.msg}
	backup, berr := atomicfile.BackupCorrupt(m.path, data, m.opt.now())
	if berr != nil {
		m.log.Warn("could not copy the damaged endpoints file", "err", berr)
	}
	fe.Backup = backup
	return fe
}

func readFile(path string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > maxFileSize {
		return nil, nil, fmt.Errorf("%s is larger than %d MiB; move it away", path, maxFileSize>>20)
	}
	return data, fi, nil
}

// refresh re-reads the file if it changed on disk since it was last read
// or written (mu held).
func (m *Map) refresh() {
	if m.readOnly != nil {
		return
	}
	fi, err := os.Stat(m.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if m.stamp != nil { // removed by the user
			m.st, m.stamp = newState(), nil
		}
		return
	case err != nil:
		return // keep what we have; a change will report the problem
	case m.stamp != nil && os.SameFile(fi, m.stamp) && fi.ModTime().Equal(m.stamp.ModTime()) && fi.Size() == m.stamp.Size():
		return
	}
	m.load()
}

// mutate applies fn to the current state and saves the result (mu held):
// under the file lock, the file is re-read first, so changes by other
// processes are kept. In in-memory mode fn changes m.st directly. A failure
// to lock or write switches to in-memory mode rather than failing, except
// when another process holds the lock too long (ErrLocked) or ctx ends.
func (m *Map) mutate(ctx context.Context, fn func(st *state) error) error {
	if m.readOnly != nil {
		return fn(m.st)
	}
	unlock, err := m.lockFile(ctx)
	if err != nil {
		if errors.Is(err, ErrLocked) || ctx.Err() != nil {
			return err
		}
		m.setReadOnly(fmt.Errorf("%w: %w", ErrNotSaved, err))
		return fn(m.st)
	}
	defer unlock()
	m.load()
	if m.readOnly != nil {
		return fn(m.st)
	}
	next := m.st.clone()
	if err := fn(next); err != nil {
		return err
	}
	if next.equal(m.st) {
		return nil
	}
	m.st = next
	if err := atomicfile.WriteFile(m.path, encode(next), 0o600); err != nil {
		m.setReadOnly(fmt.Errorf("%w: saving %s: %w", ErrNotSaved, m.path, err))
		return nil
	}
	if fi, err := os.Stat(m.path); err == nil {
		m.stamp = fi
	}
	return nil
}

// lockFile takes the advisory lock on <file>.lock, waiting up to the lock
// timeout. The lock file is never removed (removing it would let two
// processes lock two different files).
func (m *Map) lockFile(ctx context.Context) (unlock func(), err error) {
	l, err := atomicfile.Lock(ctx, m.lockPath, m.opt.lockTimeout)
	if errors.Is(err, atomicfile.ErrLocked) {
		return nil, fmt.Errorf("%w: %s has been locked for over %s; try again, or quit the other Porthole",
			ErrLocked, m.lockPath, m.opt.lockTimeout)
	}
	if err != nil {
		return nil, err
	}
	return func() { _ = l.Unlock() }, nil
}
