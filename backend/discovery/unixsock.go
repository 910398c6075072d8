package discovery

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// SocketKind is what a Unix socket on a server was recognised as, by its
// well-known path or name.
type SocketKind int

const (
	// SocketOther is any other socket (the user's own, in their runtime
	// directory, or in a directory Options.SocketDirs names).
	SocketOther SocketKind = iota
	SocketDocker
	SocketPostgres
	SocketMySQL
	socketKindCount
)

var socketKinds = [socketKindCount]struct{ id, name string }{
	SocketOther:    {"socket", "Unix socket"},
	SocketDocker:   {"docker", "Docker"},
	SocketPostgres: {"postgres", "PostgreSQL"},
	SocketMySQL:    {"mysql", "MySQL"},
}

// String is the kind's stable identifier ("docker").
func (k SocketKind) String() string {
	if k >= 0 && k < socketKindCount {
		return socketKinds[k].id
	}
	return fmt.Sprintf("SocketKind(%d)", int(k))
}

// DisplayName is the kind for people ("Docker").
func (k SocketKind) DisplayName() string {
	if k >= 0 && k < socketKindCount {
		return socketKinds[k].name
	}
	return k.String()
}

// MarshalText writes the identifier.
func (k SocketKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses an identifier.
func (k *SocketKind) UnmarshalText(b []byte) error {
	for i, s := range socketKinds {
		if s.id == string(b) {
			*k = SocketKind(i)
			return nil
		}
	}
	return fmt.Errorf("unknown socket kind %q", b)
}

// ParseSocketKind parses an identifier.
func ParseSocketKind(s string) (SocketKind, error) {
	var k SocketKind
	err := k.UnmarshalText([]byte(s))
	return k, err
}

// Socket is a Unix socket on a server that the login may use (it exists
// and the login user may read and write it; nothing connected to it).
type Socket struct {
	Path string     `json:"path"`
	Kind SocketKind `json:"kind"`
	// Port is the port in a PostgreSQL socket's name (.s.PGSQL.5432); 0
	// otherwise.
	Port int `json:"port,omitempty"`
}

// Title is e.g. "Docker — /var/run/docker.sock".
func (s Socket) Title() string { return s.Kind.DisplayName() + " — " + s.Path }

// KindOfSocketPath recognises a socket by its file name.
func KindOfSocketPath(p string) SocketKind {
	switch b := path.Base(p); {
	case b == "docker.sock":
		return SocketDocker
	case strings.HasPrefix(b, ".s.PGSQL."):
		return SocketPostgres
	case b == "mysqld.sock" || b == "mysql.sock":
		return SocketMySQL
	}
	return SocketOther
}

// parseSocketRecord parses an X record: "<kind>\t<path>".
func parseSocketRecord(rest string) (Socket, error) {
	kind, p, ok := strings.Cut(rest, "\t")
	if !ok || !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\t\x00") {
		return Socket{}, errors.New("bad socket record")
	}
	k, err := ParseSocketKind(kind)
	if err != nil {
		return Socket{}, err
	}
	s := Socket{Path: p, Kind: k}
	if k == SocketPostgres {
		if n, err := strconv.Atoi(strings.TrimPrefix(path.Base(p), ".s.PGSQL.")); err == nil && n > 0 && n <= 65535 {
			s.Port = n
		}
	}
	return s, nil
}
