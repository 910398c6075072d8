package ui

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/prompts"
	"github.com/porthole-app/porthole/backend/servers"
	"github.com/porthole-app/porthole/backend/sshconn"
	"strings"
	"sync"
	"testing"
	"time"
)

// brokerRig is a broker whose `prompts` events are recorded.
type brokerRig struct {
	b   *prompts.Broker
	mu  sync.Mutex
	pub [][]prompts.Prompt
}

func newBrokerRig(timeout time.Duration) *brokerRig {
	r := &brokerRig{}
	bus := events.New()
	events.Subscribe(bus, prompts.TopicPrompts, func(l []prompts.Prompt) {
		r.mu.Lock()
		r.pub = append(r.pub, l)
		r.mu.Unlock()
	})
	r.b = prompts.NewBroker(timeout, bus, nil)
	return r
}

func (r *brokerRig) last() []prompts.Prompt {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pub) == 0 {
		return nil
	}
	return r.pub[len(r.pub)-1]
}

// waitOpen waits until a prompt is open and returns it.
func (r *brokerRig) waitOpen(t *testing.T) prompts.Prompt {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if l := r.b.List(); len(l) > 0 {
			return l[0]
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("no prompt opened within 5 s")
	return prompts.Prompt{}
}

type askResult struct {
	a   prompts.PromptAnswer
	err error
}

func (r *brokerRig) askAsync(ctx context.Context, p prompts.Prompt) <-chan askResult {
	ch := make(chan askResult, 1)
	go func() {
		a, err := r.b.Ask(ctx, p)
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
		prompt prompts.Prompt
		answer prompts.PromptAnswer
	}{
		{"password with remember", prompts.Prompt{Kind: prompts.PromptPassword, ServerID: "s1", CanRemember: true}, prompts.PromptAnswer{Secret: "hunter2", Remember: true}},
		{"empty password is an answer", prompts.Prompt{Kind: prompts.PromptPassword, ServerID: "s1"}, prompts.PromptAnswer{}},
		{"passphrase", prompts.Prompt{Kind: prompts.PromptPassphrase, ServerID: "s1"}, prompts.PromptAnswer{Secret: "correct horse"}},
		{"keyboard-interactive", prompts.Prompt{Kind: prompts.PromptKeyboardInteractive, ServerID: "s1", Questions: []prompts.PromptQuestion{{Prompt: "Code:", Echo: true}, {Prompt: "PIN:"}}}, prompts.PromptAnswer{Answers: []string{"123456", "0000"}}},
		{"host key", prompts.Prompt{Kind: prompts.PromptHostKey, ServerID: "s1", HostKey: &prompts.HostKeyInfo{Fingerprint: "SHA256:x"}}, prompts.PromptAnswer{HostKey: prompts.HostKeyAcceptAlways}},
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
			if err := r.b.Answer(p.ID, tt.answer); err != nil {
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
			err := r.b.Answer(p.ID, tt.answer)
			if !errors.Is(err, prompts.ErrPromptGone) || HTTPStatus(err) != 404 {
				t.Fatalf("second answer: %v (status %d); want prompts.ErrPromptGone 404", err, HTTPStatus(err))
			}
		})
	}
}

func TestBrokerRejectsAnswersThatDoNotFit(t *testing.T) {
	tests := []struct {
		name   string
		prompt prompts.Prompt
		answer prompts.PromptAnswer
		want   string
	}{
		{"password with answers", prompts.Prompt{Kind: prompts.PromptPassword}, prompts.PromptAnswer{Answers: []string{"x"}}, `answered with "secret" only`},
		{"ki answer count", prompts.Prompt{Kind: prompts.PromptKeyboardInteractive, Questions: []prompts.PromptQuestion{{Prompt: "a"}, {Prompt: "b"}}}, prompts.PromptAnswer{Answers: []string{"x"}}, "asked 2 question(s); got 1 answer(s)"},
		{"ki with secret", prompts.Prompt{Kind: prompts.PromptKeyboardInteractive, Questions: []prompts.PromptQuestion{{Prompt: "a"}}}, prompts.PromptAnswer{Secret: "x", Answers: []string{"x"}}, `"answers" only`},
		{"host key without choice", prompts.Prompt{Kind: prompts.PromptHostKey}, prompts.PromptAnswer{}, `choose "accept-once", "accept-always" or "reject"`},
		{"host key with remember", prompts.Prompt{Kind: prompts.PromptHostKey}, prompts.PromptAnswer{HostKey: prompts.HostKeyReject, Remember: true}, `"hostKey" only`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newBrokerRig(time.Minute)
			ctx, cancel := context.WithCancel(context.Background())
			ch := r.askAsync(ctx, tt.prompt)
			p := r.waitOpen(t)
			err := r.b.Answer(p.ID, tt.answer)
			if err == nil || !strings.Contains(err.Error(), tt.want) || HTTPStatus(err) != 400 {
				t.Fatalf("answer: %v (status %d); want a 400 containing %q", err, HTTPStatus(err), tt.want)
			}
			// Still open: the user can answer properly.
			if len(r.b.List()) != 1 {
				t.Fatal("a refused answer closed the prompt")
			}
			cancel()
			if res := waitAsk(t, ch); !errors.Is(res.err, context.Canceled) {
				t.Fatalf("after ctx cancel: %v", res.err)
			}
			if len(r.b.List()) != 0 || len(r.last()) != 0 {
				t.Fatal("prompt still listed after its context ended")
			}
		})
	}
}

