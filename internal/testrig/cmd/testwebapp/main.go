// Command testwebapp runs the test rig's web app in its own process, for
// benchmarks that need the app outside the process under test.
//
//	testwebapp [-addr 127.0.0.1:0] [-v] [-stdin] [-requests]
//
// The first line printed on stdout is the app's URL (http://127.0.0.1:PORT).
// With -requests, every request it receives follows as one line of JSON (a
// testrig.RequestRecord): the app's own record, for tests in other processes.
// It runs until SIGINT or SIGTERM, or until stdin reaches EOF when -stdin is
// given.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/porthole-app/porthole/internal/testrig"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "testwebapp:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on")
	verbose := flag.Bool("v", false, "log every request to stderr")
	watchStdin := flag.Bool("stdin", false, "exit when stdin reaches EOF (dies with its parent)")
	requests := flag.Bool("requests", false, "print each request received as a line of JSON on stdout")
	ownNetns := flag.Bool("own-netns", false, "this runs in a network namespace the test made: -addr may be any of its addresses")
	flag.Parse()

	var logger *slog.Logger
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := testrig.WebAppOptions{Addr: *addr, Logger: logger, InOwnNetns: *ownNetns}
	var (
		outMu    sync.Mutex
		urlShown bool
		early    []testrig.RequestRecord // before the URL line is out
	)
	enc := json.NewEncoder(os.Stdout)
	if *requests {
		opts.OnRequest = func(r testrig.RequestRecord) {
			outMu.Lock()
			defer outMu.Unlock()
			if !urlShown {
				early = append(early, r)
				return
			}
			_ = enc.Encode(r)
		}
	}
	app, err := testrig.StartWebApp(ctx, opts)
	if err != nil {
		return err
	}
	defer app.Close()
	outMu.Lock()
	_, err = fmt.Println(app.URL())
	urlShown = true
	for _, r := range early {
		_ = enc.Encode(r)
	}
	outMu.Unlock()
	if err != nil {
		return fmt.Errorf("print URL: %w", err)
	}
	if *watchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}
	<-ctx.Done()
	return app.Close()
}
