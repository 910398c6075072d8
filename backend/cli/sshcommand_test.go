package cli

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseSSHCommand(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		want    SSHCommand
		wantErr string
	}{
		{"every flag ssh knows", []string{"-4AqCfgTtx", "-b", "127.0.0.1", "-E", "/tmp/log", "-S", "none", "-l", "me", "-F", "/dev/null", "-NL", "1:h:2", "host"},
			SSHCommand{ForwardArgs: ForwardArgs{Locals: []string{"1:h:2"}, Options: map[string]string{}, Destination: "host"}, Login: "me", ConfigFile: "/dev/null", GatewayPorts: true, Background: true, NoCommand: true}, ""},
		{"flags again after the destination, then the command", []string{"host", "-R", "9:h:2", "uptime", "-L", "x"},
			SSHCommand{ForwardArgs: ForwardArgs{Remotes: []string{"9:h:2"}, Options: map[string]string{}, Destination: "host"}, Command: []string{"uptime", "-L", "x"}}, ""},
		{"-- ends the flags", []string{"-D1080", "--", "-host"},
			SSHCommand{ForwardArgs: ForwardArgs{Dynamics: []string{"1080"}, Options: map[string]string{}, Destination: "-host"}}, ""},
		{"forwards in -o", []string{"-oRemoteForward=9000 localhost:3000", "-o", "gatewayports=yes", "-o", "User=x", "h"},
			SSHCommand{ForwardArgs: ForwardArgs{Remotes: []string{"9000:localhost:3000"}, Options: map[string]string{"user": "x"}, Destination: "h"}, GatewayPorts: true}, ""},
		{"no destination", []string{"-N"}, SSHCommand{}, "no destination"},
		{"unknown flag", []string{"-Z", "h"}, SSHCommand{}, "unknown flag -Z"},
		{"missing value", []string{"h", "-i"}, SSHCommand{}, "-i needs a value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSSHCommand(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrSSHArgv) {
					t.Fatalf("err = %v, want %q wrapping ErrSSHArgv", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v, %v\nwant %+v", got, err, tc.want)
			}
		})
	}
}
