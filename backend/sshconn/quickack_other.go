//go:build !linux

package sshconn

import "net"

// withQuickAck is Linux-only (TCP_QUICKACK); elsewhere the conn is used as is.
func withQuickAck(c net.Conn) net.Conn { return c }
