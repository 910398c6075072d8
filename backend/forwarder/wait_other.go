//go:build !linux

package forwarder

import "net"

// platformReadWaiter: elsewhere the copy falls back to the small/big pump.
func platformReadWaiter(net.Conn) readWaiter { return nil }
