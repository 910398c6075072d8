package ui

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"github.com/porthole-app/porthole/backend/prompts"
	"github.com/porthole-app/porthole/backend/servers"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/porthole-app/porthole/backend/profiles"
	"github.com/porthole-app/porthole/internal/testrig"
)

func writeTestKey(t *testing.T, dir string) string {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ssh.MarshalPrivateKey(k, "test")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "id_test")
	if err := os.WriteFile(p, pem.EncodeToMemory(b), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeEncryptedKey(t *testing.T, dir string) string {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ssh.MarshalPrivateKeyWithPassphrase(k, "test", []byte("pass phrase"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "id_encrypted")
	if err := os.WriteFile(p, pem.EncodeToMemory(b), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const testPassword = "Corr3ct-h0rse-battery"

// addServerFor saves a profile that reaches addr as user.
func addServerFor(t *testing.T, ta *testApp, name, addr, user string) profiles.Profile {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	p, err := ta.app.AddServer(profiles.Profile{Name: name, Host: host, Port: n, User: user})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// acceptHostKey answers the host-key prompt of server id after checking its fingerprint.
func acceptHostKey(t *testing.T, ta *testApp, id string, key ssh.PublicKey, choice prompts.HostKeyChoice) {
	t.Helper()
	p := waitPrompt(t, ta.app, id, prompts.PromptHostKey)
	if p.HostKey == nil || p.HostKey.Fingerprint != ssh.FingerprintSHA256(key) || p.HostKey.KeyType != key.Type() {
		t.Fatalf("host key prompt %+v; want %s %s", p.HostKey, key.Type(), ssh.FingerprintSHA256(key))
	}
	if p.HostKey.KnownHostsFile != filepath.Join(ta.home, ".ssh", "known_hosts") {
		t.Fatalf("the key would be saved to %q", p.HostKey.KnownHostsFile)
	}
	if err := ta.app.AnswerPrompt(p.ID, prompts.PromptAnswer{HostKey: choice}); err != nil {
		t.Fatal(err)
	}
}

func answerPassword(t *testing.T, ta *testApp, id, pw string, remember bool) prompts.Prompt {
	t.Helper()
	p := waitPrompt(t, ta.app, id, prompts.PromptPassword)
	if err := ta.app.AnswerPrompt(p.ID, prompts.PromptAnswer{Secret: pw, Remember: remember}); err != nil {
		t.Fatal(err)
	}
	return p
}

// noSecretAnywhere checks that a secret is in no event, log line or file.
func noSecretAnywhere(t *testing.T, ta *testApp, id, secret string) {
	t.Helper()
	for _, e := range ta.rec.all() {
		if strings.Contains(e.json, secret) {
			t.Errorf("event %s contains the secret: %s", e.topic, e.json)
		}
	}
	if strings.Contains(ta.logs.String(), secret) {
		t.Error("the app log contains the secret")
	}
	v, _ := ta.app.ServerLog(id)
	for _, l := range v.Lines {
		if strings.Contains(l, secret) {
			t.Errorf("server log line contains the secret: %s", l)
		}
	}
	if data, err := os.ReadFile(ta.store.Path()); err != nil || strings.Contains(string(data), secret) {
		t.Errorf("profiles.json holds the secret (or is unreadable: %v)", err)
	}
}

func TestConnectPasswordRememberThenNoPrompt(t *testing.T) {
	forEachLogin(t, func(t *testing.T, agents bool) {
		srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{Password: testPassword})
		ta := newTestApp(t, testAppOptions{agents: agents})
		p := addServerFor(t, ta, "in-process", srv.Addr(), srv.User())

		ch := connectAsync(ta.app, p.ID)
		acceptHostKey(t, ta, p.ID, srv.HostKey(), prompts.HostKeyAcceptAlways)
		pr := answerPassword(t, ta, p.ID, testPassword, true)
		if !pr.CanRemember || pr.Remember || pr.Notice != "" || pr.Title != "Password for tester@"+srv.Addr() || pr.ServerName != "in-process" {
			t.Fatalf("first password prompt = %+v", pr)
		}
		res := waitConnect(t, ch)
		if res.err != nil || res.sum.State != servers.ServerConnected || res.sum.LastError != nil {
			t.Fatalf("Connect = %+v, %v", res.sum, res.err)
		}
		var steps []string
		for _, s := range res.sum.Progress {
			steps = append(steps, s.Step)
		}
		if strings.Join(steps, ",") != "resolving,connecting,host key,authenticating,ready" {
			t.Fatalf("progress steps %v", steps)
		}
		if n := ta.rec.count(servers.TopicServerProgress.Name(), nil); n < 5 {
			t.Fatalf("%d server.progress events; want one per step", n)
		}
		if v, err := ta.secrets.Get(p.ID, profiles.SecretPassword); err != nil || v != testPassword {
			t.Fatalf("saved password = %q, %v", v, err)
		}
		kh, err := os.ReadFile(filepath.Join(ta.home, ".ssh", "known_hosts"))
		if err != nil || !strings.Contains(string(kh), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(srv.HostKey())))[len("ssh-ed25519 "):]) {
			t.Fatalf("known_hosts %q, %v; want the server's key", kh, err)
		}

		// Disconnect, connect again: no question at all.
		sum, err := ta.app.Disconnect(p.ID)
		if err != nil || sum.State != servers.ServerDisconnected {
			t.Fatalf("Disconnect = %+v, %v", sum, err)
		}
		asked := ta.rec.count(prompts.TopicPrompts.Name(), func(d any) bool { return len(d.([]prompts.Prompt)) > 0 })
		res = waitConnect(t, connectAsync(ta.app, p.ID))
		if res.err != nil || res.sum.State != servers.ServerConnected {
			t.Fatalf("second Connect = %+v, %v", res.sum, res.err)
		}
		if again := ta.rec.count(prompts.TopicPrompts.Name(), func(d any) bool { return len(d.([]prompts.Prompt)) > 0 }); again != asked {
			t.Fatalf("the second connection asked %d question(s)", again-asked)
		}
		v, _ := ta.app.ServerLog(p.ID)
		if !strings.Contains(strings.Join(v.Lines, "\n"), "using the password saved in the keyring") || v.Seq == 0 {
			t.Fatalf("server log does not say the saved password was used:\n%s", strings.Join(v.Lines, "\n"))
		}
		if ta.rec.count(servers.TopicServerLog.Name(), nil) == 0 {
			t.Fatal("no server.log events")
		}
		noSecretAnywhere(t, ta, p.ID, testPassword)
	})
}

func TestConnectWrongPasswordThenRetryInTheSamePrompt(t *testing.T) {
	forEachLogin(t, func(t *testing.T, agents bool) {
		srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{Password: testPassword})
		ta := newTestApp(t, testAppOptions{agents: agents})
		p := addServerFor(t, ta, "s", srv.Addr(), srv.User())

		ch := connectAsync(ta.app, p.ID)
		acceptHostKey(t, ta, p.ID, srv.HostKey(), prompts.HostKeyAcceptOnce)
		first := answerPassword(t, ta, p.ID, "wrong-password", false)
		second := waitPrompt(t, ta.app, p.ID, prompts.PromptPassword)
		if second.ID == first.ID || second.Attempt != 2 || second.Notice != "That password was not accepted. Try again." {
			t.Fatalf("retry prompt = %+v", second)
		}
		if err := ta.app.AnswerPrompt(second.ID, prompts.PromptAnswer{Secret: testPassword}); err != nil {
			t.Fatal(err)
		}
		if res := waitConnect(t, ch); res.err != nil || res.sum.State != servers.ServerConnected {
			t.Fatalf("Connect = %+v, %v", res.sum, res.err)
		}
		if ta.secrets.Len() != 0 {
			t.Fatal("a password was saved without remember")
		}
		// Accept once: no key written to known_hosts. (The sandboxed agent
		// may create it empty: Landlock grants access to existing files only.)
		if b, err := os.ReadFile(filepath.Join(ta.home, ".ssh", "known_hosts")); err == nil && len(b) > 0 {
			t.Fatalf("accept-once wrote known_hosts: %q", b)
		}
		noSecretAnywhere(t, ta, p.ID, testPassword)
		noSecretAnywhere(t, ta, p.ID, "wrong-password")
	})
}

func TestConnectEveryPasswordWrongFailsInPlainWordsThenRetryWorks(t *testing.T) {
	forEachLogin(t, func(t *testing.T, agents bool) {
		srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{Password: testPassword})
		ta := newTestApp(t, testAppOptions{agents: agents})
		b := newBridge(t, ta)
		p := addServerFor(t, ta, "s", srv.Addr(), srv.User())

		done := make(chan struct {
			code int
			body string
		}, 1)
		go func() {
			code, body := b.call("Connect", p.ID)
			done <- struct {
				code int
				body string
			}{code, body}
		}()
		acceptHostKey(t, ta, p.ID, srv.HostKey(), prompts.HostKeyAcceptAlways)
		for i := 1; i <= 3; i++ {
			pr := answerPassword(t, ta, p.ID, "nope", true)
			if pr.Attempt != i {
				t.Fatalf("prompt %d has attempt %d", i, pr.Attempt)
			}
		}
		var r struct {
			code int
			body string
		}
		select {
		case r = <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("Connect did not return")
		}
		if r.code != 409 || !strings.Contains(r.body, "The server did not accept the login of tester at "+srv.Addr()+" (tried: password)") {
			t.Fatalf("Connect with wrong passwords: %d %s", r.code, r.body)
		}
		sum := ta.app.servers.Summary(p.ID)
		if sum.State != servers.ServerFailed || sum.LastError == nil || sum.LastError.Kind != servers.ErrorAuth {
			t.Fatalf("summary after the failure: %+v", sum)
		}
		if ta.secrets.Len() != 0 {
			t.Fatal("a rejected password was saved")
		}
		// Retry: works, the host key is known now.
		ch := connectAsync(ta.app, p.ID)
		answerPassword(t, ta, p.ID, testPassword, false)
		if res := waitConnect(t, ch); res.err != nil || res.sum.State != servers.ServerConnected || res.sum.LastError != nil {
			t.Fatalf("retry = %+v, %v", res.sum, res.err)
		}
	})
}

