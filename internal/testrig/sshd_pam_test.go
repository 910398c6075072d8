package testrig

import (
	"strings"
	"testing"
)

var passdbCases = []struct {
	name string
	svc  string
	want string
}{
	{"ours", "auth     required /usr/lib/x/pam_wrapper/pam_matrix.so passdb=/tmp/d/passdb\naccount required x\n", "/tmp/d/passdb"},
	{"not auth first", "account  required /usr/lib/x/pam_matrix.so passdb=/tmp/d/passdb\n", ""},
	{"other module", "auth required pam_unix.so\n", ""},
	{"other file name", "auth required /x/pam_matrix.so passdb=/tmp/d/users\n", ""},
	{"empty", "", ""},
}

func TestTestrigPassdb(t *testing.T) {
	for _, tc := range passdbCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := testrigPassdb([]byte(tc.svc)); got != tc.want {
				t.Fatalf("testrigPassdb = %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzTestrigPassdb(f *testing.F) {
	for _, tc := range passdbCases {
		f.Add([]byte(tc.svc))
	}
	f.Fuzz(func(t *testing.T, svc []byte) {
		got := testrigPassdb(svc)
		if got == "" {
			return
		}
		if !strings.HasSuffix(got, "passdb") || !strings.Contains(string(svc), got) || !strings.HasPrefix(string(svc), "auth ") {
			t.Fatalf("testrigPassdb(%q) = %q", svc, got)
		}
	})
}

func TestPamWrapperSetupRejectsBadPasswords(t *testing.T) {
	for _, pw := range []string{"a:b", "line\nbreak", "nul\x00"} {
		if _, err := setupPamWrapper(t.TempDir(), "u", pw); err == nil {
			t.Errorf("password %q accepted", pw)
		}
	}
}
