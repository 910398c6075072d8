package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// brokerRig is a broker whose `prompts` events are recorded.
type brokerRig struct {
	b   *promptBroker
	mu  sync.Mutex
	pub [][]Prompt
}

func newBrokerRig(timeout time.Duration) *brokerRig {
	r := &brokerRig{}
	r.b = newPromptBroker(timeout, func(topic string, data any) {
		if topic != TopicPrompts {
			panic("unexpected topic " + topic)
		}
		r.mu.Lock()
		r.pub = append(r.pub, data.([]Prompt))
		r.mu.Unlock()
	}, nil)
	return r
}

func (r *brokerRig) last() []Prompt {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pub) == 0 {
		return nil
	}
	return r.pub[len(r.pub)-1]
}

// waitOpen waits until a prompt is open and returns it.
func (r *brokerRig) waitOpen(t *testing.T) Prompt {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if l := r.b.list(); len(l) > 0 {
			return l[0]
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("no prompt opened within 5 s")
	return Prompt{}
}

type askResult struct {
	a   PromptAnswer
	err error
}

func (r *brokerRig) askAsync(ctx context.Context, p Prompt) <-chan askResult {
	ch := make(chan askResult, 1)
	go func() {
		a, err := r.b.ask(ctx, p)
		ch <- askResult{a, err}
	}()
	return ch
}

func waitAsk(t *testing.T, ch <-chan askResult) askResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("ask did not return within 5 s")
	}
	return askResult{}
}

func TestBrokerAnswer(t *testing.T) {
	tests := []struct {
		name   string
		prompt Prompt
		answer PromptAnswer
	}{
		{"password with remember", Prompt{Kind: PromptPassword, ServerID: "s1", CanRemember: true}, PromptAnswer{Secret: "hunter2", Remember: true}},
		{"empty password is an answer", Prompt{Kind: PromptPassword, ServerID: "s1"}, PromptAnswer{}},
		{"passphrase", Prompt{Kind: PromptPassphrase, ServerID: "s1"}, PromptAnswer{Secret: "correct horse"}},
		{"keyboard-interactive", Prompt{Kind: PromptKeyboardInteractive, ServerID: "s1", Questions: []PromptQuestion{{Prompt: "Code:", Echo: true}, {Prompt: "PIN:"}}}, PromptAnswer{Answers: []string{"123456", "0000"}}},
		{"host key", Prompt{Kind: PromptHostKey, ServerID: "s1", HostKey: &HostKeyInfo{Fingerprint: "SHA256:x"}}, PromptAnswer{HostKey: HostKeyAcceptAlways}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newBrokerRig(time.Minute)
			ch := r.askAsync(context.Background(), tt.prompt)
			p := r.waitOpen(t)
			if p.ID == "" || p.Kind != tt.prompt.Kind || p.ExpiresAt.Sub(p.CreatedAt) != time.Minute {
				t.Fatalf("published prompt = %+v", p)
			}
			if got := r.last(); len(got) != 1 || got[0].ID != p.ID {
				t.Fatalf("prompts event = %+v; want the open prompt", got)
			}
			if err := r.b.answer(p.ID, tt.answer); err != nil {
				t.Fatal(err)
			}
			res := waitAsk(t, ch)
			if res.err != nil {
				t.Fatal(res.err)
			}
			ga, _ := json.Marshal(res.a)
			wa, _ := json.Marshal(tt.answer)
			if string(ga) != string(wa) {
				t.Fatalf("answer = %s, want %s", ga, wa)
			}
			if got := r.last(); len(got) != 0 {
				t.Fatalf("after the answer the prompts event = %+v; want []", got)
			}
			// The prompt is gone: a second answer is a 404.
			err := r.b.answer(p.ID, tt.answer)
			if !errors.Is(err, errPromptGone) || httpStatus(err) != 404 {
				t.Fatalf("second answer: %v (status %d); want errPromptGone 404", err, httpStatus(err))
			}
		})
	}
}

// httpStatus mirrors the webui bridge's rule.
func httpStatus(err error) int {
	var hs interface{ HTTPStatus() int }
	if errors.As(err, &hs) {
		return hs.HTTPStatus()
	}
	return 500
}

func TestBrokerRejectsAnswersThatDoNotFit(t *testing.T) {
	tests := []struct {
		name   string
		prompt Prompt
		answer PromptAnswer
		want   string
	}{
		{"password with answers", Prompt{Kind: PromptPassword}, PromptAnswer{Answers: []string{"x"}}, `answered with "secret" only`},
		{"ki answer count", Prompt{Kind: PromptKeyboardInteractive, Questions: []PromptQuestion{{Prompt: "a"}, {Prompt: "b"}}}, PromptAnswer{Answers: []string{"x"}}, "asked 2 question(s); got 1 answer(s)"},
		{"ki with secret", Prompt{Kind: PromptKeyboardInteractive, Questions: []PromptQuestion{{Prompt: "a"}}}, PromptAnswer{Secret: "x", Answers: []string{"x"}}, `"answers" only`},
		{"host key without choice", Prompt{Kind: PromptHostKey}, PromptAnswer{}, `choose "accept-once", "accept-always" or "reject"`},
		{"host key with remember", Prompt{Kind: PromptHostKey}, PromptAnswer{HostKey: HostKeyReject, Remember: true}, `"hostKey" only`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newBrokerRig(time.Minute)
			ctx, cancel := context.WithCancel(context.Background())
			ch := r.askAsync(ctx, tt.prompt)
			p := r.waitOpen(t)
			err := r.b.answer(p.ID, tt.answer)
			if err == nil || !strings.Contains(err.Error(), tt.want) || httpStatus(err) != 400 {
				t.Fatalf("answer: %v (status %d); want a 400 containing %q", err, httpStatus(err), tt.want)
			}
			// Still open: the user can answer properly.
			if len(r.b.list()) != 1 {
				t.Fatal("a refused answer closed the prompt")
			}
			cancel()
			if res := waitAsk(t, ch); !errors.Is(res.err, context.Canceled) {
				t.Fatalf("after ctx cancel: %v", res.err)
			}
			if len(r.b.list()) != 0 || len(r.last()) != 0 {
				t.Fatal("prompt still listed after its context ended")
			}
		})
	}
}