func TestBrokerCancel(t *testing.T) {
	r := newBrokerRig(time.Minute)
	ch := r.askAsync(context.Background(), prompts.Prompt{Kind: prompts.PromptPassword, ServerID: "s1"})
	p := r.waitOpen(t)
	if err := r.b.Cancel(p.ID); err != nil {
		t.Fatal(err)
	}
	if res := waitAsk(t, ch); !errors.Is(res.err, sshconn.ErrPromptCanceled) {
		t.Fatalf("ask after cancel: %v; want sshconn.ErrPromptCanceled", res.err)
	}
	if got := r.last(); len(got) != 0 {
		t.Fatalf("prompts event after cancel = %+v", got)
	}
	if err := r.b.Cancel(p.ID); HTTPStatus(err) != 404 {
		t.Fatalf("second cancel: %v; want 404", err)
	}

	// cancelServer cancels that server's prompts only.
	a := r.askAsync(context.Background(), prompts.Prompt{Kind: prompts.PromptPassword, ServerID: "a"})
	b := r.askAsync(context.Background(), prompts.Prompt{Kind: prompts.PromptPassword, ServerID: "b"})
	deadline := time.Now().Add(5 * time.Second)
	for len(r.b.List()) < 2 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	r.b.CancelServer("a")
	if res := waitAsk(t, a); !errors.Is(res.err, sshconn.ErrPromptCanceled) {
		t.Fatalf("server a: %v", res.err)
	}
	l := r.b.List()
	if len(l) != 1 || l[0].ServerID != "b" {
		t.Fatalf("open prompts = %+v; want only server b's", l)
	}
	if err := r.b.Answer(l[0].ID, prompts.PromptAnswer{Secret: "x"}); err != nil {
		t.Fatal(err)
	}
	if res := waitAsk(t, b); res.err != nil || res.a.Secret != "x" {
		t.Fatalf("server b: %+v", res)
	}
}

func TestBrokerTimeout(t *testing.T) {
	r := newBrokerRig(50 * time.Millisecond)
	ch := r.askAsync(context.Background(), prompts.Prompt{Kind: prompts.PromptHostKey, ServerID: "s1"})
	res := waitAsk(t, ch)
	var pt *prompts.TimeoutError
	if !errors.Is(res.err, sshconn.ErrPromptTimeout) || !errors.As(res.err, &pt) {
		t.Fatalf("err = %v; want a prompt timeout", res.err)
	}
	if msg := res.err.Error(); msg != "nobody answered the host-key question within 50ms" {
		t.Fatalf("message = %q", msg)
	}
	if len(r.b.List()) != 0 || len(r.last()) != 0 {
		t.Fatal("timed-out prompt still listed")
	}
	se := servers.ClassifyConnectError(res.err, time.Minute)
	if se.Kind != servers.ErrorPromptTimeout || !strings.Contains(se.Message, "Nobody answered the host-key question within 50ms") {
		t.Fatalf("classified as %+v", se)
	}
}

func TestBrokerAskWithEndedContext(t *testing.T) {
	r := newBrokerRig(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.b.Ask(ctx, prompts.Prompt{Kind: prompts.PromptPassword}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if len(r.pub) != 0 {
		t.Fatal("a prompt was published for an ended context")
	}
}
