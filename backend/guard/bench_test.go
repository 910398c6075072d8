package guard

import (
	"net"
	"testing"
)

// BenchmarkGuard is the same-user check's cost per accepted loopback
// connection (one sock_diag lookup): ns/op is per accept. `make bench`
// reports the median of many as the "same-user guard" row. Connections are
// opened (64 at a time, to bound file descriptors) and closed off the timer.
func BenchmarkGuard(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	g := NewSameUser(nil)
	const batch = 64
	var open []net.Conn // client, accepted, client, accepted, …
	closeAll := func() {
		for _, c := range open {
			c.Close()
		}
		open = open[:0]
	}
	defer closeAll()
	var ready []net.Conn
	for b.Loop() {
		if len(ready) == 0 {
			b.StopTimer()
			closeAll()
			for range batch {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				s, err := ln.Accept()
				if err != nil {
					b.Fatal(err)
				}
				open = append(open, c, s)
				ready = append(ready, s)
			}
			b.StartTimer()
		}
		s := ready[len(ready)-1]
		ready = ready[:len(ready)-1]
		if err := g.Allow(s); err != nil {
			b.Fatalf("own connection refused: %v", err)
		}
	}
}
