package agent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/backend/forwarder"
)

// The test binary doubles as the agent and as a small app that supervises
// one: TestMain picks the role from the environment.
const (
	envTestChild      = "PORTHOLE_AGENT_TEST_CHILD"      // "1": run as `porthole agent`
	envTestMode       = "PORTHOLE_AGENT_TEST_MODE"       // child misbehaviour: garbage, garbage-later, crash, mismatch, long-stderr, or a mode of testModes
	envTestSupervisor = "PORTHOLE_AGENT_TEST_SUPERVISOR" // "1": run as an app with one agent
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(envTestChild) == "1":
		os.Exit(testChild())
	case os.Getenv(envTestSupervisor) == "1":
		os.Exit(testSupervisorProcess())
	}
	os.Exit(m.Run())
}

// testChild is the agent, possibly misbehaving on purpose.
func testChild() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var opts serveOptions
	switch os.Getenv(envTestMode) {
	case "":
	case "garbage":
		opts.afterHello = func(w io.Writer) { _, _ = io.WriteString(w, "this is not a message\r\n\r\n") }
	case "garbage-later":
		opts.afterInit = func() {
			go func() {
				time.Sleep(100 * time.Millisecond)
				_, _ = io.WriteString(os.Stdout, "Content-Length: 3\r\n\r\n{x}")
			}()
		}
	case "crash":
		opts.afterInit = func() {
			go func() {
				time.Sleep(100 * time.Millisecond)
				panic("agent test: deliberate crash")
			}()
		}
	case "mismatch":
		opts.protocol = ProtocolVersion + 1
	case "long-stderr":
		// One line far beyond what the Supervisor logs, then a short one.
		opts.afterInit = func() {
			_, _ = os.Stderr.WriteString(longStderrPrefix + strings.Repeat("x", longStderrLen) + "\n" + afterLongLine + "\n")
		}
	default:
		if set, ok := testModes[os.Getenv(envTestMode)]; ok {
			set(&opts)
			break
		}
		fmt.Fprintf(os.Stderr, "unknown %s %q\n", envTestMode, os.Getenv(envTestMode))
		return 2
	}
	return runMain(context.Background(), os.Stdin, os.Stdout, log, opts)
}

// testModes are more child modes (registered by OS-specific test files).
var testModes = map[string]func(*serveOptions){}

// What the long-stderr mode writes.
const (
	longStderrPrefix = "long-line:"
	longStderrLen    = 100 << 10
	afterLongLine    = "after the long line"
)

// testSupervisorProcess is a minimal app: it starts one agent with a forward,
// prints "READY <agent pid> <listen address>", and waits to be killed (or
// for its stdin to close).
func testSupervisorProcess() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sup := NewSupervisor(SupervisorOptions{Env: []string{envTestChild + "=1", raceEnv}, Logger: log})
	defer sup.Close()
	spec := LoginSpec{
		ID: "kill9", Host: "127.0.0.1", Port: 1, SSHConfigPath: "none", AgentSocket: "none",
		Forwards: []ForwardSpec{{ID: "f", Local: forwarder.LocalSpec{BindAddress: "127.0.0.1", TargetHost: "127.0.0.1", TargetPort: 9}}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := sup.Start(ctx, spec, Secrets{}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		return 1
	}
	st, err := l.Stats(ctx)
	if err != nil || len(st.Forwards) != 1 || st.Forwards[0].Addr == "" {
		fmt.Fprintln(os.Stderr, "stats:", err, st.Forwards)
		return 1
	}
	fmt.Printf("READY %d %s\n", l.Process().PID, st.Forwards[0].Addr)
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	return 0
}
