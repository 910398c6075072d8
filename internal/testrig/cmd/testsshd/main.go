// Command testsshd runs the test rig's real OpenSSH sshd (testrig.StartSshd)
// in its own process, for end-to-end tests of the UI (frontend/e2e).
//
//	testsshd [-password PW] [-host-key-types ed25519[,rsa]] [-hosts NAME=IP,…] [-v]
//
// -hosts gives names only this sshd resolves (testrig.SshdOptions.Hosts:
// a private mount namespace with its own /etc/hosts; needs root).
//
// It prints one JSON line on stdout once sshd answers:
//
//	{"addr":"127.0.0.1:PORT","host":"127.0.0.1","port":PORT,"user":"root",
//	 "password":"…","knownHosts":"/tmp/…/known_hosts","clientKey":"/tmp/…/id_ed25519",
//	 "hostKeys":[{"type":"ssh-ed25519","fingerprint":"SHA256:…"}],
//	 "hostKeyFingerprints":["SHA256:…"],"dir":"/tmp/…"}
//
// Commands, one per line on stdin (each answers with a new JSON line):
//
//	rekey     give sshd new host keys and restart it (a "changed host key")
//	restart   restart sshd with the same keys (a reboot)
//	stop      kill sshd and every session, and keep it down (the server is unreachable)
//	start     start it again after stop (same port and keys)
//
// It stops sshd and exits when stdin closes, or on SIGINT/SIGTERM.
package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole-app/porthole/internal/testrig"
)

type hostKey struct {
	Type        string `json:"type"`
	Fingerprint string `json:"fingerprint"`
}

type info struct {
	Addr                string    `json:"addr"`
	Host                string    `json:"host"`
	Port                int       `json:"port"`
	User                string    `json:"user"`
	Password            string    `json:"password"`
	KnownHosts          string    `json:"knownHosts"`
	ClientKey           string    `json:"clientKey"`
	HostKeys            []hostKey `json:"hostKeys"`
	HostKeyFingerprints []string  `json:"hostKeyFingerprints"`
	Dir                 string    `json:"dir"`
	Event               string    `json:"event"` // "started", "rekeyed", "restarted", "stopped"
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "testsshd:", err)
		os.Exit(1)
	}
}

func run() error {
	password := flag.String("password", "porthole-e2e", "password of the sshd's user (through pam_wrapper)")
	types := flag.String("host-key-types", "ed25519", "host key types, comma-separated: ed25519, rsa")
	verbose := flag.Bool("v", false, "debug logs on stderr")
	hostsFlag := flag.String("hosts", "", "NAME=IP,… names only this sshd resolves (needs root)")
	flag.Parse()
	var hosts map[string]string
	for _, kv := range strings.Split(*hostsFlag, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		n, ip, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("-hosts: %q is not NAME=IP", kv)
		}
		if hosts == nil {
			hosts = map[string]string{}
		}
		hosts[n] = ip
	}

	var log *slog.Logger
	if *verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	s, err := testrig.StartSshd(startCtx, testrig.SshdOptions{
		Password:     *password,
		HostKeyTypes: strings.Split(*types, ","),
		Hosts:        hosts,
		Logger:       log,
	})
	cancel()
	if err != nil {
		return err
	}
	defer s.Close()

	keys := s.HostKeys
	out := json.NewEncoder(os.Stdout)
	emit := func(event string) error {
		in := info{
			Addr: s.Addr, Host: s.Host, Port: s.Port, User: s.User, Password: *password,
			KnownHosts: s.KnownHostsPath, ClientKey: s.ClientKeyPath, Dir: s.Dir, Event: event,
			HostKeys: []hostKey{}, HostKeyFingerprints: []string{},
		}
		for _, k := range keys {
			fp := ssh.FingerprintSHA256(k)
			in.HostKeys = append(in.HostKeys, hostKey{Type: k.Type(), Fingerprint: fp})
			in.HostKeyFingerprints = append(in.HostKeyFingerprints, fp)
		}
		return out.Encode(in)
	}
	if err := emit("started"); err != nil {
		return fmt.Errorf("print: %w", err)
	}

	lines := make(chan string)
	go func() { // ends when stdin closes (or the process exits)
		defer close(lines)
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- strings.TrimSpace(sc.Text())
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				return nil // stdin closed: our parent is gone
			}
			switch line {
			case "":
			case "rekey":
				k, err := rekey(ctx, s)
				if err != nil {
					return fmt.Errorf("rekey: %w", err)
				}
				keys = k
				if err := emit("rekeyed"); err != nil {
					return err
				}
			case "restart":
				if err := s.Restart(ctx); err != nil {
					return err
				}
				if err := emit("restarted"); err != nil {
					return err
				}
			case "stop":
				if err := s.Stop(); err != nil {
					return err
				}
				if err := emit("stopped"); err != nil {
					return err
				}
			case "start":
				if err := s.Restart(ctx); err != nil {
					return err
				}
				if err := emit("restarted"); err != nil {
					return err
				}
			default:
				fmt.Fprintf(os.Stderr, "testsshd: unknown command %q (known: rekey, restart, stop, start)\n", line)
			}
		}
	}
}

// rekey stops sshd, writes new host keys over the files its config names,
// and starts it again on the same port.
func rekey(ctx context.Context, s *testrig.Sshd) ([]ssh.PublicKey, error) {
	cfg, err := os.ReadFile(s.ConfigPath)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, l := range strings.Split(string(cfg), "\n") {
		if f := strings.Fields(l); len(f) == 2 && strings.EqualFold(f[0], "HostKey") {
			paths = append(paths, f[1])
		}
	}
	if len(paths) == 0 {
		return nil, errors.New("no HostKey lines in " + s.ConfigPath)
	}
	if err := s.Stop(); err != nil {
		return nil, err
	}
	var pubs []ssh.PublicKey
	for _, p := range paths {
		pub, err := newHostKey(p)
		if err != nil {
			return nil, err
		}
		pubs = append(pubs, pub)
	}
	if err := s.Restart(ctx); err != nil {
		return nil, err
	}
	return pubs, nil
}

// newHostKey replaces the key at path with a new one of the same type.
func newHostKey(path string) (ssh.PublicKey, error) {
	old, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(old)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var priv crypto.PrivateKey
	switch signer.PublicKey().Type() {
	case ssh.KeyAlgoED25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case ssh.KeyAlgoRSA:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("%s: cannot make a new %s key", path, signer.PublicKey().Type())
	}
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "porthole-testsshd-rekeyed")
	if err != nil {
		return nil, err
	}
	ns, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	if err := writeFile(path, pem.EncodeToMemory(block)); err != nil {
		return nil, err
	}
	if err := writeFile(path+".pub", ssh.MarshalAuthorizedKey(ns.PublicKey())); err != nil {
		return nil, err
	}
	return ns.PublicKey(), nil
}

func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".rekey-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, strings.NewReader(string(data))); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
