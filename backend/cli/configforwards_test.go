package cli

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestConfigForwardSpec(t *testing.T) {
	for _, tt := range []struct {
		keyword, value, want, wantErr string
	}{
		{"LocalForward", "8080 localhost:80", "8080:localhost:80", ""},
		{"LocalForward", "  127.0.0.1:5432\tdb:5432 ", "127.0.0.1:5432:db:5432", ""},
		{"localforward", "[::1]:8080 [::1]:80", "[::1]:8080:[::1]:80", ""},
		{"LocalForward", "*:8080 web:80", "*:8080:web:80", ""},
		{"LocalForward", "/tmp/pg.sock /run/postgresql/.s.PGSQL.5432", "/tmp/pg.sock:/run/postgresql/.s.PGSQL.5432", ""},
		{"LocalForward", "8080", "", "want [bind_address:]port host:hostport"},
		{"LocalForward", "8080 a:1 extra", "", "want [bind_address:]port host:hostport"},
		{"RemoteForward", "9000 localhost:3000", "9000:localhost:3000", ""},
		{"RemoteForward", "0.0.0.0:9000 localhost:3000", "0.0.0.0:9000:localhost:3000", ""},
		{"RemoteForward", "1080", "1080", ""},
		{"RemoteForward", "", "", "want [bind_address:]port"},
		{"DynamicForward", "1080", "1080", ""},
		{"DynamicForward", "localhost:1080", "localhost:1080", ""},
		{"DynamicForward", "1080 1081", "", "want [bind_address:]port"},
		{"ProxyJump", "a", "", "not an ssh_config forward keyword"},
	} {
		got, err := ConfigForwardSpec(tt.keyword, tt.value)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s %q: %q, %v; want error %q", tt.keyword, tt.value, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s %q = %q, %v; want %q", tt.keyword, tt.value, got, err, tt.want)
		}
	}
}

func TestAddConfigForwards(t *testing.T) {
	cfgLocal, cfgRemote, cfgDyn := []string{"8080 localhost:80"}, []string{"9000 localhost:3000"}, []string{"1080"}
	for _, tt := range []struct {
		name     string
		cli      ForwardArgs
		clearAll bool
		want     ForwardArgs
		wantErr  string
	}{
		{"config after the command line", ForwardArgs{Locals: []string{"1:h:2"}},
			false, ForwardArgs{Locals: []string{"1:h:2", "8080:localhost:80"}, Remotes: []string{"9000:localhost:3000"}, Dynamics: []string{"1080"}}, ""},
		{"config only", ForwardArgs{},
			false, ForwardArgs{Locals: []string{"8080:localhost:80"}, Remotes: []string{"9000:localhost:3000"}, Dynamics: []string{"1080"}}, ""},
		{"ClearAllForwardings drops the config's", ForwardArgs{Remotes: []string{"0:localhost:22"}},
			true, ForwardArgs{Remotes: []string{"0:localhost:22"}}, ""},
		{"ClearAllForwardings and no flag", ForwardArgs{}, true, ForwardArgs{}, "no -L, -R or -D forward"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.cli
			err := a.AddConfigForwards(cfgLocal, cfgRemote, cfgDyn, tt.clearAll)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrForwardUsage) {
					t.Fatalf("err = %v, want %q wrapping the usage", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(a, tt.want) {
				t.Fatalf("got %+v, %v\nwant %+v", a, err, tt.want)
			}
		})
	}
	var a ForwardArgs
	if err := a.AddConfigForwards([]string{"8080"}, nil, nil, false); err == nil || !strings.Contains(err.Error(), "LocalForward") {
		t.Errorf("a bad line: %v, want an error naming LocalForward", err)
	}
}
