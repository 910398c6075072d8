package agent

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/internal/testrig"
)

func TestForwardSpecRemote(t *testing.T) {
	remote := &forwarder.RemoteSpec{BindAddress: "*", BindPort: 8080, TargetHost: "127.0.0.1", TargetPort: 80}
	cases := []struct {
		name    string
		spec    ForwardSpec
		kind    ForwardKind
		key     string
		invalid string
	}{
		{"remote", ForwardSpec{Remote: remote}, ForwardRemote, "remote:*:8080:127.0.0.1:80", ""},
		{"remote with id", ForwardSpec{ID: "R1", Remote: remote}, ForwardRemote, "R1", ""},
		{"remote and local", ForwardSpec{Remote: remote, Local: forwarder.LocalSpec{BindPort: 1, TargetHost: "h", TargetPort: 2}}, ForwardRemote, "", "one of them"},
		{"remote and web", ForwardSpec{Remote: remote, Web: &forwarder.WebSpec{TargetHost: "h", TargetPort: 2}}, ForwardRemote, "", "one of them"},
		{"bad remote", ForwardSpec{Remote: &forwarder.RemoteSpec{TargetHost: "h"}}, ForwardRemote, "", "target port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if k := tc.spec.Kind(); k != tc.kind {
				t.Fatalf("Kind = %v, want %v", k, tc.kind)
			}
			err := tc.spec.Validate()
			if tc.invalid != "" {
				if err == nil || !strings.Contains(err.Error(), tc.invalid) {
					t.Fatalf("Validate = %v, want %q", err, tc.invalid)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k := tc.spec.Key(); k != tc.key {
				t.Fatalf("Key = %q, want %q", k, tc.key)
			}
			b, err := json.Marshal(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			var back ForwardSpec
			if err := json.Unmarshal(b, &back); err != nil || !sameSpec(back, tc.spec) {
				t.Fatalf("JSON round trip: %s → %+v, %v", b, back, err)
			}
			c := tc.spec.clone()
			c.Remote.BindPort = 1
			if tc.spec.Remote.BindPort == 1 {
				t.Fatal("clone shares the RemoteSpec")
			}
			if p := tc.spec.withBindPort(9).BindPort(); p != 9 || tc.spec.BindPort() != 8080 {
				t.Fatalf("withBindPort: %d, original %d", p, tc.spec.BindPort())
			}
		})
	}
	var k ForwardKind
	if err := k.UnmarshalText([]byte("remote")); err != nil || k != ForwardRemote {
		t.Fatalf("UnmarshalText(remote) = %v, %v", k, err)
	}
	if b, err := ForwardRemote.MarshalText(); err != nil || string(b) != "remote" {
		t.Fatalf("MarshalText = %q, %v", b, err)
	}
}

// TestLocalLoginRemoteForward: a login's remote forward waits for the
// connection, listens once connected (its server-side address, allocated
// port and state in Stats and EventStats), moves to the new Session on
// Disconnect and comes back at the next Connect.
func TestLocalLoginRemoteForward(t *testing.T) {
	r := newRig(t, testrig.SSHServerOptions{})
	spec := r.spec("remote", ForwardSpec{ID: "R1", Remote: &forwarder.RemoteSpec{TargetHost: "127.0.0.1", TargetPort: r.web.Port()}})
	l, err := NewLocalLogin(spec, Secrets{Password: testPassword}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rec := record(l)
	st, err := l.Stats(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	fi := st.Forwards[0]
	if fi.Kind != ForwardRemote || fi.Remote == nil || fi.Remote.State != forwarder.RemoteWaitingConn || fi.Addr != "" {
		t.Fatalf("before connecting: %+v", fi)
	}
	listening := func(e Event) bool {
		return e.Kind == EventStats && e.Stats != nil && len(e.Stats.Forwards) == 1 &&
			e.Stats.Forwards[0].Remote != nil && e.Stats.Forwards[0].Remote.State == forwarder.RemoteListening
	}
	if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	e := rec.waitFor(t, "remote forward listening", 20*time.Second, listening)
	fi = e.Stats.Forwards[0]
	port := fi.Remote.Port
	if port == 0 || fi.Addr != "localhost:"+strconv.Itoa(port) {
		t.Fatalf("listening forward: %+v", fi)
	}
	mustGet(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), "/small")

	if err := l.Disconnect(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	st, _ = l.Stats(ctxT(t, 5*time.Second))
	if s := st.Forwards[0].Remote.State; s == forwarder.RemoteListening {
		t.Fatalf("still listening after Disconnect: %+v", st.Forwards[0])
	}
	n := rec.count(listening)
	if err := l.Connect(ctxT(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(20*time.Second, func() bool { return rec.count(listening) > n }) {
		t.Fatal("the remote forward did not come back after Disconnect and Connect")
	}
	st, _ = l.Stats(ctxT(t, 5*time.Second))
	mustGet(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(st.Forwards[0].Remote.Port)), "/small")
}
