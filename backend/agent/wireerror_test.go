package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/porthole-app/porthole/backend/sshconn"
)

// The UI shows both fingerprints of a changed host key and the auth methods
// tried; those must survive the pipe, not only the sentinel errors.
func TestWireErrorCarriesHostKeyAndAuth(t *testing.T) {
	mm := &sshconn.HostKeyMismatchError{Host: "[127.0.0.1]:2222", KeyType: "ssh-ed25519", Fingerprint: "SHA256:new",
		Known: []sshconn.KnownKey{{Type: "ssh-ed25519", Fingerprint: "SHA256:old", File: "/h/.ssh/known_hosts", Line: 3}}}
	ae := &sshconn.AuthError{User: "root", Addr: "127.0.0.1:22", Tried: []string{"publickey", "password"}}
	for name, orig := range map[string]error{"host key": fmt.Errorf("connect: %w", mm), "auth": fmt.Errorf("connect: %w", ae)} {
		t.Run(name, func(t *testing.T) {
			b, err := json.Marshal(toWire(orig))
			if err != nil {
				t.Fatal(err)
			}
			var w wireError
			if err := json.Unmarshal(b, &w); err != nil {
				t.Fatal(err)
			}
			got := w.toError()
			if got.Error() != orig.Error() {
				t.Fatalf("message %q, want %q", got.Error(), orig.Error())
			}
			var gm *sshconn.HostKeyMismatchError
			var ga *sshconn.AuthError
			switch name {
			case "host key":
				if !errors.As(got, &gm) || gm.Known[0].Fingerprint != "SHA256:old" || gm.Fingerprint != "SHA256:new" || !errors.Is(got, sshconn.ErrHostKeyMismatch) {
					t.Fatalf("host key mismatch lost: %#v", got)
				}
			case "auth":
				if !errors.As(got, &ga) || len(ga.Tried) != 2 || !errors.Is(got, sshconn.ErrAuthFailed) {
					t.Fatalf("auth error lost: %#v", got)
				}
			}
		})
	}
}
