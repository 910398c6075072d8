package sshconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// hostKeyChecker checks one hop's host key against known_hosts.
type hostKeyChecker struct {
	ctx      context.Context
	hop      *Config
	label    string
	prompter Prompter
	logger   *slog.Logger
	onStep   func(Step, string)
	wd       *watchdog

	saveTo string                // first user known_hosts file, where new keys go
	db     *knownhosts.HostKeyDB // nil when no known_hosts file exists
	name   string                // host:port looked up in known_hosts
	algos  []string              // HostKeyAlgorithms for the handshake; nil = library default

	err error // the reason the callback refused, reported instead of x/crypto's wrapped error
}

func newHostKeyChecker(ctx context.Context, hop *Config, files []string, global []string, label string, p Prompter, logger *slog.Logger, onStep func(Step, string), wd *watchdog) (*hostKeyChecker, error) {
	h := &hostKeyChecker{ctx: ctx, hop: hop, label: label, prompter: p, logger: logger, onStep: onStep, wd: wd, name: hop.knownHostsName()}
	if err := CheckKnownHostsName(h.name); err != nil {
		return nil, err
	}
	if len(files) > 0 {
		h.saveTo = files[0]
	}
	var existing []string
	for _, f := range append(slices.Clone(files), global...) {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("known_hosts file %s: %w", f, err)
		}
	}
	if len(existing) == 0 {
		return h, nil
	}
	db, err := knownhosts.NewDB(existing...)
	if err != nil {
		return nil, fmt.Errorf("reading known_hosts (%v): %w; fix or delete the offending line", existing, err)
	}
	h.db = db
	// Offer the key types known_hosts holds for this host first, so the
	// server shows the key we know instead of another type (which would look
	// like a changed key). Other types stay after them: a server that no
	// longer has the known type shows a new key, which is asked about, not
	// reported as a mismatch.
	if known := db.HostKeyAlgorithms(h.name); len(known) > 0 {
		supported := ssh.SupportedAlgorithms().HostKeys
		for _, a := range known {
			if slices.Contains(supported, a) {
				h.algos = append(h.algos, a)
			}
		}
		for _, a := range supported {
			if !slices.Contains(h.algos, a) {
				h.algos = append(h.algos, a)
			}
		}
	}
	return h, nil
}

func baseKeyType(k ssh.PublicKey) string {
	if c, ok := k.(*ssh.Certificate); ok {
		return c.Key.Type()
	}
	return k.Type()
}

// check is the ssh.HostKeyCallback.
func (h *hostKeyChecker) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := h.verify(hostname, remote, key)
	if err != nil {
		h.err = err
	}
	return err
}

func (h *hostKeyChecker) verify(hostname string, remote net.Addr, key ssh.PublicKey) error {
	fp := ssh.FingerprintSHA256(key)
	if h.onStep != nil {
		h.onStep(StepHostKey, fmt.Sprintf("%s: %s %s", h.label, key.Type(), fp))
	}
	display := knownhosts.Normalize(h.name)
	var otherTypes []string
	if h.db != nil {
		err := h.db.HostKeyCallback()(h.name, remote, key)
		if err == nil {
			h.logger.Debug("host key matches known_hosts", "type", key.Type(), "fingerprint", fp)
			return nil
		}
		var revoked *xknownhosts.RevokedError
		if errors.As(err, &revoked) {
			return fmt.Errorf("%w: %s presented the %s key %s, which %s:%d marks @revoked; do not connect and ask the server's administrator",
				ErrHostKeyRevoked, display, key.Type(), fp, revoked.Revoked.Filename, revoked.Revoked.Line)
		}
		var keyErr *xknownhosts.KeyError
		if !errors.As(err, &keyErr) {
			return fmt.Errorf("checking the host key of %s: %w", display, err)
		}
		mm := &HostKeyMismatchError{Host: display, KeyType: key.Type(), Fingerprint: fp}
		for _, w := range keyErr.Want {
			if baseKeyType(w.Key) == baseKeyType(key) {
				mm.Known = append(mm.Known, KnownKey{Type: w.Key.Type(), Fingerprint: ssh.FingerprintSHA256(w.Key), File: w.Filename, Line: w.Line})
			} else if !slices.Contains(otherTypes, w.Key.Type()) {
				otherTypes = append(otherTypes, w.Key.Type())
			}
		}
		if len(mm.Known) > 0 {
			h.logger.Warn("host key mismatch", "host", display, "type", key.Type(), "fingerprint", fp)
			return mm
		}
	}

	// Unknown host (or a key type not recorded yet).
	switch h.hop.StrictHostKeyChecking {
	case StrictYes:
		return fmt.Errorf("%w: %s (%s key %s) is not in known_hosts and StrictHostKeyChecking is yes; add its key to %s first",
			ErrHostKeyUnknown, display, key.Type(), fp, h.saveToOrNone())
	case StrictAcceptNew:
		h.logger.Info("adding new host key (StrictHostKeyChecking accept-new)", "host", display, "type", key.Type(), "fingerprint", fp)
		h.save(key)
		return nil
	}
	if h.prompter == nil {
		return fmt.Errorf("%w: %s (%s key %s) is not in known_hosts and there is no one to ask; add its key to %s first",
			ErrHostKeyUnknown, display, key.Type(), fp, h.saveToOrNone())
	}
	req := HostKeyPrompt{
		Host: display, Address: h.hop.Addr(), KeyType: key.Type(), Fingerprint: fp,
		KnownHostsFile: h.saveTo, OtherKnownTypes: otherTypes, Hop: h.label,
	}
	h.wd.pause()
	decision, err := h.prompter.UnknownHost(h.ctx, req)
	h.wd.resume()
	if err != nil {
		return fmt.Errorf("asking about the host key of %s: %w", display, err)
	}
	h.logger.Info("unknown host key", "host", display, "type", key.Type(), "fingerprint", fp, "decision", decision.String())
	switch decision {
	case AcceptOnce:
		return nil
	case AcceptAndSave:
		h.save(key)
		return nil
	}
	return fmt.Errorf("%w: you did not accept the %s key %s of %s", ErrHostKeyRejected, key.Type(), fp, display)
}

