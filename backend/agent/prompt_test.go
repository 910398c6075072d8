package agent

import (
	"context"
	"testing"

	"github.com/porthole-app/porthole/backend/sshconn"
)

// Issue 14 finding 6: the login's remembered password is the destination's
// and must never answer a jump host; a jump host's remembered password
// answers only that jump host.
func TestDialPrompterAnswersEachHopOnlyItsOwnPassword(t *testing.T) {
	const bastion = "alice@bastion:22"
	jumpPw := sshconn.PasswordPrompt{Kind: sshconn.PasswordLogin, User: "alice", Host: "bastion:22", Hop: "jump host 1 of 1 (bastion:22)", Jump: true}
	otherJump := sshconn.PasswordPrompt{Kind: sshconn.PasswordLogin, User: "bob", Host: "gate:22", Hop: "jump host 1 of 1 (gate:22)", Jump: true}
	destPw := sshconn.PasswordPrompt{Kind: sshconn.PasswordLogin, User: "carol", Host: "dest:22", Hop: "carol@dest:22"}
	jumpKI := sshconn.KIPrompt{User: "alice", Host: "bastion:22", Jump: true, Questions: []sshconn.KIQuestion{{Prompt: "Password: "}}}
	tests := []struct {
		name    string
		secrets Secrets
		ask     func(p *dialPrompter) (string, error)
		want    string // "typed": the user was asked
	}{
		{"jump host is asked, not given the destination's", Secrets{Password: "dest-pw"},
			func(p *dialPrompter) (string, error) { return p.Password(context.Background(), jumpPw) }, "typed"},
		{"jump host keyboard-interactive password round is asked", Secrets{Password: "dest-pw"},
			func(p *dialPrompter) (string, error) {
				a, err := p.KeyboardInteractive(context.Background(), jumpKI)
				if len(a) != 1 {
					return "", err
				}
				return a[0], err
			}, "typed"},
		{"jump host gets its own", Secrets{Password: "dest-pw", JumpPasswords: map[string]string{bastion: "jump-pw"}},
			func(p *dialPrompter) (string, error) { return p.Password(context.Background(), jumpPw) }, "jump-pw"},
		{"another jump host does not get it", Secrets{JumpPasswords: map[string]string{bastion: "jump-pw"}},
			func(p *dialPrompter) (string, error) { return p.Password(context.Background(), otherJump) }, "typed"},
		{"destination gets its own after the jump host asked", Secrets{Password: "dest-pw", JumpPasswords: map[string]string{bastion: "jump-pw"}},
			func(p *dialPrompter) (string, error) {
				if v, err := p.Password(context.Background(), jumpPw); v != "jump-pw" || err != nil {
					return "jump got " + v, err
				}
				return p.Password(context.Background(), destPw)
			}, "dest-pw"},
		{"destination never gets a jump host's", Secrets{JumpPasswords: map[string]string{bastion: "jump-pw"}},
			func(p *dialPrompter) (string, error) { return p.Password(context.Background(), destPw) }, "typed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := &fakePrompter{password: "typed"}
			got, err := tt.ask(newDialPrompter("l", tt.secrets, fp))
			if err != nil || got != tt.want {
				t.Fatalf("answer = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
