// Command testwebapp runs the test rig's web app in its own process, for
// benchmarks that need the app outside the process under test.
//
//	testwebapp [-addr 127.0.0.1:0] [-v]
//
// The first line printed on stdout is the app's URL (http://127.0.0.1:PORT).
// It runs until SIGINT or SIGTERM, or until stdin reaches EOF when -stdin is
// given.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
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
	flag.Parse()

	var logger *slog.Logger
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app, err := testrig.StartWebApp(ctx, testrig.WebAppOptions{Addr: *addr, Logger: logger})
	if err != nil {
		return err
	}
	defer app.Close()
	if _, err := fmt.Println(app.URL()); err != nil {
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
