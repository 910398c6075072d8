// Package leaks is the leaked-tunnel finder: it lists this user's OpenSSH
// ssh and autossh processes that hold -L/-R/-D forwards, says what each
// exposes, to whom, and whether the program that started it is gone; it
// ends one (SIGTERM, then SIGKILL) or adopts it: the same forward made in
// Porthole on the same local port, after the ssh is ended.
package leaks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	gnet "github.com/shirou/gopsutil/v4/net"
	"github.com/shirou/gopsutil/v4/process"

	"github.com/porthole-app/porthole/backend/apperr"
)

// Forward is one forward of a tunnel, in plain words.
type Forward struct {
	Kind ForwardKind `json:"kind"`
	// Spec is the forward as on the command line ("127.0.0.1:8080:localhost:80");
	// "" for a listener the command line does not name (ssh_config's
	// LocalForward, autossh's monitor port).
	Spec       string `json:"spec"`
	BindHost   string `json:"bindHost"` // as written: "" loopback, "*" every interface
	Port       int    `json:"port"`     // the listening port (here for -L/-D, on the server for -R)
	TargetHost string `json:"targetHost,omitempty"`
	TargetPort int    `json:"targetPort,omitempty"`
	// Listeners are the process's own listening sockets on Port (-L/-D).
	Listeners []string `json:"listeners"`
	// Exposes is what it exposes on which port, e.g.
	// "127.0.0.1:8080 → localhost:80, as seen from web1".
	Exposes string `json:"exposes"`
	// Who says who can connect, in plain words.
	Who   string `json:"who"`
	Reach Reach  `json:"reach"`
	// Socket: one end is a Unix socket (shown, not adopted: Porthole's
	// rules are TCP).
	Socket bool   `json:"socket,omitempty"`
	Error  string `json:"error,omitempty"` // the spec could not be read
}

// Tunnel is one ssh or autossh process with forwards.
type Tunnel struct {
	PID     int32   `json:"pid"`
	Program Program `json:"program"`
	// SSHPID is autossh's ssh child (which holds the sockets); 0 for ssh.
	SSHPID      int32     `json:"sshPid,omitempty"`
	Cmdline     string    `json:"cmdline"`
	Destination string    `json:"destination"`
	Started     time.Time `json:"started,omitzero"`
	Parent      Parent    `json:"parent"`
	Orphan      Orphan    `json:"orphan"`
	// Leaked: the program that started it is gone (see Orphan).
	Leaked    bool      `json:"leaked"`
	OrphanWhy string    `json:"orphanWhy"`
	Forwards  []Forward `json:"forwards"`
	// OtherUsers: some forward accepts other users' connections (always,
	// with OpenSSH); OtherMachines: some forward accepts other machines'.
	OtherUsers    bool   `json:"otherUsers"`
	OtherMachines bool   `json:"otherMachines"`
	Summary       string `json:"summary"` // one plain sentence
	// ParseError: the command line could not be read (e.g. a ControlMaster
	// that renamed itself); the forwards are its listening sockets only.
	ParseError string `json:"parseError,omitempty"`
	// Adoptable: Porthole can take its forwards over (AdoptTunnelProcess).
	Adoptable bool `json:"adoptable"`

	cmd Command // the parsed command line
}

// TunnelList is what ListLeakedTunnels returns: every tunnel of this user,
// the leaked ones first.
type TunnelList struct {
	Tunnels []Tunnel `json:"tunnels"`
	Leaked  int      `json:"leaked"`
}

var (
	// ErrNoProcess: no such process (it may have ended).
	ErrNoProcess = errors.New("no such process")
	// ErrNotYours: the process belongs to another user; Porthole ends and
	// adopts only the user's own.
	ErrNotYours = errors.New("the process belongs to another user")
	// ErrNotTunnel: the process is not ssh or autossh.
	ErrNotTunnel = errors.New("the process is not ssh or autossh")
	// ErrNotAdoptable: Porthole cannot make the tunnel's forwards.
	ErrNotAdoptable = errors.New("the tunnel cannot be adopted")
	// ErrStillRunning: the process outlived SIGKILL's wait.
	ErrStillRunning = errors.New("the process did not end")
)

