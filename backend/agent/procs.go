package agent

import (
	"os"
	"runtime"
)

// OneSessionProcs runs Go code on one thread at a time (GOMAXPROCS=1) in
// `porthole forward`, whose work is one SSH session, like OpenSSH's ssh (one
// thread too). Such a process is a pipeline through one connection:
// x/crypto/ssh's read loop decrypts every packet in one goroutine, the
// channel hands the bytes to the forward's goroutine, which writes them to
// the socket. With more Ps each hand-off wakes another thread (futex) and
// idle threads spin looking for work: `make bench` (bulk rows, the tunnel
// process's CPU ms per MB) on a 2-core machine measured 25–40 % less CPU
// per MB with GOMAXPROCS=1, and the latency rows did not change. The
// agent keeps the default: with 1,000 connections at a time (the soak) its
// throughput was lower with one P. GOMAXPROCS set in the environment wins.
func OneSessionProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}
