package cli

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

var forwardArgsCases = []struct {
	name    string
	args    []string
	want    ForwardArgs
	wantErr string
}{
	{"basic", []string{"-L", "8080:localhost:80", "host"},
		ForwardArgs{Locals: []string{"8080:localhost:80"}, Options: map[string]string{}, Destination: "host"}, ""},
	{"attached and grouped", []string{"-NvL8080:localhost:80", "-p2222", "-i", "k1", "-ik2", "me@host"},
		ForwardArgs{Locals: []string{"8080:localhost:80"}, Port: 2222, Identities: []string{"k1", "k2"}, Verbose: true, Options: map[string]string{}, Destination: "me@host"}, ""},
	{"options and jump", []string{"-o", "UserKnownHostsFile=/tmp/kh", "-o", "ConnectTimeout 5", "-J", "a,b", "-L", "1:h:2", "-L", "[::1]:3:h:4", "-c", "aes128-gcm@openssh.com", "h"},
		ForwardArgs{Locals: []string{"1:h:2", "[::1]:3:h:4"}, Jump: "a,b", Cipher: "aes128-gcm@openssh.com", Options: map[string]string{"userknownhostsfile": "/tmp/kh", "connecttimeout": "5"}, Destination: "h"}, ""},
	{"double dash", []string{"-L", "1:h:2", "--", "host"},
		ForwardArgs{Locals: []string{"1:h:2"}, Options: map[string]string{}, Destination: "host"}, ""},
	{"dynamic only", []string{"-D", "1080", "host"},
		ForwardArgs{Dynamics: []string{"1080"}, Options: map[string]string{}, Destination: "host"}, ""},
	{"dynamic mixed with local", []string{"-ND1080", "-L", "1:h:2", "-D", "[::1]:1081", "h"},
		ForwardArgs{Locals: []string{"1:h:2"}, Dynamics: []string{"1080", "[::1]:1081"}, Options: map[string]string{}, Destination: "h"}, ""},
	{"no destination", []string{"-L", "1:h:2"}, ForwardArgs{}, "no destination"},
	{"no forward (the config may have some)", []string{"host"}, ForwardArgs{Options: map[string]string{}, Destination: "host"}, ""},
	{"dynamic missing value", []string{"host", "-D"}, ForwardArgs{}, "-D needs a value"},
	{"remote and local", []string{"-R", "8080:localhost:80", "-L1:h:2", "-R0:127.0.0.1:22", "host"},
		ForwardArgs{Locals: []string{"1:h:2"}, Remotes: []string{"8080:localhost:80", "0:127.0.0.1:22"}, Options: map[string]string{}, Destination: "host"}, ""},
	{"remote only", []string{"-NR*:9000:localhost:9000", "host"},
		ForwardArgs{Remotes: []string{"*:9000:localhost:9000"}, Options: map[string]string{}, Destination: "host"}, ""},
	{"remote command", []string{"-L", "1:h:2", "host", "ls"}, ForwardArgs{}, "no remote command"},
	{"missing value", []string{"host", "-L"}, ForwardArgs{}, "-L needs a value"},
	{"bad port", []string{"-p", "70000", "-L", "1:h:2", "host"}, ForwardArgs{}, "1 to 65535"},
	{"bad option", []string{"-o", "NoValue", "-L", "1:h:2", "host"}, ForwardArgs{}, "expected Key=Value"},
	{"unknown flag", []string{"-X", "-L", "1:h:2", "host"}, ForwardArgs{}, "unknown flag -X"},
}

func TestParseForwardArgs(t *testing.T) {
	for _, tt := range forwardArgsCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseForwardArgs(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrForwardUsage) {
					t.Fatalf("err = %v, want %q wrapping the usage", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, %v\nwant %+v", got, err, tt.want)
			}
		})
	}
}

func FuzzParseForwardArgs(f *testing.F) {
	for _, tt := range forwardArgsCases {
		f.Add(strings.Join(tt.args, "\x00"))
	}
	f.Fuzz(func(t *testing.T, joined string) {
		a, err := ParseForwardArgs(strings.Split(joined, "\x00"))
		if err == nil && a.Destination == "" {
			t.Fatalf("accepted %q without destination: %+v", joined, a)
		}
		if err == nil && a.AddConfigForwards(nil, nil, nil, false) == nil && len(a.Locals)+len(a.Remotes)+len(a.Dynamics) == 0 {
			t.Fatalf("accepted %q without forward: %+v", joined, a)
		}
		if err != nil && !errors.Is(err, ErrForwardUsage) {
			t.Fatalf("error %v does not wrap the usage", err)
		}
	})
}
