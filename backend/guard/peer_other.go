//go:build !linux

package guard

import "net"

// peerUID is only implemented on Linux so far; elsewhere the policy allows all
// loopback peers (see README, platform notes).
func peerUID(local, remote *net.TCPAddr) (uint32, error) { return 0, errUnsupported }

// unixPeerUID is only implemented on Linux; elsewhere a Unix socket's mode
// (0600) keeps other users out.
func unixPeerUID(*net.UnixConn) (uint32, error) { return 0, errUnsupported }
