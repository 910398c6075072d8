package sshconn

import (
	"testing"
)

func TestIsPasswordRound(t *testing.T) {
	tests := []struct {
		name string
		q    []string
		echo []bool
		want bool
	}{
		{"PAM password", []string{"Password: "}, []bool{false}, true},
		{"user's password", []string{"root@host's password:"}, []bool{false}, true},
		{"OTP", []string{"Verification code: "}, []bool{false}, false},
		{"new password", []string{"New password: "}, []bool{false}, false},
		{"echoed", []string{"Password: "}, []bool{true}, false},
		{"two questions", []string{"Password: ", "Code: "}, []bool{false, false}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req = kiPrompt(tt.q, tt.echo)
			if got := req.IsPasswordRound(); got != tt.want {
				t.Fatalf("IsPasswordRound = %v", got)
			}
		})
	}
}

func kiPrompt(q []string, echo []bool) KIPrompt {
	req := KIPrompt{User: "u", Host: "h:22"}
	for i := range q {
		req.Questions = append(req.Questions, KIQuestion{Prompt: q[i], Echo: echo[i]})
	}
	return req
}