// Finder finds, ends and adopts tunnels.
type Finder struct {
	log     *slog.Logger
	uid     int
	servers Servers // nil: adopting is unavailable
	rules   Rules
	// termWait is how long End waits after SIGTERM before SIGKILL.
	termWait time.Duration
}

// Options configure a Finder.
type Options struct {
	Log *slog.Logger // nil: discard
	// Servers and Rules make adoption possible (nil: Adopt is unavailable).
	Servers Servers
	Rules   Rules
}

// New returns a Finder for the current user.
func New(o Options) *Finder {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Finder{log: log.With("component", "leaks"), uid: os.Getuid(), servers: o.Servers, rules: o.Rules, termWait: 3 * time.Second}
}

// proc is what List reads of one process.
type proc struct {
	pid     int32
	ppid    int32
	name    string
	argv    []string
	started time.Time
	prog    Program
}

// List lists this user's ssh and autossh processes that hold forwards.
func (f *Finder) List(ctx context.Context) (TunnelList, error) {
	procs, err := process.ProcessesWithContext(ctx)
	if err != nil {
		return TunnelList{}, fmt.Errorf("list the processes: %w", err)
	}
	var mine []proc
	for _, p := range procs {
		pr, ok := f.readTunnelProc(ctx, p)
		if ok {
			mine = append(mine, pr)
		}
	}
	// autossh's ssh children are part of their autossh's tunnel.
	autossh := map[int32]bool{}
	for _, p := range mine {
		if p.prog == ProgramAutossh {
			autossh[p.pid] = true
		}
	}
	child := map[int32]int32{}
	for _, p := range mine {
		if p.prog == ProgramSSH && autossh[p.ppid] {
			child[p.ppid] = p.pid
		}
	}
	out := TunnelList{Tunnels: []Tunnel{}}
	for _, p := range mine {
		if p.prog == ProgramSSH && autossh[p.ppid] {
			continue
		}
		t, ok := f.tunnel(ctx, p, child[p.pid])
		if !ok {
			continue
		}
		out.Tunnels = append(out.Tunnels, t)
		if t.Leaked {
			out.Leaked++
		}
	}
	slices.SortStableFunc(out.Tunnels, func(a, b Tunnel) int {
		if a.Leaked != b.Leaked {
			if a.Leaked {
				return -1
			}
			return 1
		}
		return int(a.PID - b.PID)
	})
	return out, nil
}

// readTunnelProc reads p when it is this user's live ssh or autossh.
func (f *Finder) readTunnelProc(ctx context.Context, p *process.Process) (proc, bool) {
	name, err := p.NameWithContext(ctx)
	if err != nil || (name != "ssh" && name != "autossh") {
		return proc{}, false
	}
	if uid, ok := realUID(ctx, p); !ok || uid != f.uid {
		return proc{}, false
	}
	if isZombie(ctx, p) {
		return proc{}, false
	}
	argv, _ := p.CmdlineSliceWithContext(ctx)
	a0 := ""
	if len(argv) > 0 {
		a0 = argv[0]
	}
	prog, ok := programOf(name, a0)
	if !ok {
		return proc{}, false
	}
	ppid, _ := p.PpidWithContext(ctx)
	pr := proc{pid: p.Pid, ppid: ppid, name: name, argv: argv, prog: prog}
	if ms, err := p.CreateTimeWithContext(ctx); err == nil {
		pr.started = time.UnixMilli(ms)
	}
	return pr, true
}

func realUID(ctx context.Context, p *process.Process) (int, bool) {
	uids, err := p.UidsWithContext(ctx)
	if err != nil || len(uids) == 0 {
		return 0, false
	}
	return int(uids[0]), true
}

func isZombie(ctx context.Context, p *process.Process) bool {
	st, err := p.StatusWithContext(ctx)
	return err == nil && slices.Contains(st, process.Zombie)
}

