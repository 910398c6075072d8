package sshconn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"
)

// ErrNoTerminal: a question needs an answer and there is no terminal to ask on.
var ErrNoTerminal = errors.New("no terminal to ask on (like ssh -o BatchMode=yes): use a key or ssh-agent, and add the host to known_hosts first")

// TTYPrompter (`porthole forward`'s Prompter) asks on the controlling terminal, like ssh does: secrets are read
// with echo off and never logged.
type TTYPrompter struct {
	mu sync.Mutex // one question at a time
}

// openTTY opens the controlling terminal for reading answers and writing questions.
func openTTY() (*os.File, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, ErrNoTerminal
	}
	return f, nil
}

// ask writes question and reads one line, with echo off when secret.
// ctx cancellation is honoured before and after the read (a terminal read
// cannot be interrupted portably; Ctrl-C ends the process anyway).
func (p *TTYPrompter) ask(ctx context.Context, question string, secret bool) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return "", err
	}
	tty, err := openTTY()
	if err != nil {
		return "", err
	}
	defer tty.Close()
	fmt.Fprint(tty, question)
	var line string
	if secret && term.IsTerminal(int(tty.Fd())) {
		b, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err != nil {
			return "", fmt.Errorf("read answer: %w", err)
		}
		line = string(b)
	} else {
		s, err := bufio.NewReader(tty).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read answer: %w", err)
		}
		line = strings.TrimRight(s, "\r\n")
	}
	return line, ctx.Err()
}

func (p *TTYPrompter) Password(ctx context.Context, req PasswordPrompt) (string, error) {
	q := fmt.Sprintf("%s@%s's password: ", req.User, req.Host)
	if req.Kind == PasswordKeyPassphrase {
		q = fmt.Sprintf("Enter passphrase for key '%s': ", req.KeyPath)
	}
	if req.Attempt > 1 {
		q = "Permission denied, please try again.\n" + q
	}
	return p.ask(ctx, q, true)
}

func (p *TTYPrompter) KeyboardInteractive(ctx context.Context, req KIPrompt) ([]string, error) {
	if req.Instruction != "" {
		if tty, err := openTTY(); err == nil {
			fmt.Fprintln(tty, req.Instruction)
			tty.Close()
		}
	}
	answers := make([]string, 0, len(req.Questions))
	for _, q := range req.Questions {
		a, err := p.ask(ctx, q.Prompt, !q.Echo)
		if err != nil {
			return nil, err
		}
		answers = append(answers, a)
	}
	return answers, nil
}

func (p *TTYPrompter) UnknownHost(ctx context.Context, req HostKeyPrompt) (HostKeyDecision, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "The authenticity of host '%s (%s)' can't be established.\n", req.Host, req.Address)
	fmt.Fprintf(&b, "%s key fingerprint is %s.\n", req.KeyType, req.Fingerprint)
	if len(req.OtherKnownTypes) > 0 {
		fmt.Fprintf(&b, "known_hosts already has a %s key for this host.\n", strings.Join(req.OtherKnownTypes, ", "))
	}
	b.WriteString("Are you sure you want to continue connecting (yes/no/once)? ")
	for {
		a, err := p.ask(ctx, b.String(), false)
		if err != nil {
			return Reject, err
		}
		switch strings.ToLower(strings.TrimSpace(a)) {
		case "yes":
			return AcceptAndSave, nil
		case "once":
			return AcceptOnce, nil
		case "no":
			return Reject, nil
		}
		b.Reset()
		b.WriteString("Please type 'yes', 'no' or 'once': ")
	}
}
