//go:build !linux

package guard

import "net"

// peerUID is only implemented on Linux so far; elsewhere the policy allows all
// loopback peers (see README, platform notes).
func peerUID(local, remote *net.TCPAddr) (uint32, error) { return 0, errUnsupported }
