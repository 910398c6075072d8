package portmap

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
)

// serveAddr is `porthole serve`'s own loopback address ("P" 80, "H" 72).
var serveAddr = netip.AddrFrom4([4]byte{127, 80, 72, 1})

// ServeAddr is the loopback address `porthole serve` listens on by default,
// 127.80.72.1, and that no login is ever given (Map skips it, and refuses an
// endpoints file that puts a login or an endpoint on it).
//
// Why an address of its own: the apps' cookies, rewritten for Chromium as
// "SameSite=None; Secure; Partitioned", are keyed by the top-level site of
// serve's page, and the site of http://IP:PORT is the IP without the port.
// On 127.0.0.1, every other local web page (any dev server) would share
// that partition and could make the browser send the apps' cookies; on an
// address no other program uses, only serve's page can. The port does not
// matter to the partition, so it may change from run to run.
func ServeAddr() netip.Addr { return serveAddr }

// ListenServe listens on ServeAddr:port (port 0: one the OS picks). Where
// that address is not configured (macOS has only 127.0.0.1 unless an lo0
// alias is added), it listens on 127.0.0.1:port instead and returns shared
// true: the caller should warn that other local pages share the cookie
// partition (SharedServeWarning says it). A taken port is a
// *PortInUseError, as from Listen.
func ListenServe(ctx context.Context, port int) (ln net.Listener, shared bool, err error) {
	return listenServe(ctx, serveAddr, port)
}

func listenServe(ctx context.Context, want netip.Addr, port int) (net.Listener, bool, error) {
	ln, err := Listen(ctx, net.JoinHostPort(want.String(), strconv.Itoa(port)))
	if err == nil {
		return ln, false, nil
	}
	if !isAddrNotAvail(err) {
		return nil, false, err
	}
	ln, err2 := Listen(ctx, net.JoinHostPort(loopback1.String(), strconv.Itoa(port)))
	if err2 != nil {
		return nil, false, fmt.Errorf("%s is not available on this computer (%v), and 127.0.0.1 failed too: %w", want, err, err2)
	}
	return ln, true, nil
}

// SharedServeWarning is the one-line warning for serving on host instead of
// ServeAddr.
func SharedServeWarning(host string) string {
	msg := fmt.Sprintf("serving on %s, not on Porthole's own address %s: every other web page on http://%s (any local dev server) shares the apps' cookie partition in Chromium and can make the browser send the apps' cookies",
		host, serveAddr, host)
	if runtime.GOOS == "darwin" {
		msg += fmt.Sprintf(" (to give Porthole its own address: sudo ifconfig lo0 alias %s up)", serveAddr)
	}
	return msg
}
