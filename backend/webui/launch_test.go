package webui

import (
	"net/http"
	"strings"
	"testing"
)

func TestLaunchURLIsSingleUse(t *testing.T) {
	ts := startServer(t, Options{})
	u, err := ts.s.LaunchURL(ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(u, ts.s.Token()) {
		t.Fatalf("launch URL %q carries the token", u)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/#token="+ts.s.Token() {
		t.Fatalf("first use: %d Location=%q; want 303 to the tokenised UI", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = noRedirect.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("second use: %d, want 403", resp.StatusCode)
	}
	resp, err = noRedirect.Get(ts.base + "/launch/made-up-code")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("made-up code: %d, want 403", resp.StatusCode)
	}
}