func TestSavedPasswordRejectedAsksAndReplacesIt(t *testing.T) {
	forEachLogin(t, func(t *testing.T, agents bool) {
		srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{Password: testPassword})
		ta := newTestApp(t, testAppOptions{agents: agents})
		p := addServerFor(t, ta, "s", srv.Addr(), srv.User())
		if err := ta.secrets.Set(p.ID, profiles.SecretPassword, "old-password"); err != nil {
			t.Fatal(err)
		}
		ch := connectAsync(ta.app, p.ID)
		acceptHostKey(t, ta, p.ID, srv.HostKey(), prompts.HostKeyAcceptOnce)
		pr := waitPrompt(t, ta.app, p.ID, prompts.PromptPassword)
		if pr.Notice != "The password saved in the keychain was not accepted." || !pr.Remember || !pr.CanRemember {
			t.Fatalf("prompt after the saved password was rejected: %+v", pr)
		}
		if err := ta.app.AnswerPrompt(pr.ID, prompts.PromptAnswer{Secret: testPassword, Remember: true}); err != nil {
			t.Fatal(err)
		}
		if res := waitConnect(t, ch); res.err != nil {
			t.Fatal(res.err)
		}
		if v, _ := ta.secrets.Get(p.ID, profiles.SecretPassword); v != testPassword {
			t.Fatalf("saved password is %q; want the new one", v)
		}
	})
}

