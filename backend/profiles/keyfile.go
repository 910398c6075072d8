package profiles

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Errors of CheckKeyFile.
var (
	// ErrKeyNeedsPassphrase is not a failure: the file is a good private key
	// that is encrypted. Store its passphrase (SecretKeyPassphrase) or ask for
	// it when connecting.
	ErrKeyNeedsPassphrase = errors.New("the private key is encrypted and needs its passphrase")
	// ErrKeyUnreadable: the file does not exist, is a directory, or cannot be read.
	ErrKeyUnreadable = errors.New("cannot read the key file")
	// ErrNotPrivateKey: the file is readable but is not a private key.
	ErrNotPrivateKey = errors.New("the file is not a private key")
)

// maxKeyFileSize bounds what CheckKeyFile reads; private keys are a few KiB.
const maxKeyFileSize = 1 << 20

// ExpandHome replaces a leading "~/" (or a lone "~") with the home directory.
func ExpandHome(path string) (string, error) {
	if path != "~" && !strings.HasPrefix(path, "~/") && !strings.HasPrefix(path, `~\`) {
		return path, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot expand %q: %w", path, err)
	}
	return filepath.Join(home, path[1:]), nil
}

// CheckKeyFile tells whether path (a "~/" prefix is the home directory) is a
// private key Porthole can use:
//
//   - nil: an unencrypted private key;
//   - ErrKeyNeedsPassphrase: an encrypted private key (fine: it needs its passphrase);
//   - ErrKeyUnreadable (wrapping the fs error, e.g. fs.ErrNotExist,
//     fs.ErrPermission): missing, a directory, or not readable;
//   - ErrNotPrivateKey: anything else (a public key, a text file, a PuTTY key…),
//     with a message saying what to choose instead.
//
// It never logs or returns the key material.
func CheckKeyFile(path string) error {
	if path == "" {
		return fmt.Errorf("%w: no key file given", ErrKeyUnreadable)
	}
	full, err := ExpandHome(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrKeyUnreadable, err)
	}
	f, err := os.Open(full)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("%w %s: it does not exist; choose an existing private key (e.g. ~/.ssh/id_ed25519): %w", ErrKeyUnreadable, path, err)
		case errors.Is(err, fs.ErrPermission):
			return fmt.Errorf("%w %s: permission denied; make it readable by your user (chmod 600): %w", ErrKeyUnreadable, path, err)
		}
		return fmt.Errorf("%w %s: %w", ErrKeyUnreadable, path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrKeyUnreadable, path, err)
	}
	if st.IsDir() {
		return fmt.Errorf("%w %s: it is a directory; choose the private key file inside it", ErrKeyUnreadable, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrKeyUnreadable, path, err)
	}
	if len(data) > maxKeyFileSize {
		return fmt.Errorf("%w: %s is larger than %d bytes; a private key is a few kilobytes", ErrNotPrivateKey, path, maxKeyFileSize)
	}
	return classifyKey(path, data)
}

func classifyKey(path string, data []byte) error {
	_, err := ssh.ParseRawPrivateKey(data)
	if err == nil {
		return nil
	}
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return fmt.Errorf("%s: %w", path, ErrKeyNeedsPassphrase)
	}
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(trimmed, []byte("PuTTY-User-Key-File")):
		return fmt.Errorf("%w: %s is a PuTTY key; convert it with `puttygen %s -O private-openssh -o <new file>` and choose the new file", ErrNotPrivateKey, path, filepath.Base(path))
	case isPublicKey(trimmed):
		hint := ""
		if strings.HasSuffix(path, ".pub") {
			hint = " (try " + strings.TrimSuffix(path, ".pub") + ")"
		}
		return fmt.Errorf("%w: %s is a public key; choose the matching private key%s", ErrNotPrivateKey, path, hint)
	case bytes.Contains(trimmed, []byte("PRIVATE KEY-----")):
		// PEM that looks like a key but does not parse: say why, without the content.
		return fmt.Errorf("%w: %s looks like a private key but cannot be read: %v", ErrNotPrivateKey, path, err)
	}
	return fmt.Errorf("%w: %s is not an SSH private key (OpenSSH, PEM or PKCS#8); choose a file like ~/.ssh/id_ed25519", ErrNotPrivateKey, path)
}

func isPublicKey(data []byte) bool {
	if _, _, _, _, err := ssh.ParseAuthorizedKey(data); err == nil {
		return true
	}
	return bytes.HasPrefix(data, []byte("---- BEGIN SSH2 PUBLIC KEY")) || bytes.Contains(data, []byte("PUBLIC KEY-----"))
}

// ShortenHome writes a path under home as "~/…" (the inverse of
// ExpandHome); home "" is the user's home directory.
func ShortenHome(path, home string) string {
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil || h == "" {
			return path
		}
		home = h
	}
	if rest, ok := strings.CutPrefix(path, strings.TrimSuffix(home, "/")+"/"); ok {
		return "~/" + rest
	}
	return path
}
