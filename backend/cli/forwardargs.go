// Package cli is the command-line syntax of `porthole forward`: ssh's flags
// (-L, -R, -D, -J, -i, -p, -o, -c, -v, -N…), parsed the way ssh parses them.
// It turns argv into ForwardArgs; it runs nothing.
package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ForwardArgs are `porthole forward`'s arguments. They mean what they mean to ssh.
type ForwardArgs struct {
	Locals      []string          // -L specs, unparsed (the forwarder parses and validates them)
	Dynamics    []string          // -D specs, unparsed
	Remotes     []string          // -R specs, unparsed
	Jump        string            // -J
	Identities  []string          // -i, in order
	Port        int               // -p, 0 = from config
	Options     map[string]string // -o Key=Value, keys lower-cased like ssh_config
	Cipher      string            // -c
	Verbose     bool              // -v
	Destination string            // [user@]host
}

var ErrForwardUsage = errors.New("usage: porthole forward [-L [bind:]port:host:hostport]... [-R [bind:]port:host:hostport]... [-D [bind:]port]... [-J jump] [-i key] [-p port] [-o Key=Value]... [-v] [user@]host")

// forwardFlagsWithValue are the ssh flags that take an argument, as ssh parses them.
const forwardFlagsWithValue = "LRDJipoc"

// forwardFlagsBool are accepted boolean flags: -N (no command; always true here),
// -v (verbose), -T, -n, -q (accepted for ssh compatibility, no effect).
const forwardFlagsBool = "NvTnq"

// ParseForwardArgs parses ssh-style arguments: flags may be grouped (-Nv), values
// attached (-L8080:localhost:80) or separate (-L 8080:localhost:80), and there is
// exactly one destination. A remote command is not supported.
func ParseForwardArgs(args []string) (ForwardArgs, error) {
	a := ForwardArgs{Options: map[string]string{}}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			rest := args[i+1:]
			if a.Destination == "" && len(rest) > 0 {
				a.Destination, rest = rest[0], rest[1:]
			}
			if len(rest) > 0 {
				return a, fmt.Errorf("forward runs no remote command (got %q): %w", strings.Join(rest, " "), ErrForwardUsage)
			}
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			if a.Destination != "" {
				return a, fmt.Errorf("forward runs no remote command (got %q after %q): %w", arg, a.Destination, ErrForwardUsage)
			}
			a.Destination = arg
			continue
		}
		if arg == "-h" || arg == "--help" {
			return a, ErrForwardUsage
		}
		flags := arg[1:]
		for j := 0; j < len(flags); j++ {
			c := flags[j]
			switch {
			case strings.IndexByte(forwardFlagsBool, c) >= 0:
				if c == 'v' {
					a.Verbose = true
				}
			case strings.IndexByte(forwardFlagsWithValue, c) >= 0:
				val := flags[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return a, fmt.Errorf("-%c needs a value: %w", c, ErrForwardUsage)
					}
					i++
					val = args[i]
				}
				if err := a.set(c, val); err != nil {
					return a, err
				}
				j = len(flags) // the value consumed the rest of this argument
			default:
				return a, fmt.Errorf("unknown flag -%c in %q: %w", c, arg, ErrForwardUsage)
			}
		}
	}
	if a.Destination == "" {
		return a, fmt.Errorf("no destination given: %w", ErrForwardUsage)
	}
	return a, nil // with no forward given, the config may have some (AddConfigForwards)
}

// AddConfigForwards adds the values of the destination's ssh_config
// LocalForward, RemoteForward and DynamicForward lines after the
// command-line forwards, as ssh does, each turned into the spec its flag
// takes (ConfigForwardSpec). With clearAll (ClearAllForwardings yes) the
// config's lines are dropped; the command-line ones stay (ssh drops those
// too, leaving a forward with nothing to do). It fails when there is no
// forward at all.
func (a *ForwardArgs) AddConfigForwards(local, remote, dynamic []string, clearAll bool) error {
	if !clearAll {
		for _, g := range []struct {
			keyword string
			lines   []string
			dst     *[]string
		}{{"LocalForward", local, &a.Locals}, {"RemoteForward", remote, &a.Remotes}, {"DynamicForward", dynamic, &a.Dynamics}} {
			for _, v := range g.lines {
				spec, err := ConfigForwardSpec(g.keyword, v)
				if err != nil {
					return err
				}
				*g.dst = append(*g.dst, spec)
			}
		}
	}
	if len(a.Locals) == 0 && len(a.Remotes) == 0 && len(a.Dynamics) == 0 {
		return fmt.Errorf("no -L, -R or -D forward given (nor LocalForward, RemoteForward or DynamicForward in ssh_config): %w", ErrForwardUsage)
	}
	return nil
}

// ConfigForwardSpec turns the value of an ssh_config forward line into the
// spec ssh's flag for it takes, as ssh reads the line (readconf.c):
//
//	LocalForward   [bind:]port host:hostport  →  -L [bind:]port:host:hostport
//	RemoteForward  [bind:]port host:hostport  →  -R [bind:]port:host:hostport
//	RemoteForward  [bind:]port                →  -R [bind:]port
//	DynamicForward [bind:]port                →  -D [bind:]port
//
// Unix socket paths and bracketed IPv6 addresses pass through as they are
// ("LocalForward /tmp/s host:80" → "/tmp/s:host:80"); the spec's own
// parser (the forwarder's) validates the result.
func ConfigForwardSpec(keyword, value string) (string, error) {
	f := strings.Fields(value)
	want := 2
	switch strings.ToLower(keyword) {
	case "localforward":
	case "remoteforward":
		if len(f) == 1 {
			want = 1 // a SOCKS proxy on the server; the -R parser decides
		}
	case "dynamicforward":
		want = 1
	default:
		return "", fmt.Errorf("%s is not an ssh_config forward keyword", keyword)
	}
	if len(f) != want {
		form := "[bind_address:]port host:hostport"
		if want == 1 {
			form = "[bind_address:]port"
		}
		return "", fmt.Errorf("ssh_config %s %q: want %s", keyword, strings.TrimSpace(value), form)
	}
	return strings.Join(f, ":"), nil
}

func (a *ForwardArgs) set(flag byte, val string) error {
	switch flag {
	case 'L':
		a.Locals = append(a.Locals, val)
	case 'D':
		a.Dynamics = append(a.Dynamics, val)
	case 'R':
		a.Remotes = append(a.Remotes, val)
	case 'J':
		a.Jump = val
	case 'i':
		a.Identities = append(a.Identities, val)
	case 'p':
		p, err := strconv.Atoi(val)
		if err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("-p %q: a port is a number from 1 to 65535: %w", val, ErrForwardUsage)
		}
		a.Port = p
	case 'c':
		a.Cipher = val
	case 'o':
		k, v, ok := strings.Cut(val, "=")
		if !ok {
			// ssh also accepts "Key Value".
			k, v, ok = strings.Cut(strings.TrimSpace(val), " ")
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return fmt.Errorf("-o %q: expected Key=Value, e.g. -o ConnectTimeout=10: %w", val, ErrForwardUsage)
		}
		a.Options[strings.ToLower(k)] = v
	}
	return nil
}
