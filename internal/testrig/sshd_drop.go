package testrig

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// DropLoginUser is the account a dropping sshd (NewSshdDroppingLogins)
// accepts: any unprivileged user works, and Debian always has this one.
const DropLoginUser = "nobody"

// NewSshdDroppingLogins starts a real sshd that accepts the login of
// DropLoginUser (key ClientKey) and then closes the connection at once, the
// way OpenSSH does for a user whose ChrootDirectory is missing: the
// post-auth child logs `safely_chroot: stat("…"): No such file or
// directory` and exits. (sshd skips that step for root, and ForceCommand
// only affects shells and commands, not forwarding, so neither the tests'
// own user nor ForceCommand /bin/false would do.) User is DropLoginUser;
// Logins counts the accepted logins. It skips (fails under CI=true) when
// this is not root or the user does not exist.
//
// The returned path is the ChrootDirectory: while it does not exist every
// login is dropped; create it (mode 0755: it is on a root-owned path, as
// sshd requires) and logins work, chrooted there (forwarding needs no
// files); remove it again and new logins are dropped again.
func NewSshdDroppingLogins(t testing.TB) (*Sshd, string) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "a dropping sshd needs root (sshd must switch to " + DropLoginUser + ")"
	} else if _, err := user.Lookup(DropLoginUser); err != nil {
		why = fmt.Sprintf("a dropping sshd needs the user %q: %v", DropLoginUser, err)
	}
	if why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("testrig: " + why)
		}
		t.Skip("testrig: " + why)
	}
	// The unprivileged user must read its authorized_keys: a directory of
	// its own, readable by all (the key is public).
	dir, err := os.MkdirTemp("", "porthole-dropkeys-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "authorized_keys")
	// sshd refuses a chroot under a path another user may write (/tmp).
	chroots, err := os.MkdirTemp("/run", "porthole-chroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(chroots) })
	if err := os.Chmod(chroots, 0o755); err != nil {
		t.Fatal(err)
	}
	chroot := filepath.Join(chroots, "root")
	s := NewSshd(t, SshdOptions{HostKeyTypes: []string{"ed25519"}, ExtraConfig: []string{
		"AllowUsers " + DropLoginUser,
		"Match User " + DropLoginUser,
		"AuthorizedKeysFile " + keys,
		"ChrootDirectory " + chroot,
	}})
	pub, err := os.ReadFile(s.ClientPubKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keys, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	s.User = DropLoginUser
	return s, chroot
}

// Logins counts the logins sshd accepted so far: its "Accepted <method>
// for <user> from …" lines ("Accepted key … found at" is only a check).
func (s *Sshd) Logins() int {
	n := 0
	for _, line := range strings.Split(s.Log(), "\n") {
		if strings.HasPrefix(line, "Accepted ") && !strings.HasPrefix(line, "Accepted key ") && strings.Contains(line, " for ") {
			n++
		}
	}
	return n
}
