package discovery

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole-app/porthole/internal/testrig"
)

// sshExecer runs commands over an SSH connection, one session each, with
// env as assignments before the command (sshd ignores "env" requests for
// HOME and PATH).
type sshExecer struct {
	c   *ssh.Client
	env [][2]string
}

func (e sshExecer) Exec(ctx context.Context, cmd string) ([]byte, error) {
	sess, err := e.c.NewSession()
	if err != nil {
		return nil, fmt.Errorf("open an SSH session: %w", err)
	}
	defer sess.Close()
	var pre strings.Builder
	for _, kv := range e.env {
		pre.WriteString(kv[0] + "=" + shQuote(kv[1]) + " ")
	}
	if pre.Len() > 0 {
		cmd = "export " + pre.String() + "; " + cmd
	}
	var out bytes.Buffer
	sess.Stdout = &out
	done := make(chan error, 1)
	go func() { done <- sess.Run(cmd) }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-ctx.Done():
		sess.Close()
		<-done
		return nil, ctx.Err()
	}
}

// treeListing describes every file and directory under root: path, mode,
// size and modification time.
func treeListing(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %d\n", p, info.Mode(), info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestListingWritesNothingOnTheServer runs a Scan and a Jupyter token
// lookup through SSH servers (the in-process one and the real OpenSSH
// sshd) with a HOME holding a runtime file, and a `jupyter` on PATH that,
// like the real one, would create ~/.local/share/jupyter/runtime: HOME is
// unchanged afterwards and jupyter never ran.
func TestListingWritesNothingOnTheServer(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("the proc branch needs Linux")
	}
	checkGoroutines(t)
	type server struct {
		name string
		dial func(t *testing.T) *ssh.Client
	}
	servers := []server{
		{"in-process", func(t *testing.T) *ssh.Client {
			key := testrig.NewTestKey(t)
			srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{AuthorizedKeys: []ssh.PublicKey{key.PublicKey()}, AllowExec: true})
			c, err := ssh.Dial("tcp", srv.Addr(), srv.ClientConfig(ssh.PublicKeys(key)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		}},
		{"sshd", func(t *testing.T) *ssh.Client {
			sd := testrig.NewSshd(t, testrig.SshdOptions{})
			c, err := ssh.Dial("tcp", sd.Addr, sd.ClientConfig())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		}},
	}
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			port := listenLoopback(t)
			home := t.TempDir()
			rt := filepath.Join(home, "rt")
			writeRuntimeFile(t, rt, fmt.Sprintf("jpserver-%d.json", os.Getpid()), jfile(os.Getpid(), port, secretToken))
			bin := t.TempDir()
			marker := filepath.Join(bin, "jupyter-ran")
			shim := "#!/bin/sh\nmkdir -p \"$HOME/.local/share/jupyter/runtime\"\n: >" + marker + "\nexit 0\n"
			if err := os.WriteFile(filepath.Join(bin, "jupyter"), []byte(shim), 0o755); err != nil {
				t.Fatal(err)
			}
			ex := sshExecer{c: srv.dial(t), env: [][2]string{
				{"HOME", home}, {"PATH", bin + ":" + os.Getenv("PATH")}, {"JUPYTER_RUNTIME_DIR", rt},
				{"JUPYTER_DATA_DIR", ""}, {"XDG_DATA_HOME", ""}, {"XDG_RUNTIME_DIR", ""},
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// The environment arrives (else this test proves nothing).
			if out, err := ex.Exec(ctx, `printf '%s\n' "$HOME"; command -v jupyter`); err != nil || string(out) != home+"\n"+filepath.Join(bin, "jupyter")+"\n" {
				t.Fatalf("environment not passed: %q, %v", out, err)
			}
			before := treeListing(t, home)

			s := NewScanner(ex, refusingDialer{}, Options{})
			if _, err := s.Scan(ctx); err != nil {
				t.Fatal(err)
			}
			js, ok, err := s.Jupyter(ctx, port)
			if err != nil || !ok || js.Token != secretToken {
				t.Errorf("Jupyter(%d) = %v, %v, %v", port, js, ok, err)
			}
			if got, err := JupyterServers(ctx, ex); err != nil || len(got) != 1 || got[0].Token != secretToken {
				t.Errorf("JupyterServers = %v, %v", got, err)
			}

			if after := treeListing(t, home); after != before {
				t.Errorf("HOME changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("jupyter was run")
			}
		})
	}
}

// refusingDialer refuses every probe: the test listeners are not apps.
type refusingDialer struct{}

func (refusingDialer) Dial(context.Context, string, int) (net.Conn, error) {
	return nil, fmt.Errorf("test: no probes")
}