func TestKeyringUnavailableAsksEachTimeAndSavesNothing(t *testing.T) {
	forEachLogin(t, func(t *testing.T, agents bool) {
		srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{Password: testPassword})
		ta := newTestApp(t, testAppOptions{agents: agents})
		ta.secrets.SetUnavailable(true)
		if ks := ta.app.KeyringStatus(); ks.Available || !strings.Contains(ks.Message, "not available") {
			t.Fatalf("KeyringStatus = %+v", ks)
		}
		p := addServerFor(t, ta, "s", srv.Addr(), srv.User())
		for round := 1; round <= 2; round++ {
			ch := connectAsync(ta.app, p.ID)
			if round == 1 {
				acceptHostKey(t, ta, p.ID, srv.HostKey(), prompts.HostKeyAcceptAlways)
			}
			pr := waitPrompt(t, ta.app, p.ID, prompts.PromptPassword)
			if pr.CanRemember || pr.Remember || !strings.Contains(pr.KeyringMessage, "never writes secrets to disk") {
				t.Fatalf("round %d prompt = %+v", round, pr)
			}
			// Even if the UI sends remember, nothing is stored anywhere.
			if err := ta.app.AnswerPrompt(pr.ID, prompts.PromptAnswer{Secret: testPassword, Remember: true}); err != nil {
				t.Fatal(err)
			}
			if res := waitConnect(t, ch); res.err != nil {
				t.Fatal(res.err)
			}
			if _, err := ta.app.Disconnect(p.ID); err != nil {
				t.Fatal(err)
			}
		}
		ta.secrets.SetUnavailable(false)
		if ta.secrets.Len() != 0 {
			t.Fatal("a secret was stored while the keyring was unavailable")
		}
		noSecretAnywhere(t, ta, p.ID, testPassword)
		// Nothing under HOME or the config dir holds it either.
		_ = filepath.WalkDir(ta.home, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if b, _ := os.ReadFile(path); strings.Contains(string(b), testPassword) {
					t.Errorf("%s holds the password", path)
				}
			}
			return nil
		})
	})
}

