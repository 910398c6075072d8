package leaks

import (
	"fmt"
	"time"
)

// Orphan says whether the program that started a tunnel is still around.
//
// A tunnel is leaked (Orphan.Leaked) when nothing that started it is left to
// end it: its parent is init (PID 1), or a subreaper that adopts orphans
// (systemd --user, tini, …), or the parent's PID now belongs to a process
// that started after the tunnel did (the original parent exited and the PID
// was reused). A tunnel whose parent is the live program that started it
// (a shell, a terminal, autossh, a script) is attached, not leaked.
type Orphan int

const (
	Attached     Orphan = iota // its parent is the running program that started it
	ParentInit                 // reparented to init (PID 1): its parent exited
	ParentReaper               // reparented to a subreaper (systemd --user, tini…): its parent exited
	ParentGone                 // its parent exited (no such process, or the PID was reused)
)

func (o Orphan) String() string {
	switch o {
	case Attached:
		return "attached"
	case ParentInit:
		return "parent-init"
	case ParentReaper:
		return "parent-subreaper"
	case ParentGone:
		return "parent-gone"
	}
	return fmt.Sprintf("Orphan(%d)", int(o))
}

// MarshalText makes an Orphan appear as its name in JSON.
func (o Orphan) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// Leaked: no program that started the tunnel is left to end it.
func (o Orphan) Leaked() bool { return o != Attached }

// Parent is what is known of a process's parent.
type Parent struct {
	PID     int32     `json:"pid"`
	Name    string    `json:"name,omitempty"`
	Started time.Time `json:"started,omitzero"` // zero: unknown
	Exists  bool      `json:"exists"`
}

// subreapers are programs that adopt their orphaned descendants
// (PR_SET_CHILD_SUBREAPER) instead of init; Linux does not show the flag in
// /proc, so they are known by name.
var subreapers = map[string]bool{
	"systemd":     true, // systemd --user (PID 1's systemd is ParentInit)
	"tini":        true,
	"dumb-init":   true,
	"docker-init": true,
	"catatonit":   true,
	"s6-svscan":   true,
}

// ClassifyParent applies the rules of Orphan to a process that started at
// started and whose parent is p. why says it in plain words.
func ClassifyParent(started time.Time, p Parent) (o Orphan, why string) {
	switch {
	case p.PID <= 1:
		return ParentInit, "the program that started it has exited: its parent is now init (PID 1)"
	case !p.Exists:
		return ParentGone, fmt.Sprintf("its parent (PID %d) has exited", p.PID)
	case !p.Started.IsZero() && !started.IsZero() && p.Started.After(started):
		return ParentGone, fmt.Sprintf("the program that started it has exited: PID %d now belongs to %s, which started later", p.PID, nameOr(p.Name))
	case subreapers[p.Name]:
		return ParentReaper, fmt.Sprintf("the program that started it has exited: %s (PID %d) adopted it", p.Name, p.PID)
	}
	return Attached, fmt.Sprintf("started by %s (PID %d), which is still running", nameOr(p.Name), p.PID)
}

func nameOr(n string) string {
	if n == "" {
		return "another process"
	}
	return n
}
