package leaks

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/porthole-app/porthole/backend/cli"
)

var commandLineCases = []struct {
	name    string
	argv    []string
	want    Command
	wantErr string
}{
	{"plain -L", []string{"ssh", "-N", "-L", "127.0.0.1:8080:127.0.0.1:80", "web1"},
		Command{Program: ProgramSSH, Destination: "web1", Host: "web1", Forwards: []ArgForward{
			{Kind: ForwardLocal, Spec: "127.0.0.1:8080:127.0.0.1:80", Bind: "127.0.0.1", Port: 8080, TargetHost: "127.0.0.1", TargetPort: 80}}}, ""},
	{"grouped flags, user, port, -g, options after the destination", []string{"/usr/bin/ssh", "-fNgL8080:db:5432", "-p", "2222", "alice@web1", "-D", "1080", "-o", "ServerAliveInterval=30"},
		Command{Program: ProgramSSH, Destination: "alice@web1", User: "alice", Host: "web1", Port: 2222, GatewayPorts: true, Forwards: []ArgForward{
			{Kind: ForwardLocal, Spec: "8080:db:5432", Port: 8080, TargetHost: "db", TargetPort: 5432},
			{Kind: ForwardDynamic, Spec: "1080", Port: 1080}}}, ""},
	{"-l wins over user@, -R and -J, -i, -F", []string{"ssh", "-l", "bob", "-J", "jump", "-i", "~/.ssh/k", "-F", "/tmp/cfg", "-R", "*:9000:localhost:3000", "alice@web1"},
		Command{Program: ProgramSSH, Destination: "alice@web1", User: "bob", Host: "web1", Jump: "jump", Identity: "~/.ssh/k", ConfigFile: "/tmp/cfg", Forwards: []ArgForward{
			{Kind: ForwardRemote, Spec: "*:9000:localhost:3000", Bind: "*", Port: 9000, TargetHost: "localhost", TargetPort: 3000}}}, ""},
	{"ssh:// destination with port", []string{"ssh", "-NL", "[::1]:8080:[::1]:80", "ssh://carol@[::1]:2200"},
		Command{Program: ProgramSSH, Destination: "ssh://carol@[::1]:2200", User: "carol", Host: "::1", Port: 2200, Forwards: []ArgForward{
			{Kind: ForwardLocal, Spec: "[::1]:8080:[::1]:80", Bind: "::1", Port: 8080, TargetHost: "::1", TargetPort: 80}}}, ""},
	{"forwards given as -o options", []string{"ssh", "-o", "LocalForward=8080 localhost:80", "-o", "GatewayPorts yes", "-o", "DynamicForward 1080", "h"},
		Command{Program: ProgramSSH, Destination: "h", Host: "h", GatewayPorts: true, Forwards: []ArgForward{
			{Kind: ForwardLocal, Spec: "8080:localhost:80", Port: 8080, TargetHost: "localhost", TargetPort: 80},
			{Kind: ForwardDynamic, Spec: "1080", Port: 1080}}}, ""},
	{"a remote command", []string{"ssh", "-L", "1:h:2", "host", "sleep", "-L", "3:h:4"},
		Command{Program: ProgramSSH, Destination: "host", Host: "host", Forwards: []ArgForward{
			{Kind: ForwardLocal, Spec: "1:h:2", Port: 1, TargetHost: "h", TargetPort: 2}}}, ""},
	{"autossh drops -M and -f", []string{"autossh", "-M", "0", "-f", "-N", "-L", "5432:localhost:5432", "db1"},
		Command{Program: ProgramAutossh, Destination: "db1", Host: "db1", Forwards: []ArgForward{
			{Kind: ForwardLocal, Spec: "5432:localhost:5432", Port: 5432, TargetHost: "localhost", TargetPort: 5432}}}, ""},
	{"autossh -M attached", []string{"/usr/lib/autossh/autossh", "-M20000", "-NR", "2222:localhost:22", "h"},
		Command{Program: ProgramAutossh, Destination: "h", Host: "h", Forwards: []ArgForward{
			{Kind: ForwardRemote, Spec: "2222:localhost:22", Port: 2222, TargetHost: "localhost", TargetPort: 22}}}, ""},
	{"Unix socket forwards", []string{"ssh", "-L", "/tmp/s.sock:localhost:80", "-L", "8080:/run/app.sock", "-R", "/tmp/r.sock:localhost:22", "h"},
		Command{Program: ProgramSSH, Destination: "h", Host: "h", Forwards: []ArgForward{
			{Kind: ForwardLocal, Spec: "/tmp/s.sock:localhost:80", BindPath: "/tmp/s.sock", TargetHost: "localhost", TargetPort: 80},
			{Kind: ForwardLocal, Spec: "8080:/run/app.sock", Port: 8080, TargetPath: "/run/app.sock"},
			{Kind: ForwardRemote, Spec: "/tmp/r.sock:localhost:22", BindPath: "/tmp/r.sock", TargetHost: "localhost", TargetPort: 22}}}, ""},
	{"a forward that cannot be read is kept with its error", []string{"ssh", "-L", "a:b:c:d:e", "h"},
		Command{Program: ProgramSSH, Destination: "h", Host: "h", Forwards: []ArgForward{
			{Kind: ForwardLocal, Spec: "a:b:c:d:e", Err: "x"}}}, ""},
	{"no forwards", []string{"ssh", "h"}, Command{Program: ProgramSSH, Destination: "h", Host: "h"}, ""},
	{"not ssh", []string{"sleep", "10"}, Command{}, "neither ssh nor autossh"},
	{"empty", nil, Command{}, "empty command line"},
	{"no destination", []string{"ssh", "-N", "-L", "1:h:2"}, Command{}, "no destination"},
	{"missing value", []string{"ssh", "h", "-L"}, Command{}, "-L needs a value"},
	{"unknown flag", []string{"ssh", "-Z", "h"}, Command{}, "unknown flag -Z"},
	{"bad port", []string{"ssh", "-p", "0", "h"}, Command{}, "1 to 65535"},
	{"user only", []string{"ssh", "-L", "1:h:2", "alice@"}, Command{}, "names no host"},
}