func TestCancelPromptCancelsTheConnectCleanly(t *testing.T) {
	forEachLogin(t, func(t *testing.T, agents bool) {
		srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{Password: testPassword})
		ta := newTestApp(t, testAppOptions{agents: agents})
		p := addServerFor(t, ta, "s", srv.Addr(), srv.User())
		ch := connectAsync(ta.app, p.ID)
		pr := waitPrompt(t, ta.app, p.ID, prompts.PromptHostKey)
		if err := ta.app.CancelPrompt(pr.ID); err != nil {
			t.Fatal(err)
		}
		res := waitConnect(t, ch)
		se := serverErrorOf(t, res.err)
		if se.Kind != servers.ErrorCanceled || res.err.Error() != "Connection canceled." {
			t.Fatalf("Connect after cancel: %v (%+v)", res.err, se)
		}
		sum := ta.app.servers.Summary(p.ID)
		if sum.State != servers.ServerDisconnected || sum.LastError != nil || len(ta.app.Prompts()) != 0 {
			t.Fatalf("after cancel: %+v, prompts %+v", sum, ta.app.Prompts())
		}

		// Disconnect while a question is open cancels it too.
		ch = connectAsync(ta.app, p.ID)
		waitPrompt(t, ta.app, p.ID, prompts.PromptHostKey)
		if _, err := ta.app.Disconnect(p.ID); err != nil {
			t.Fatal(err)
		}
		res = waitConnect(t, ch)
		if se := serverErrorOf(t, res.err); se.Kind != servers.ErrorCanceled {
			t.Fatalf("Connect after Disconnect: %+v", se)
		}
		if len(ta.app.Prompts()) != 0 || ta.app.servers.Summary(p.ID).State != servers.ServerDisconnected {
			t.Fatal("prompt or state left after Disconnect")
		}
	})
}

func TestPromptTimeoutFailsWithAClearMessage(t *testing.T) {
	forEachLogin(t, func(t *testing.T, agents bool) {
		srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{Password: testPassword})
		ta := newTestApp(t, testAppOptions{agents: agents, promptTimeout: 200 * time.Millisecond})
		p := addServerFor(t, ta, "s", srv.Addr(), srv.User())
		_, err := ta.app.Connect(p.ID)
		se := serverErrorOf(t, err)
		if se.Kind != servers.ErrorPromptTimeout || err.Error() != "Nobody answered the host-key question within 200ms, so Porthole gave up. Connect again when you are ready." {
			t.Fatalf("Connect: %v (%+v)", err, se)
		}
		if sum := ta.app.servers.Summary(p.ID); sum.State != servers.ServerFailed || sum.LastError.Kind != servers.ErrorPromptTimeout {
			t.Fatalf("summary %+v", sum)
		}
	})
}

