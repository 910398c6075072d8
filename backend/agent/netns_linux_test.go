//go:build linux

package agent

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/internal/testrig"
)

// envNetNSChild makes TestSandboxedAgentHearsNetworkChanges the child that
// runs inside the namespace.
const envNetNSChild = "PORTHOLE_AGENT_TEST_NETNS_CHILD"

// TestSandboxedAgentHearsNetworkChanges: a login's sandboxed agent (seccomp,
// Landlock) watches the network through netlink, and an address added to
// the machine marks its connected session suspect, with the change in
// words. The app side (Supervisor, SSH server, agent) runs in this test
// binary, run again with `ip netns exec` in a namespace the test creates.
func TestSandboxedAgentHearsNetworkChanges(t *testing.T) {
	if os.Getenv(envNetNSChild) == "1" {
		agentNetNSChild(t)
		return
	}
	ns := testrig.NewNetNS(t)
	ns.IP(t, "link", "set", "lo", "up") // the SSH server listens on 127.0.0.1 in there
	child := ns.RunTest(t, "TestSandboxedAgentHearsNetworkChanges", envNetNSChild+"=1")
	child.Next("NETNS-CONNECTED")
	ns.IP(t, "link", "add", "pw0", "type", "veth", "peer", "name", "pw1")
	ns.IP(t, "addr", "add", "10.67.0.1/24", "dev", "pw0")
	reason := child.Next("NETNS-SUSPECT ")
	if want := "network changed: address 10.67.0.1/24 added on pw0"; reason != want {
		t.Errorf("the agent's session became suspect with %q, want %q", reason, want)
	}
	child.Wait()
}

func agentNetNSChild(t *testing.T) {
	r := newRig(t, testrig.SSHServerOptions{})
	sup, _ := testSupervisor(t, SupervisorOptions{})
	l := startRemote(t, sup, r.spec("netns"), Secrets{Password: testPassword}, nil)
	rec := record(l)
	if err := l.Connect(ctxT(t, 30*time.Second)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	fmt.Println("NETNS-CONNECTED")
	e := rec.waitFor(t, "suspect after a network change", 60*time.Second, func(e Event) bool {
		return isState(forwarder.StateSuspect)(e) && strings.HasPrefix(e.State.Reason, "network changed")
	})
	fmt.Println("NETNS-SUSPECT " + e.State.Reason)
}