func TestParseCommandLine(t *testing.T) {
	for _, tc := range commandLineCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCommandLine(tc.argv)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, cli.ErrSSHArgv) {
					t.Fatalf("err = %v, want %q wrapping cli.ErrSSHArgv", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Errors are checked for presence only (their words belong to the forwarder).
			for i := range got.Forwards {
				if i < len(tc.want.Forwards) && tc.want.Forwards[i].Err != "" && got.Forwards[i].Err != "" {
					got.Forwards[i].Err = tc.want.Forwards[i].Err
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// FuzzParseCommandLine: any argv parses or fails with cli.ErrSSHArgv,
// never panics; a parsed command names a host, and each forward either has
// an error or ports in range.
func FuzzParseCommandLine(f *testing.F) {
	for _, tc := range commandLineCases {
		f.Add(strings.Join(tc.argv, "\x00"))
	}
	f.Fuzz(func(t *testing.T, joined string) {
		argv := strings.Split(joined, "\x00")
		c, err := ParseCommandLine(argv)
		if err != nil {
			if !errors.Is(err, cli.ErrSSHArgv) {
				t.Fatalf("%q: error %v does not wrap cli.ErrSSHArgv", argv, err)
			}
			return
		}
		if c.Host == "" {
			t.Fatalf("%q: parsed without a host: %+v", argv, c)
		}
		for _, fw := range c.Forwards {
			if fw.Err != "" || fw.BindPath != "" || fw.TargetPath != "" {
				continue
			}
			if fw.Port < 0 || fw.Port > 65535 || fw.TargetPort < 0 || fw.TargetPort > 65535 {
				t.Fatalf("%q: forward out of range: %+v", argv, fw)
			}
			if fw.Kind != ForwardDynamic && fw.TargetPort == 0 {
				t.Fatalf("%q: %s forward without a target port: %+v", argv, fw.Kind, fw)
			}
			// The rule made from it names the same port.
			r := RuleFor(Forward{Kind: fw.Kind, BindHost: fw.Bind, Port: fw.Port, TargetHost: fw.TargetHost, TargetPort: fw.TargetPort}, c.GatewayPorts, "x")
			if fw.Kind == ForwardRemote && r.RemotePort != fw.Port || fw.Kind != ForwardRemote && r.LocalPort != fw.Port {
				t.Fatalf("%q: rule %+v does not keep port %d", argv, r, fw.Port)
			}
		}
	})
}

func TestRuleFor(t *testing.T) {
	cases := []struct {
		name    string
		fw      Forward
		gateway bool
		want    string // kind localHost:localPort remoteHost:remotePort
	}{
		{"loopback by default", Forward{Kind: ForwardLocal, Port: 8080, TargetHost: "db", TargetPort: 5432}, false, "local 127.0.0.1:8080 db:5432"},
		{"-g: every interface", Forward{Kind: ForwardLocal, Port: 8080, TargetHost: "db", TargetPort: 5432}, true, "local 0.0.0.0:8080 db:5432"},
		{"*: every interface", Forward{Kind: ForwardLocal, BindHost: "*", Port: 8080, TargetHost: "db", TargetPort: 5432}, false, "local 0.0.0.0:8080 db:5432"},
		{"an explicit address", Forward{Kind: ForwardLocal, BindHost: "127.0.0.5", Port: 1, TargetHost: "h", TargetPort: 2}, true, "local 127.0.0.5:1 h:2"},
		{"dynamic", Forward{Kind: ForwardDynamic, BindHost: "localhost", Port: 1080}, false, "dynamic 127.0.0.1:1080 :0"},
		{"remote on the server's loopback", Forward{Kind: ForwardRemote, Port: 9000, TargetHost: "localhost", TargetPort: 3000}, true, "remote localhost:3000 :9000"},
		{"remote on every interface", Forward{Kind: ForwardRemote, BindHost: "*", Port: 9000, TargetHost: "localhost", TargetPort: 3000}, false, "remote localhost:3000 0.0.0.0:9000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := RuleFor(tc.fw, tc.gateway, "label")
			got := r.Kind.String() + " " + r.LocalHost + ":" + strconv.Itoa(r.LocalPort) + " " + r.RemoteHost + ":" + strconv.Itoa(r.RemotePort)
			if got != tc.want || r.Label != "label" {
				t.Errorf("RuleFor = %q (%+v), want %q", got, r, tc.want)
			}
		})
	}
}
