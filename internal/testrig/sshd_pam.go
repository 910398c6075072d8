package testrig

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PAM for the real sshd without touching the machine: sshd runs with
// LD_PRELOAD=libpam_wrapper.so, which makes libpam read service files from
// PAM_WRAPPER_SERVICE_DIR (a directory in Sshd.Dir) instead of /etc/pam.d.
// The private "sshd" service uses pam_matrix, which checks passwords against
// a "user:password:service" file, also in Sshd.Dir. Debian package:
// libpam-wrapper.

// ErrPamWrapperMissing is returned when SshdOptions.Password is set but
// libpam_wrapper or pam_matrix cannot be found.
var ErrPamWrapperMissing = errors.New("password auth against the real sshd needs pam_wrapper: install it with `apt-get install -y libpam-wrapper`")

// pamWrapperPaths finds libpam_wrapper.so and pam_matrix.so.
func pamWrapperPaths() (lib, matrix string, err error) {
	find := func(patterns ...string) string {
		for _, p := range patterns {
			matches, _ := filepath.Glob(p)
			for _, m := range matches {
				if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() {
					return m
				}
			}
		}
		return ""
	}
	lib = find("/usr/lib/*/libpam_wrapper.so", "/usr/lib64/libpam_wrapper.so", "/usr/lib/libpam_wrapper.so", "/usr/local/lib/libpam_wrapper.so")
	matrix = find("/usr/lib/*/pam_wrapper/pam_matrix.so", "/usr/lib64/pam_wrapper/pam_matrix.so", "/usr/lib/pam_wrapper/pam_matrix.so", "/usr/local/lib/pam_wrapper/pam_matrix.so")
	if lib == "" || matrix == "" {
		return "", "", ErrPamWrapperMissing
	}
	return lib, matrix, nil
}

// PamWrapperAvailable reports whether SshdOptions.Password can work here
// (nil) or why not (wrapping ErrPamWrapperMissing).
func PamWrapperAvailable() error {
	_, _, err := pamWrapperPaths()
	return err
}

func pamServiceDir(dir string) string { return filepath.Join(dir, "pam.d") }

// setupPamWrapper writes the private PAM service and password file into dir
// and returns the environment sshd needs.
func setupPamWrapper(dir, user, password string) ([]string, error) {
	if strings.ContainsAny(password, ":\n\r\x00") {
		return nil, errors.New("SshdOptions.Password must not contain ':', NUL or line breaks (pam_matrix file format)")
	}
	_, matrix, err := pamWrapperPaths()
	if err != nil {
		return nil, err
	}
	passdb := filepath.Join(dir, "passdb")
	if err := writeFile(passdb, []byte(user+":"+password+":sshd\n")); err != nil {
		return nil, err
	}
	svcDir := pamServiceDir(dir)
	if err := os.MkdirAll(svcDir, 0o700); err != nil {
		return nil, fmt.Errorf("create PAM service dir: %w", err)
	}
	var b strings.Builder
	for _, typ := range []string{"auth", "account", "password", "session"} {
		fmt.Fprintf(&b, "%-8s required %s passdb=%s\n", typ, matrix, passdb)
	}
	if err := writeFile(filepath.Join(svcDir, "sshd"), []byte(b.String())); err != nil {
		return nil, err
	}
	return pamWrapperEnv(dir), nil
}

func pamWrapperEnv(dir string) []string {
	lib, _, err := pamWrapperPaths()
	if err != nil {
		return nil
	}
	return []string{
		"LD_PRELOAD=" + lib,
		"PAM_WRAPPER=1",
		"PAM_WRAPPER_SERVICE_DIR=" + pamServiceDir(dir),
	}
}

// removePamWrapperDirs removes the /tmp/pam.? directories that libpam_wrapper
// created for this sshd, or for an earlier testrig sshd whose directory is
// gone, once their process is dead. pam_wrapper removes its directory on a
// normal exit, but not when Stop kills the process.
func removePamWrapperDirs(dir string) {
	ours := filepath.Join(dir, "passdb")
	matches, _ := filepath.Glob("/tmp/pam.?")
	for _, m := range matches {
		svc, err := os.ReadFile(filepath.Join(m, "sshd"))
		if err != nil {
			continue
		}
		passdb := testrigPassdb(svc)
		if passdb == "" {
			continue
		}
		if passdb != ours {
			if _, err := os.Stat(passdb); err == nil {
				continue // another live testrig sshd
			}
		}
		pidText, err := os.ReadFile(filepath.Join(m, "pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
		if err != nil || processAlive(pid) {
			continue
		}
		_ = os.RemoveAll(m)
	}
}

// testrigPassdb returns the passdb path of a PAM service file written by
// setupPamWrapper, or "" if the file is not one of ours.
func testrigPassdb(svc []byte) string {
	first, _, _ := bytes.Cut(svc, []byte("\n"))
	_, after, ok := bytes.Cut(first, []byte("pam_matrix.so passdb="))
	if !ok || !bytes.HasPrefix(first, []byte("auth ")) {
		return ""
	}
	p := strings.TrimSpace(string(after))
	if filepath.Base(p) != "passdb" {
		return ""
	}
	return p
}
