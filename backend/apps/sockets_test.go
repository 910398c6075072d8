package apps

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/discovery"
)

func TestSocketHints(t *testing.T) {
	for _, tc := range []struct {
		path string
		port int
		hint string
	}{
		{"/var/run/docker.sock", 2375, "DOCKER_HOST=tcp://127.0.0.2:2375 docker ps"},
		{"/var/run/postgresql/.s.PGSQL.5433", 5433, "psql -h 127.0.0.2 -p 5433"},
		{"/var/run/mysqld/mysqld.sock", 3306, "mysql -h 127.0.0.2 -P 3306 --protocol=TCP"},
		{"/run/user/1000/app.sock", 8000, "connect to 127.0.0.2:8000"},
	} {
		k := discovery.KindOfSocketPath(tc.path)
		if p := socketPort(k, tc.path); p != tc.port {
			t.Errorf("socketPort(%s) = %d, want %d", tc.path, p, tc.port)
		}
		if h := socketHint(k, "127.0.0.2", tc.port); h != tc.hint {
			t.Errorf("socketHint(%s) = %q, want %q", tc.path, h, tc.hint)
		}
	}
	a, b := socketKeyHost("/var/run/docker.sock"), socketKeyHost("/run/docker.sock")
	if a == b || !strings.HasSuffix(a, ".unix.invalid") {
		t.Errorf("socketKeyHost: %q, %q", a, b)
	}
	if (&appForward{targetPath: "/x.sock"}).id() == (&appForward{targetPath: "/y.sock"}).id() {
		t.Error("two socket forwards share an ID")
	}
}

func TestForwardSocketBadInput(t *testing.T) {
	am := New(nil, nil, nil, nil, nil)
	for _, p := range []string{"", "docker.sock", "/a/../b", "/a:b", "/run/" + strings.Repeat("x", 120)} {
		if _, err := am.ForwardSocket(context.Background(), "srv", p); !errors.Is(err, apperr.ErrBadInput) {
			t.Errorf("ForwardSocket(%q) = %v, want bad input", p, err)
		}
	}
	if _, err := am.ForwardSocket(context.Background(), LocalServerID, "/var/run/docker.sock"); !errors.Is(err, apperr.ErrBadInput) {
		t.Errorf("ForwardSocket(local) = %v, want bad input", err)
	}
}
