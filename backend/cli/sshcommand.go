package cli

import (
	"errors"
	"fmt"
	"strings"
)

// SSHCommand is a whole OpenSSH `ssh` command line as ssh reads it: every
// flag ssh knows, and a remote command. It is how Porthole reads the argv of
// ssh processes it did not start (the leaked-tunnel finder); ForwardArgs
// holds what `porthole forward` also understands.
type SSHCommand struct {
	ForwardArgs
	Login        string   // -l
	ConfigFile   string   // -F
	GatewayPorts bool     // -g: local listeners accept other machines
	Background   bool     // -f
	NoCommand    bool     // -N
	Command      []string // the remote command, if any
}

// ErrSSHArgv means argv is not an ssh command line ssh itself would accept.
var ErrSSHArgv = errors.New("not an ssh command line")

// sshFlagsWithValue and sshFlagsBool are OpenSSH 9's getopt string, split.
const (
	sshFlagsWithValue = "bceilmopBDEFIJLOPQRSWw"
	sshFlagsBool      = "1246afgknqstvxyACGKMNTVXY"
)

// ParseSSHCommand parses argv[1:] of an ssh process the way ssh's own
// getopt does: flags (grouped or with attached values) up to the
// destination, flags again right after it, then the remote command. Unlike
// ParseForwardArgs it accepts every ssh flag, a remote command and a
// command line without forwards; it fails only where ssh would.
func ParseSSHCommand(args []string) (SSHCommand, error) {
	c := SSHCommand{ForwardArgs: ForwardArgs{Options: map[string]string{}}}
	terminated := false
	i := 0
	for i < len(args) {
		arg := args[i]
		if terminated || !strings.HasPrefix(arg, "-") || arg == "-" {
			if c.Destination != "" {
				break // the remote command starts here
			}
			c.Destination = arg
			i++
			continue
		}
		if arg == "--" {
			terminated = true
			i++
			continue
		}
		flags := arg[1:]
		for j := 0; j < len(flags); j++ {
			f := flags[j]
			switch {
			case strings.IndexByte(sshFlagsBool, f) >= 0:
				switch f {
				case 'v':
					c.Verbose = true
				case 'g':
					c.GatewayPorts = true
				case 'f':
					c.Background = true
				case 'N':
					c.NoCommand = true
				}
			case strings.IndexByte(sshFlagsWithValue, f) >= 0:
				val := flags[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return c, fmt.Errorf("-%c needs a value: %w", f, ErrSSHArgv)
					}
					i++
					val = args[i]
				}
				if err := c.setSSH(f, val); err != nil {
					return c, err
				}
				j = len(flags)
			default:
				return c, fmt.Errorf("unknown flag -%c in %q: %w", f, arg, ErrSSHArgv)
			}
		}
		i++
	}
	if c.Destination == "" {
		return c, fmt.Errorf("no destination given: %w", ErrSSHArgv)
	}
	if i < len(args) {
		c.Command = append([]string(nil), args[i:]...)
	}
	return c, nil
}

func (c *SSHCommand) setSSH(flag byte, val string) error {
	switch flag {
	case 'l':
		c.Login = val
		return nil
	case 'F':
		c.ConfigFile = val
		return nil
	case 'L', 'D', 'R', 'J', 'i', 'p', 'o', 'c':
		if err := c.set(flag, val); err != nil {
			return fmt.Errorf("%w: %w", ErrSSHArgv, err)
		}
		if flag == 'o' {
			c.forwardOption()
		}
	}
	return nil // the others do not change what the tunnel exposes
}

// forwardOption moves forwards and GatewayPorts given as -o options
// (-o "LocalForward 8080 host:80") to where the flags put them.
func (c *SSHCommand) forwardOption() {
	for k, v := range c.Options {
		fields := strings.Fields(v)
		switch k {
		case "localforward":
			if len(fields) == 2 {
				c.Locals = append(c.Locals, fields[0]+":"+fields[1])
			}
		case "remoteforward":
			if len(fields) == 2 {
				c.Remotes = append(c.Remotes, fields[0]+":"+fields[1])
			} else if len(fields) == 1 {
				c.Remotes = append(c.Remotes, fields[0])
			}
		case "dynamicforward":
			if len(fields) == 1 {
				c.Dynamics = append(c.Dynamics, fields[0])
			}
		case "gatewayports":
			c.GatewayPorts = strings.EqualFold(v, "yes") || strings.EqualFold(v, "true")
		default:
			continue
		}
		delete(c.Options, k)
	}
}