func TestChangedHostKeyIsRefusedWithBothFingerprints(t *testing.T) {
	forEachLogin(t, func(t *testing.T, agents bool) {
		srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{Password: testPassword})
		ta := newTestApp(t, testAppOptions{agents: agents})
		p := addServerFor(t, ta, "s", srv.Addr(), srv.User())
		other := testrig.NewTestKey(t).PublicKey()
		kh := filepath.Join(ta.home, ".ssh", "known_hosts")
		line := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, other) + "\n"
		if err := os.WriteFile(kh, []byte("# first line\n"+line), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := ta.app.Connect(p.ID)
		se := serverErrorOf(t, err)
		if se.Kind != servers.ErrorHostKeyChanged || se.HostKey == nil {
			t.Fatalf("Connect: %v (%+v)", err, se)
		}
		hk := se.HostKey
		if hk.Fingerprint != ssh.FingerprintSHA256(srv.HostKey()) || len(hk.Known) != 1 || hk.Known[0].Fingerprint != ssh.FingerprintSHA256(other) ||
			hk.Known[0].File != kh || hk.Known[0].Line != 2 || !strings.Contains(hk.RemoveCommand, "ssh-keygen -R") {
			t.Fatalf("host key change %+v", hk)
		}
		if !strings.Contains(se.Message, "refused to connect") || !strings.Contains(se.Message, "line 2 of "+kh) {
			t.Fatalf("message %q", se.Message)
		}
		// Issue 14 finding 10f: Connect's error itself names both keys.
		if !strings.Contains(err.Error(), ssh.FingerprintSHA256(srv.HostKey())) || !strings.Contains(err.Error(), ssh.FingerprintSHA256(other)) {
			t.Fatalf("Connect's error %q lacks the old or the new fingerprint", err)
		}
		if len(ta.app.Prompts()) != 0 {
			t.Fatal("a changed key was asked about instead of refused")
		}
		if HTTPStatus(err) != 409 {
			t.Fatalf("status %d", HTTPStatus(err))
		}
	})
}

func TestUnreachableServerInPlainWords(t *testing.T) {
	forEachLogin(t, func(t *testing.T, agents bool) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		ta := newTestApp(t, testAppOptions{agents: agents})
		p := addServerFor(t, ta, "s", addr, "x")
		_, err = ta.app.Connect(p.ID)
		se := serverErrorOf(t, err)
		if se.Kind != servers.ErrorUnreachable || !strings.HasPrefix(se.Message, "Porthole cannot reach the server: ") || HTTPStatus(err) != 502 {
			t.Fatalf("Connect: %v (%+v)", err, se)
		}
	})
}

// TestRealSshdPAMPassword logs in to the real OpenSSH sshd, whose password
// goes through PAM as a keyboard-interactive "Password:" round: it is asked
// as a password (with "remember"), and the saved one is used next time.
func TestRealSshdPAMPassword(t *testing.T) {
	forEachLogin(t, func(t *testing.T, agents bool) {
		sshd := testrig.NewSshd(t, testrig.SshdOptions{Password: testPassword, HostKeyTypes: []string{"ed25519"}})
		ta := newTestApp(t, testAppOptions{agents: agents})
		p := addServerFor(t, ta, "real sshd", sshd.Addr, sshd.User)

		ch := connectAsync(ta.app, p.ID)
		acceptHostKey(t, ta, p.ID, sshd.HostKeys[0], prompts.HostKeyAcceptAlways)
		first := answerPassword(t, ta, p.ID, "wrong", false)
		if first.Kind != prompts.PromptPassword {
			t.Fatalf("first prompt %+v", first)
		}
		retry := waitPrompt(t, ta.app, p.ID, prompts.PromptPassword)
		if retry.Notice != "That password was not accepted. Try again." {
			t.Fatalf("retry prompt %+v", retry)
		}
		if err := ta.app.AnswerPrompt(retry.ID, prompts.PromptAnswer{Secret: testPassword, Remember: true}); err != nil {
			t.Fatal(err)
		}
		if res := waitConnect(t, ch); res.err != nil || res.sum.State != servers.ServerConnected {
			t.Fatalf("Connect = %+v, %v", res.sum, res.err)
		}
		if _, err := ta.app.Disconnect(p.ID); err != nil {
			t.Fatal(err)
		}
		asked := ta.rec.count(prompts.TopicPrompts.Name(), func(d any) bool { return len(d.([]prompts.Prompt)) > 0 })
		if res := waitConnect(t, connectAsync(ta.app, p.ID)); res.err != nil {
			t.Fatal(res.err)
		}
		if again := ta.rec.count(prompts.TopicPrompts.Name(), func(d any) bool { return len(d.([]prompts.Prompt)) > 0 }); again != asked {
			t.Fatal("the saved password did not spare the question")
		}
		noSecretAnywhere(t, ta, p.ID, testPassword)
	})
}