func (h *hostKeyChecker) saveToOrNone() string {
	if h.saveTo == "" {
		return "a known_hosts file"
	}
	return h.saveTo
}

// save appends key to the first known_hosts file. Failing to save is logged,
// not fatal (the user already accepted the key), as with OpenSSH.
func (h *hostKeyChecker) save(key ssh.PublicKey) {
	if h.saveTo == "" {
		h.logger.Warn("cannot save host key: no UserKnownHostsFile")
		return
	}
	if err := AppendKnownHost(h.saveTo, h.name, key, h.hop.HashKnownHosts); err != nil {
		h.logger.Warn("cannot save host key", "file", h.saveTo, "err", err)
	}
}

var knownHostsMu sync.Mutex

// knownHostsSpecial are the characters that mean something in a
// known_hosts host field: '|' starts a hashed name ("|1|salt|hash"), '#' a
// comment, '@' a marker (@cert-authority, @revoked), ',' separates names,
// '*', '?' and '!' are patterns, '[' and ']' enclose a name with a port.
const knownHostsSpecial = "|#@,*?![]\\"

// CheckKnownHostsName returns nil if hostWithPort ("host:port", or a bare
// host) can be recorded in known_hosts as one literal name, else an error
// wrapping ErrConfig. A name with whitespace, control characters or
// known_hosts syntax could otherwise write a forged entry (a hashed name
// matching another host, a marker, a pattern, a second field).
func CheckKnownHostsName(hostWithPort string) error {
	host, port, err := net.SplitHostPort(hostWithPort)
	if err != nil {
		host, port = hostWithPort, ""
	}
	bad := func(why string) error {
		return fmt.Errorf("%w: host name %q %s; it cannot be recorded in known_hosts", ErrConfig, hostWithPort, why)
	}
	switch {
	case host == "":
		return bad("is empty")
	case len(host) > 255:
		return bad("is longer than 255 characters")
	case !utf8.ValidString(host):
		return bad("is not valid UTF-8")
	case strings.ContainsFunc(host, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return bad("contains whitespace or control characters")
	case strings.ContainsAny(host, knownHostsSpecial):
		return bad("contains one of " + knownHostsSpecial)
	case strings.Contains(host, ":") && net.ParseIP(strings.SplitN(host, "%", 2)[0]) == nil:
		// A fuzz finding: "[:]:22" passed, and its line named "[]:".
		return bad("contains ':' but is not an IPv6 address")
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return bad("has an invalid port")
		}
	}
	return nil
}

// AppendKnownHost appends a known_hosts line for hostWithPort ("host:port")
// and key to file, creating the file (0600) and its directory (0700) if
// needed. The line is written with a single O_APPEND write, so concurrent
// writers (other Porthole connections, or ssh itself) never interleave.
// With hash, the host name is hashed like OpenSSH's HashKnownHosts. A name
// CheckKnownHostsName refuses is not written.
func AppendKnownHost(file, hostWithPort string, key ssh.PublicKey, hash bool) error {
	if err := CheckKnownHostsName(hostWithPort); err != nil {
		return err
	}
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("creating the directory of %s: %w", file, err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening %s: %w", file, err)
	}
	host := knownhosts.Normalize(hostWithPort)
	if hash {
		host = xknownhosts.HashHostname(host)
	}
	line := knownhosts.Line([]string{host}, key) + "\n"
	if hash {
		// Line normalizes its input; a hashed name must be written as is.
		line = host + " " + key.Type() + " " + string(ssh.MarshalAuthorizedKey(key)[len(key.Type())+1:])
	}
	if needsNewline(file) {
		line = "\n" + line
	}
	if _, err := io.WriteString(f, line); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}

// needsNewline reports whether file is non-empty and does not end in '\n'.
func needsNewline(file string) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return false
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, st.Size()-1); err != nil {
		return false
	}
	return b[0] != '\n'
}