func TestBrokerCancel(t *testing.T) {
	r := newBrokerRig(time.Minute)
	ch := r.askAsync(context.Background(), Prompt{Kind: PromptPassword, ServerID: "s1"})
	p := r.waitOpen(t)
	if err := r.b.cancel(p.ID); err != nil {
		t.Fatal(err)
	}
	if res := waitAsk(t, ch); !errors.Is(res.err, errPromptCanceled) {
		t.Fatalf("ask after cancel: %v; want errPromptCanceled", res.err)
	}
	if got := r.last(); len(got) != 0 {
		t.Fatalf("prompts event after cancel = %+v", got)
	}
	if err := r.b.cancel(p.ID); httpStatus(err) != 404 {
		t.Fatalf("second cancel: %v; want 404", err)
	}

	// cancelServer cancels that server's prompts only.
	a := r.askAsync(context.Background(), Prompt{Kind: PromptPassword, ServerID: "a"})
	b := r.askAsync(context.Background(), Prompt{Kind: PromptPassword, ServerID: "b"})
	deadline := time.Now().Add(5 * time.Second)
	for len(r.b.list()) < 2 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	r.b.cancelServer("a")
	if res := waitAsk(t, a); !errors.Is(res.err, errPromptCanceled) {
		t.Fatalf("server a: %v", res.err)
	}
	l := r.b.list()
	if len(l) != 1 || l[0].ServerID != "b" {
		t.Fatalf("open prompts = %+v; want only server b's", l)
	}
	if err := r.b.answer(l[0].ID, PromptAnswer{Secret: "x"}); err != nil {
		t.Fatal(err)
	}
	if res := waitAsk(t, b); res.err != nil || res.a.Secret != "x" {
		t.Fatalf("server b: %+v", res)
	}
}

func TestBrokerTimeout(t *testing.T) {
	r := newBrokerRig(50 * time.Millisecond)
	ch := r.askAsync(context.Background(), Prompt{Kind: PromptHostKey, ServerID: "s1"})
	res := waitAsk(t, ch)
	var pt *promptTimeoutError
	if !errors.Is(res.err, errPromptTimeout) || !errors.As(res.err, &pt) {
		t.Fatalf("err = %v; want a prompt timeout", res.err)
	}
	if msg := res.err.Error(); msg != "nobody answered the host-key question within 50ms" {
		t.Fatalf("message = %q", msg)
	}
	if len(r.b.list()) != 0 || len(r.last()) != 0 {
		t.Fatal("timed-out prompt still listed")
	}
	se := classifyConnectError(res.err, time.Minute)
	if se.Kind != ErrorPromptTimeout || !strings.Contains(se.Message, "Nobody answered the host-key question within 50ms") {
		t.Fatalf("classified as %+v", se)
	}
}

func TestBrokerAskWithEndedContext(t *testing.T) {
	r := newBrokerRig(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.b.ask(ctx, Prompt{Kind: PromptPassword}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if len(r.pub) != 0 {
		t.Fatal("a prompt was published for an ended context")
	}
}

func TestFmtWait(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{2 * time.Minute, "2 minutes"}, {time.Minute, "1 minute"}, {90 * time.Second, "90 seconds"}, {1500 * time.Millisecond, "1.5s"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			if got := fmtWait(tt.d); got != tt.want {
				t.Fatalf("fmtWait(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

var hostKeyChoiceCases = []struct {
	in   string
	want HostKeyChoice
	ok   bool
}{
	{"reject", HostKeyReject, true},
	{"accept-once", HostKeyAcceptOnce, true},
	{"accept-always", HostKeyAcceptAlways, true},
	{"", 0, false},
	{"yes", 0, false},
	{"Accept-Once", 0, false},
}

func TestParseHostKeyChoice(t *testing.T) {
	for _, tt := range hostKeyChoiceCases {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseHostKeyChoice(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("parseHostKeyChoice(%q) = %v, %v", tt.in, got, err)
			}
			if tt.ok {
				b, _ := got.MarshalText()
				if string(b) != tt.in {
					t.Fatalf("round trip: %q", b)
				}
			}
		})
	}
}

func FuzzParseHostKeyChoice(f *testing.F) {
	for _, tt := range hostKeyChoiceCases {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseHostKeyChoice(s)
		if err != nil {
			if c != 0 {
				t.Fatalf("error with a value: %v", c)
			}
			return
		}
		b, _ := c.MarshalText()
		if string(b) != s {
			t.Fatalf("%q parsed to %v, which writes %q", s, c, b)
		}
	})
}