func TestKeyboardInteractiveQuestionsKeepTheirEchoFlags(t *testing.T) {
	forEachLogin(t, func(t *testing.T, agents bool) {
		srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{KeyboardInteractive: []testrig.KIQuestion{
			{Prompt: "Username again: ", Echo: true, Answer: "tester"},
			{Prompt: "One-time code: ", Echo: false, Answer: "123456"},
		}})
		ta := newTestApp(t, testAppOptions{agents: agents})
		p := addServerFor(t, ta, "2fa", srv.Addr(), srv.User())
		ch := connectAsync(ta.app, p.ID)
		acceptHostKey(t, ta, p.ID, srv.HostKey(), prompts.HostKeyAcceptOnce)
		pr := waitPrompt(t, ta.app, p.ID, prompts.PromptKeyboardInteractive)
		if len(pr.Questions) != 2 || !pr.Questions[0].Echo || pr.Questions[1].Echo || pr.Questions[1].Prompt != "One-time code: " || pr.CanRemember {
			t.Fatalf("keyboard-interactive prompt %+v", pr)
		}
		if err := ta.app.AnswerPrompt(pr.ID, prompts.PromptAnswer{Answers: []string{"tester", "123456"}}); err != nil {
			t.Fatal(err)
		}
		if res := waitConnect(t, ch); res.err != nil {
			t.Fatal(res.err)
		}
		if ta.secrets.Len() != 0 {
			t.Fatal("an OTP was saved")
		}
		noSecretAnywhere(t, ta, p.ID, "123456")
	})
}

// TestShutdownLeavesNoLoginGoroutines: quitting Porthole closes every login,
// cancels open questions, and leaves no goroutine of ours behind.
func TestShutdownLeavesNoLoginGoroutines(t *testing.T) {
	forEachLogin(t, func(t *testing.T, agents bool) {
		srv := testrig.NewSSHServer(t, testrig.SSHServerOptions{Password: testPassword})
		ta := newTestApp(t, testAppOptions{agents: agents})
		p := addServerFor(t, ta, "connected", srv.Addr(), srv.User())
		ch := connectAsync(ta.app, p.ID)
		acceptHostKey(t, ta, p.ID, srv.HostKey(), prompts.HostKeyAcceptAlways)
		answerPassword(t, ta, p.ID, testPassword, false)
		if res := waitConnect(t, ch); res.err != nil {
			t.Fatal(res.err)
		}
		// A second login waits on a question when Porthole quits.
		p2 := addServerFor(t, ta, "asking", srv.Addr(), srv.User())
		ch2 := connectAsync(ta.app, p2.ID)
		waitPrompt(t, ta.app, p2.ID, prompts.PromptPassword)

		ta.life.Shutdown()
		if res := waitConnect(t, ch2); serverErrorOf(t, res.err).Kind != servers.ErrorCanceled {
			t.Fatalf("the waiting Connect: %v", res.err)
		}
		if len(ta.app.Prompts()) != 0 {
			t.Fatal("questions left open after shutdown")
		}
		ours := []string{"porthole/backend/forwarder.", "porthole/backend/sshconn.", "porthole/backend/agent.", "porthole/backend/servers.", "porthole/backend/prompts."}
		deadline := time.Now().Add(5 * time.Second)
		for {
			buf := make([]byte, 1<<20)
			stacks := string(buf[:runtime.Stack(buf, true)])
			var left []string
			for _, g := range strings.Split(stacks, "\n\n") {
				if strings.Contains(g, "TestShutdownLeavesNoLoginGoroutines") {
					continue
				}
				for _, o := range ours {
					if strings.Contains(g, o) {
						left = append(left, g)
						break
					}
				}
			}
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d goroutine(s) of ours still running 5 s after shutdown:\n%s", len(left), strings.Join(left, "\n\n"))
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Connect after shutdown is refused, not started.
		if _, err := ta.app.Connect(p.ID); err == nil || HTTPStatus(err) != 503 {
			t.Fatalf("Connect after shutdown: %v", err)
		}
	})
}
