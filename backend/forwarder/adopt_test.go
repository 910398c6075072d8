package forwarder

import (
	"context"
	"testing"
	"time"
)

// TestAdopt: a connection dialed outside the Session (a speculative dial)
// becomes the Session's only when it has none; then it serves the Session
// without a login of its own; a Session that has one, or is closed, refuses.
func TestAdopt(t *testing.T) {
	srv := newServer(t, nil)
	cfg := clientConfig(srv)
	s := newSession(t, srv.Addr(), cfg, SessionOptions{})
	dial := func() SSHClient {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := SSHConnector{Addr: srv.Addr(), Config: cfg}.Connect(ctx)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		return c
	}
	if !s.Wants() {
		t.Fatal("a fresh Session does not want a connection")
	}
	if !s.Adopt(dial(), time.Millisecond) {
		t.Fatal("a Session without a connection refused one")
	}
	if st := s.State().State; st != StateReady {
		t.Fatalf("state %v after Adopt, want ready", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if n := srv.Stats().AuthOK; n != 1 {
		t.Fatalf("logins: %d, want 1 (Connect used the adopted connection)", n)
	}
	if s.Wants() {
		t.Fatal("a connected Session wants another connection")
	}
	extra := dial()
	if s.Adopt(extra, time.Millisecond) {
		t.Fatal("a connected Session adopted a second connection")
	}
	_ = extra.Close()
	_ = s.Close()
	late := dial()
	defer func() { _ = late.Close() }()
	if s.Wants() || s.Adopt(late, time.Millisecond) {
		t.Fatal("a closed Session took a connection")
	}
}
