// Package faults holds Porthole's fault matrix and soak test: the whole
// path (the Supervisor, a sandboxed `porthole agent` process, its web and raw
// forwards, a real OpenSSH sshd behind internal/testrig's fault relay) under
// blackouts, sleep, network changes, sshd restarts and outages, agent crashes
// and hangs, and a broken config directory; and 100k connections in a row
// with no errors and no leaks. Its one API is Soak, the soak's driver,
// which TestSoak and `make bench` (internal/bench) run; the rest is tests.
//
//	go test -race ./internal/faults                      # the matrix and a 2k-connection soak (make test)
//	PORTHOLE_SOAK=full go test -run TestSoak ./internal/faults   # 100k connections (make soak)
package faults
