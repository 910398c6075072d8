package webui

import (
	"errors"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// otherUserName is the throwaway account the tests act as "another local user".
const otherUserName = "porthole-test-other"

// otherUser returns the credential of a throwaway local user, creating the
// account (useradd -M) for the test and deleting it afterwards. It skips
// unless the test runs as root.
func otherUser(t *testing.T) *syscall.Credential {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to create a user and act as it")
	}
	u, err := user.Lookup(otherUserName)
	if err != nil {
		var unknown user.UnknownUserError
		if !errors.As(err, &unknown) {
			t.Fatalf("look up %s: %v", otherUserName, err)
		}
		// useradd takes /etc/passwd's lock; another process may hold it a moment.
		var out []byte
		for i := 0; i < 10; i++ {
			out, err = exec.Command("useradd", "-M", "-s", "/usr/sbin/nologin", otherUserName).CombinedOutput()
			if err == nil || strings.Contains(string(out), "already exists") {
				break
			}
			time.Sleep(300 * time.Millisecond)
		}
		if err != nil && !strings.Contains(string(out), "already exists") {
			t.Fatalf("useradd %s: %v: %s", otherUserName, err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("userdel", otherUserName).CombinedOutput(); err != nil {
				t.Logf("userdel %s: %v: %s", otherUserName, err, out)
			}
		})
		if u, err = user.Lookup(otherUserName); err != nil {
			t.Fatalf("look up %s after useradd: %v", otherUserName, err)
		}
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil || uid == 0 {
		t.Fatalf("user %s has uid %q gid %q", otherUserName, u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
}

// runAs runs a bash script as cred (nil: as this process's user) and returns
// its output; the script gets 20 s.
func runAs(t *testing.T, cred *syscall.Credential, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	cmd.WaitDelay = time.Second
	done := make(chan struct{})
	timer := time.AfterFunc(20*time.Second, func() {
		select {
		case <-done:
		default:
			if cmd.Process != nil {
				_ = cmd.Process.Kill()
			}
		}
	})
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	close(done)
	return string(out), err
}
