package leaks

import (
	"fmt"
	"net"
	"strconv"
)

// Reach is who can connect to a forward's listener.
type Reach int

const (
	// ReachLocalUsers: every user of this computer (a loopback listener:
	// OpenSSH checks no peer credentials).
	ReachLocalUsers Reach = iota
	// ReachNetwork: other machines too (every interface or a non-loopback
	// address), besides every user of this computer.
	ReachNetwork
	// ReachServerUsers: every user of the server (-R on its loopback).
	ReachServerUsers
	// ReachServerNetwork: machines that reach the server too (-R on every
	// interface, where the server's sshd allows GatewayPorts).
	ReachServerNetwork
	// ReachSocketOwner: a Unix socket, which ssh (or sshd, for -R) makes
	// for its owner alone unless StreamLocalBindMask says otherwise.
	ReachSocketOwner
)

func (r Reach) String() string {
	switch r {
	case ReachLocalUsers:
		return "local-users"
	case ReachNetwork:
		return "network"
	case ReachServerUsers:
		return "server-users"
	case ReachServerNetwork:
		return "server-network"
	case ReachSocketOwner:
		return "socket-owner"
	}
	return fmt.Sprintf("Reach(%d)", int(r))
}

// MarshalText makes a Reach appear as its name in JSON.
func (r Reach) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// describe fills a forward's plain words: what it exposes and who can
// connect. listeners are the process's own listening addresses on the port
// (-L/-D), which decide over the command line when known.
func describe(f ArgForward, gateway bool, server string, listeners []string) (exposes, who string, reach Reach) {
	port := strconv.Itoa(f.Port)
	target := net.JoinHostPort(f.TargetHost, strconv.Itoa(f.TargetPort))
	if f.TargetPath != "" {
		target = "the Unix socket " + f.TargetPath
	}
	if f.BindPath != "" {
		if f.Kind == ForwardRemote {
			return fmt.Sprintf("the Unix socket %s on %s → %s on this computer", f.BindPath, server, target),
				fmt.Sprintf("Only who may open that socket file on %s can connect: sshd makes it for you alone unless its StreamLocalBindMask says otherwise.", server), ReachSocketOwner
		}
		return fmt.Sprintf("the Unix socket %s → %s, as seen from %s", f.BindPath, target, server),
			"Only who may open the socket file can connect: ssh makes it for you alone unless StreamLocalBindMask says otherwise.", ReachSocketOwner
	}
	switch f.Kind {
	case ForwardRemote:
		where, all := "its loopback", false
		switch f.Bind {
		case "", "localhost":
		case "*", "0.0.0.0", "::":
			where, all = "every interface", true
		default:
			where, all = f.Bind, !isLoopback(f.Bind)
		}
		exposes = fmt.Sprintf("port %s of %s (%s) → %s on this computer", port, server, where, target)
		who = fmt.Sprintf("Every user of %s can connect to it and reach %s on this computer, as you: ssh does not check who connects.", server, target)
		if all {
			return exposes, who + fmt.Sprintf(" If %s's sshd allows it (GatewayPorts), so can other machines that reach %s.", server, server), ReachServerNetwork
		}
		return exposes, who, ReachServerUsers
	}
	addrs := listeners
	if len(addrs) == 0 {
		addrs = []string{bindAddr(f.Bind, gateway, port)}
	}
	network := false
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err == nil && !isLoopback(h) {
			network = true
		}
	}
	listen := addrs[0]
	switch {
	case f.Spec == "":
		exposes = fmt.Sprintf("%s → somewhere through %s (not on the command line: ssh_config's LocalForward, or autossh's monitor port)", listen, server)
		who = fmt.Sprintf("Every user of this computer can connect to %s: ssh does not check who connects.", listen)
	case f.Kind == ForwardDynamic:
		exposes = fmt.Sprintf("%s → a SOCKS proxy out of %s", listen, server)
		who = fmt.Sprintf("Every user of this computer can use %s as a proxy to reach anything %s can reach, as you: ssh does not check who connects.", listen, server)
	default:
		exposes = fmt.Sprintf("%s → %s, as seen from %s", listen, target, server)
		who = fmt.Sprintf("Every user of this computer can connect to %s and reach %s on %s, as you: ssh does not check who connects.", listen, target, server)
	}
	if network {
		return exposes, who + " It listens beyond loopback, so other machines that can reach this computer can connect too.", ReachNetwork
	}
	return exposes, who, ReachLocalUsers
}

// bindAddr is where ssh listens for a -L/-D bind address.
func bindAddr(bind string, gateway bool, port string) string {
	switch bind {
	case "":
		if gateway {
			return net.JoinHostPort("0.0.0.0", port)
		}
		return net.JoinHostPort("127.0.0.1", port)
	case "*":
		return net.JoinHostPort("0.0.0.0", port)
	case "localhost":
		return net.JoinHostPort("127.0.0.1", port)
	}
	return net.JoinHostPort(bind, port)
}