// tunnel describes p; ok is false when it holds no forward.
func (f *Finder) tunnel(ctx context.Context, p proc, sshChild int32) (Tunnel, bool) {
	t := Tunnel{PID: p.pid, Program: p.prog, SSHPID: sshChild, Cmdline: strings.Join(p.argv, " "), Started: p.started}
	t.Parent = parentOf(ctx, p.ppid)
	t.Orphan, t.OrphanWhy = ClassifyParent(p.started, t.Parent)
	t.Leaked = t.Orphan.Leaked()

	holder := p.pid
	if sshChild != 0 {
		holder = sshChild
	}
	listening := listeners(ctx, holder)

	cmd, err := ParseCommandLine(p.argv)
	server := "the server"
	if err != nil {
		t.ParseError = err.Error()
	} else {
		t.Destination, t.cmd = cmd.Destination, cmd
		server = cmd.Host
	}
	used := map[int]bool{}
	for _, af := range cmd.Forwards {
		fw := Forward{Kind: af.Kind, Spec: af.Spec, BindHost: af.Bind, Port: af.Port, TargetHost: af.TargetHost, TargetPort: af.TargetPort, Listeners: []string{},
			Socket: af.BindPath != "" || af.TargetPath != "", Error: af.Err}
		if af.Err != "" {
			fw.Exposes = af.Kind.Flag() + " " + af.Spec
			fw.Who = "Porthole cannot read this forward; it may accept other users' connections."
			t.Forwards = append(t.Forwards, fw)
			continue
		}
		if af.Kind != ForwardRemote && af.BindPath == "" {
			fw.Listeners = append(fw.Listeners, listening[af.Port]...)
			used[af.Port] = true
		}
		fw.Exposes, fw.Who, fw.Reach = describe(af, cmd.GatewayPorts, server, fw.Listeners)
		t.Forwards = append(t.Forwards, fw)
	}
	ports := make([]int, 0, len(listening))
	for port := range listening {
		if !used[port] {
			ports = append(ports, port)
		}
	}
	slices.Sort(ports)
	for _, port := range ports {
		fw := Forward{Kind: ForwardLocal, Port: port, Listeners: listening[port]}
		fw.Exposes, fw.Who, fw.Reach = describe(ArgForward{Kind: ForwardLocal, Port: port}, false, server, fw.Listeners)
		t.Forwards = append(t.Forwards, fw)
	}
	if len(t.Forwards) == 0 {
		return Tunnel{}, false
	}
	t.Adoptable = err == nil && t.ParseError == ""
	for _, fw := range t.Forwards {
		t.OtherUsers = true
		if fw.Reach == ReachNetwork || fw.Reach == ReachServerNetwork {
			t.OtherMachines = true
		}
		if fw.Spec == "" || fw.Error != "" || fw.Socket {
			t.Adoptable = false
		}
	}
	t.Summary = summary(t, server)
	return t, true
}

func summary(t Tunnel, server string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (PID %d) to %s: ", t.Program, t.PID, server)
	if t.Leaked {
		b.WriteString("leaked — " + t.OrphanWhy + ". ")
	} else {
		b.WriteString(t.OrphanWhy + ". ")
	}
	switch {
	case t.OtherMachines:
		b.WriteString("Other users of this computer can connect to it, and so can other machines.")
	case t.OtherUsers:
		b.WriteString("Other users can connect to it (ssh does not check who connects); other machines cannot.")
	}
	return b.String()
}

func parentOf(ctx context.Context, ppid int32) Parent {
	par := Parent{PID: ppid}
	if ppid <= 0 {
		return par
	}
	p, err := process.NewProcessWithContext(ctx, ppid)
	if err != nil {
		return par
	}
	par.Exists = true
	if isZombie(ctx, p) {
		par.Exists = false
	}
	par.Name, _ = p.NameWithContext(ctx)
	if ms, err := p.CreateTimeWithContext(ctx); err == nil {
		par.Started = time.UnixMilli(ms)
	}
	return par
}

// listeners are pid's listening TCP sockets by port.
func listeners(ctx context.Context, pid int32) map[int][]string {
	out := map[int][]string{}
	conns, err := gnet.ConnectionsPidWithContext(ctx, "tcp", pid)
	if err != nil {
		return out
	}
	for _, c := range conns {
		if c.Status != "LISTEN" {
			continue
		}
		a := net.JoinHostPort(c.Laddr.IP, strconv.Itoa(int(c.Laddr.Port)))
		if !slices.Contains(out[int(c.Laddr.Port)], a) {
			out[int(c.Laddr.Port)] = append(out[int(c.Laddr.Port)], a)
		}
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

// mark gives err an apperr kind for the UI.
func mark(err error, kind error) error { return apperr.Mark(err, kind) }
