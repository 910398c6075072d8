package agent

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
)

// TestSocketForwardSpecs: socket forwards are Local and Remote specs with
// paths; the JSON of older specs is unchanged, and a LocalLogin listens on
// the socket and counts it in Stats (Addr: the path).
func TestSocketForwardSpecs(t *testing.T) {
	old := ForwardSpec{ID: "L1", Local: forwarder.LocalSpec{BindPort: 8080, TargetHost: "localhost", TargetPort: 80}}
	b, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"L1","local":{"bindPort":8080,"targetHost":"localhost","targetPort":80}}`; string(b) != want {
		t.Fatalf("JSON of a TCP forward changed: %s, want %s", b, want)
	}
	sock := filepath.Join(t.TempDir(), "l.sock")
	fwds := []ForwardSpec{
		{ID: "S1", Local: forwarder.LocalSpec{BindPath: sock, TargetPath: "/var/run/docker.sock"}},
		{ID: "S2", Local: forwarder.LocalSpec{TargetPath: "/var/run/docker.sock"}},
		{ID: "R1", Remote: &forwarder.RemoteSpec{BindPath: "/tmp/r.sock", TargetHost: "127.0.0.1", TargetPort: 1}},
	}
	for _, f := range fwds {
		if err := f.Validate(); err != nil {
			t.Fatalf("%s: %v", f.ID, err)
		}
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		var back ForwardSpec
		if err := json.Unmarshal(b, &back); err != nil || !sameSpec(back, f) {
			t.Fatalf("JSON round trip %s = %+v, %v", b, back, err)
		}
	}
	if k := fwds[0].Kind(); k != ForwardLocal || fwds[2].Kind() != ForwardRemote {
		t.Fatalf("kinds %v %v", k, fwds[2].Kind())
	}
	if ep := fwds[2].Endpoint(); ep.BindPath != "/tmp/r.sock" {
		t.Fatalf("Endpoint of a remote socket forward %+v", ep)
	}

	spec := LoginSpec{ID: "s", Host: "127.0.0.1", Port: freePort(t), SSHConfigPath: "none", SystemConfigPath: "none", AgentSocket: "none",
		Session: SessionSettings{StatsInterval: -1}, Forwards: fwds[:2]}
	l, err := NewLocalLogin(spec, Secrets{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := l.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Forwards) != 2 || st.Forwards[0].Addr != sock || st.Forwards[0].Spec.BindPath != sock || st.Forwards[1].Addr == "" {
		t.Fatalf("stats %+v", st.Forwards)
	}
	// A client counts (the server is unreachable: the connection fails).
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !waitUntil(10*time.Second, func() bool {
		st, _ := l.Stats(ctx)
		return st.Forwards[0].Stats.TotalConns == 1
	}) {
		t.Fatal("the socket forward's connection was not counted")
	}
	// Closing the login removes the socket.
	l.Close()
	if _, err := net.Dial("unix", sock); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("the socket outlived Close: %v", err)
	}
}
