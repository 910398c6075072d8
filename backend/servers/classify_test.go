package servers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
	"github.com/porthole-app/porthole/backend/sshconn"
)

// Issue 14 finding 10f: the message of a changed host key names both the
// recorded and the new fingerprint, not only ServerError.HostKey.
func TestClassifyChangedHostKeyMessageHasBothFingerprints(t *testing.T) {
	const newFP, oldFP, oldFP2 = "SHA256:newNEWnewNEWnewNEWnewNEWnewNEWnewNEWnew000", "SHA256:oldOLDoldOLDoldOLDoldOLDoldOLDoldOLDold111", "SHA256:oldOLDoldOLDoldOLDoldOLDoldOLDoldOLDold222"
	for _, tc := range []struct {
		name  string
		known []sshconn.KnownKey
		want  []string
	}{
		{"one recorded key", []sshconn.KnownKey{{Type: "ssh-ed25519", Fingerprint: oldFP, File: "/h/.ssh/known_hosts", Line: 2}},
			[]string{newFP, oldFP, "line 2 of /h/.ssh/known_hosts", "[h]:2222"}},
		{"two recorded keys", []sshconn.KnownKey{
			{Type: "ssh-ed25519", Fingerprint: oldFP, File: "/h/.ssh/known_hosts", Line: 2},
			{Type: "ssh-ed25519", Fingerprint: oldFP2, File: "/etc/ssh/ssh_known_hosts", Line: 7}},
			[]string{newFP, oldFP, oldFP2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := fmt.Errorf("connecting: %w", &sshconn.HostKeyMismatchError{Host: "[h]:2222", KeyType: "ssh-ed25519", Fingerprint: newFP, Known: tc.known})
			se := ClassifyConnectError(err, time.Minute)
			if se.Kind != ErrorHostKeyChanged || se.HostKey == nil || se.HostKey.Fingerprint != newFP {
				t.Fatalf("classified %+v", se)
			}
			for _, w := range tc.want {
				if !strings.Contains(se.Message, w) {
					t.Errorf("message %q lacks %q", se.Message, w)
				}
			}
			if ce := (&ConnectError{Server: se, Err: err}); !strings.Contains(ce.Error(), newFP) || !strings.Contains(ce.Error(), oldFP) {
				t.Errorf("Connect's error %q lacks a fingerprint", ce.Error())
			}
		})
	}
}

// A server that drops every login right after auth is named as such, with
// the likely cause, however the error was wrapped on its way.
func TestClassifyDropsAfterLogin(t *testing.T) {
	err := fmt.Errorf("%w: %w (3 logins in a row; last: EOF)", forwarder.ErrUnavailable, forwarder.ErrDropsAfterLogin)
	se := ClassifyConnectError(err, time.Minute)
	if se.Kind != ErrorDropsAfterLogin || !strings.Contains(se.Message, "closes the connection at once") ||
		!strings.Contains(se.Message, "ChrootDirectory") || strings.Contains(se.Detail, forwarder.ErrUnavailable.Error()) {
		t.Fatalf("classified %+v", se)
	}
	if b, _ := se.Kind.MarshalText(); string(b) != "drops-after-login" {
		t.Fatalf("kind %q", b)
	}
}
