package discovery

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole-app/porthole/internal/testrig"
)

var socketListing = strings.Join([]string{
	"porthole-sockets v1",
	"U 1000 alice",
	"S none",
	"X docker\t/var/run/docker.sock",
	"X postgres\t/var/run/postgresql/.s.PGSQL.5432",
	"X mysql\t/tmp/mysql.sock",
	"X socket\t/run/user/1000/app.sock",
	"X docker\trelative.sock",
	"X nonsense\t/x",
	"X docker",
	"E",
}, "\n")

func TestParseSocketRecords(t *testing.T) {
	l, err := parseListing([]byte(socketListing), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Socket{
		{Path: "/var/run/docker.sock", Kind: SocketDocker},
		{Path: "/var/run/postgresql/.s.PGSQL.5432", Kind: SocketPostgres, Port: 5432},
		{Path: "/tmp/mysql.sock", Kind: SocketMySQL},
		{Path: "/run/user/1000/app.sock", Kind: SocketOther},
	}
	if !slices.Equal(l.unix, want) {
		t.Fatalf("sockets %+v, want %+v", l.unix, want)
	}
	if l.skipped != 3 {
		t.Errorf("skipped %d lines, want 3", l.skipped)
	}
	for _, tc := range []struct {
		path string
		kind SocketKind
	}{
		{"/run/docker.sock", SocketDocker}, {"/tmp/.s.PGSQL.6543", SocketPostgres},
		{"/run/mysqld/mysqld.sock", SocketMySQL}, {"/run/user/1/bus", SocketOther},
	} {
		if k := KindOfSocketPath(tc.path); k != tc.kind {
			t.Errorf("KindOfSocketPath(%s) = %v, want %v", tc.path, k, tc.kind)
		}
	}
	for k := range socketKindCount {
		if back, err := ParseSocketKind(k.String()); err != nil || back != k {
			t.Errorf("ParseSocketKind(%v) = %v, %v", k, back, err)
		}
	}
}

func FuzzParseSocketRecord(f *testing.F) {
	for _, line := range strings.Split(socketListing, "\n") {
		if rest, ok := strings.CutPrefix(line, "X "); ok {
			f.Add(rest)
		}
	}
	f.Fuzz(func(t *testing.T, rest string) {
		s, err := parseSocketRecord(rest)
		if err != nil {
			return
		}
		if !strings.HasPrefix(s.Path, "/") || s.Port < 0 || s.Port > 65535 || s.Kind < 0 || s.Kind >= socketKindCount {
			t.Fatalf("bad socket accepted: %+v", s)
		}
	})
}

// TestSocketDiscoveryReadOnly lists, through a real sshd, a docker-style
// socket in a directory given in Options.SocketDirs and the user's own
// socket in XDG_RUNTIME_DIR, with the real script in every shell: the
// sockets are found with their kinds, and nothing under those directories
// (or HOME) changes.
func TestSocketDiscoveryReadOnly(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("needs Linux")
	}
	checkGoroutines(t)
	sockDir, rt, home := t.TempDir(), t.TempDir(), t.TempDir()
	for _, p := range []string{filepath.Join(sockDir, "docker.sock"), filepath.Join(rt, "app.sock")} {
		ln, err := net.Listen("unix", p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
	}
	if err := os.WriteFile(filepath.Join(sockDir, "not-a-socket"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, ex Execer) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		before := treeListing(t, sockDir) + treeListing(t, rt) + treeListing(t, home)
		s := NewScanner(ex, refusingDialer{}, Options{SocketDirs: []string{sockDir}})
		if _, err := s.Scan(ctx); err != nil {
			t.Fatal(err)
		}
		got := s.Sockets()
		for _, want := range []Socket{
			{Path: filepath.Join(sockDir, "docker.sock"), Kind: SocketDocker},
			{Path: filepath.Join(rt, "app.sock"), Kind: SocketOther},
		} {
			if !slices.Contains(got, want) {
				t.Errorf("sockets %+v lack %+v", got, want)
			}
		}
		for _, s := range got {
			if strings.HasSuffix(s.Path, "not-a-socket") {
				t.Errorf("a plain file was listed: %+v", s)
			}
		}
		if after := treeListing(t, sockDir) + treeListing(t, rt) + treeListing(t, home); after != before {
			t.Errorf("the listing wrote on the server:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	}
	t.Run("sshd", func(t *testing.T) {
		sd := testrig.NewSshd(t, testrig.SshdOptions{ExtraConfig: []string{"SetEnv SHLVL=9"}})
		c, err := ssh.Dial("tcp", sd.Addr, sd.ClientConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		check(t, sshExecer{c: c, env: [][2]string{{"HOME", home}, {"XDG_RUNTIME_DIR", rt}}})
	})
	for _, sh := range shells() {
		t.Run(sh, func(t *testing.T) {
			check(t, shellExecer{shell: sh, env: []string{"HOME=" + home, "XDG_RUNTIME_DIR=" + rt}})
		})
	}
}
