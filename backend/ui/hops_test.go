package ui

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/backend/prompts"
	"github.com/porthole-app/porthole/backend/servers"
	"github.com/porthole-app/porthole/internal/testrig"
)

const jumpPassword = "Jump-h0st-0nly-pw"

// nextPromptOrResult waits up to 20 s for Connect to end or for a question
// of server id, whichever comes first.
func nextPromptOrResult(t *testing.T, ta *testApp, id string, ch <-chan connectResult) (*prompts.Prompt, *connectResult) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case res := <-ch:
			return nil, &res
		default:
		}
		for _, p := range ta.app.Prompts() {
			if p.ServerID == id {
				return &p, nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("Connect neither asked nor ended within 20 s")
	return nil, nil
}

// waitState waits up to 20 s until server id's state satisfies ok.
func waitState(t *testing.T, ta *testApp, id string, ok func(servers.ServerState) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range ta.app.ListServers() {
			if s.ID == id && ok(s.State) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("server %s did not reach the wanted state within 20 s: %+v", id, ta.app.ListServers())
}

// failedAuth lists the failed authentication lines of a real sshd's log.
func failedAuth(s *testrig.Sshd) []string {
	var out []string
	for _, l := range strings.Split(s.Log(), "\n") {
		if strings.Contains(l, "Failed ") {
			out = append(out, l)
		}
	}
	return out
}

// Issue 14 finding 6: every hop shares one prompter, and the profile's
// saved password used to answer whichever hop asked first, so a jump host
// got the destination's password. Two real sshds with different
// passwords: the jump host must be asked (never given the destination's
// saved password), the destination must get its saved one (saved before
// jump hosts had their own entries), a remembered jump password goes to the
// jump host's own entry, and a reconnect (answered from the login's memory)
// hands each hop its own password.
func TestJumpHostNeverGetsTheDestinationPassword(t *testing.T) {
	forEachLogin(t, func(t *testing.T, agents bool) {
		for _, remember := range []bool{false, true} {
			t.Run("remember="+strconv.FormatBool(remember), func(t *testing.T) {
				jump := testrig.NewSshd(t, testrig.SshdOptions{Password: jumpPassword, HostKeyTypes: []string{"ed25519"}})
				dest := testrig.NewSshd(t, testrig.SshdOptions{Password: testPassword, HostKeyTypes: []string{"ed25519"}})
				ta := newTestApp(t, testAppOptions{agents: agents})
				var kh []byte
				for _, s := range []*testrig.Sshd{jump, dest} {
					b, err := os.ReadFile(s.KnownHostsPath)
					if err != nil {
						t.Fatal(err)
					}
					kh = append(kh, b...)
				}
				if err := os.WriteFile(filepath.Join(ta.home, ".ssh", "known_hosts"), kh, 0o600); err != nil {
					t.Fatal(err)
				}
				hop := jump.User + "@" + net.JoinHostPort(jump.Host, strconv.Itoa(jump.Port))
				p, err := ta.app.AddServer(profiles.Profile{Name: "behind a jump host", Host: dest.Host, Port: dest.Port, User: dest.User, JumpHosts: []string{hop}})
				if err != nil {
					t.Fatal(err)
				}
				// Saved the old way: under the profile's ID (the destination's).
				if err := ta.secrets.Set(p.ID, profiles.SecretPassword, testPassword); err != nil {
					t.Fatal(err)
				}

				ch := connectAsync(ta.app, p.ID)
				pr, res := nextPromptOrResult(t, ta, p.ID, ch)
				if res != nil {
					t.Fatalf("Connect ended without asking for the jump host's password: %+v, %v", res.sum, res.err)
				}
				if pr.Kind != prompts.PromptPassword || !strings.HasPrefix(pr.Hop, "jump host 1 of 1") || pr.Notice != "" {
					t.Fatalf("first question %+v; want the jump host's password, asked without a rejected saved one", *pr)
				}
				if err := ta.app.AnswerPrompt(pr.ID, prompts.PromptAnswer{Secret: jumpPassword, Remember: remember}); err != nil {
					t.Fatal(err)
				}
				pr, res = nextPromptOrResult(t, ta, p.ID, ch)
				if pr != nil {
					t.Fatalf("asked again %+v; the destination should have used its saved password", *pr)
				}
				if res.err != nil || res.sum.State != servers.ServerConnected {
					t.Fatalf("Connect = %+v, %v", res.sum, res.err)
				}
				if f := failedAuth(jump); len(f) > 0 {
					t.Fatalf("the jump host was handed a wrong (the destination's?) password:\n%s", strings.Join(f, "\n"))
				}
				if f := failedAuth(dest); len(f) > 0 {
					t.Fatalf("the destination rejected a password:\n%s", strings.Join(f, "\n"))
				}
				if v, err := ta.secrets.Get(p.ID, profiles.SecretPassword); err != nil || v != testPassword {
					t.Fatalf("the destination's saved password is now %q, %v", v, err)
				}
				v, err := profiles.JumpPassword(ta.secrets, p.ID, hop)
				switch {
				case remember && (err != nil || v != jumpPassword):
					t.Fatalf("the remembered jump host password = %q, %v", v, err)
				case !remember && err == nil:
					t.Fatal("a jump host password saved without remember")
				}

				// The session drops (the jump host reboots); connecting again
				// is answered from the login's memory: each hop its own.
				if err := jump.Restart(context.Background()); err != nil {
					t.Fatal(err)
				}
				waitState(t, ta, p.ID, func(s servers.ServerState) bool { return s != servers.ServerConnected })
				pr, res = nextPromptOrResult(t, ta, p.ID, connectAsync(ta.app, p.ID))
				if pr != nil {
					t.Fatalf("the reconnect asked %+v", *pr)
				}
				if res.err != nil || res.sum.State != servers.ServerConnected {
					t.Fatalf("reconnect = %+v, %v", res.sum, res.err)
				}
				if f := append(failedAuth(jump), failedAuth(dest)...); len(f) > 0 {
					t.Fatalf("a hop was handed another hop's password on reconnect:\n%s", strings.Join(f, "\n"))
				}

				// A new login (after Disconnect) starts from the keyring.
				if _, err := ta.app.Disconnect(p.ID); err != nil {
					t.Fatal(err)
				}
				ch = connectAsync(ta.app, p.ID)
				pr, res = nextPromptOrResult(t, ta, p.ID, ch)
				if !remember {
					if pr == nil || !strings.HasPrefix(pr.Hop, "jump host 1 of 1") || pr.Notice != "" {
						t.Fatalf("a new login without a remembered jump password: question %+v, result %+v", pr, res)
					}
					if err := ta.app.AnswerPrompt(pr.ID, prompts.PromptAnswer{Secret: jumpPassword}); err != nil {
						t.Fatal(err)
					}
					pr, res = nextPromptOrResult(t, ta, p.ID, ch)
				}
				if pr != nil {
					t.Fatalf("the new login asked %+v", *pr)
				}
				if res.err != nil || res.sum.State != servers.ServerConnected {
					t.Fatalf("new login = %+v, %v", res.sum, res.err)
				}
				if f := append(failedAuth(jump), failedAuth(dest)...); len(f) > 0 {
					t.Fatalf("a hop was handed another hop's password:\n%s", strings.Join(f, "\n"))
				}
				noSecretAnywhere(t, ta, p.ID, testPassword)
				noSecretAnywhere(t, ta, p.ID, jumpPassword)
			})
		}
	})
}
