// Command bench measures Porthole's forwarder (`porthole forward -L`, and
// `-D` for the socks measure) against OpenSSH (`ssh -N -L`, `-D`) on this
// machine and writes docs/BENCHMARKS.md.
//
//	go run ./internal/bench -porthole build/bin/porthole -out docs/BENCHMARKS.md
//
// (that is `make bench`). Both tunnels forward to the same test web app on
// 127.0.0.1 through a real OpenSSH sshd; the SSH leg goes through
// internal/testrig's user-space relay, which adds round-trip time and
// simulates sleep and network changes. Measurements of the two tools are
// interleaved so that machine noise hits both alike. Only loopback traffic.
//
// Flags:
//
//	-quick          fewer iterations and smaller transfers (development)
//	-only a,b       run only these measures (get, page, cold, bulk, wake, rss, guard, socks, remote, soak,
//	                b2b, firstpage, netchange, app)
//	-porthole PATH  the porthole binary (default build/bin/porthole)
//	-out PATH       also write the Markdown report here (default: stdout only)
//	-aa             A/A self-test of the rig: run OpenSSH in both columns
//	-v              debug logs on stderr
//
// Every process the bench starts runs in its own process group and is killed
// on exit, error or Ctrl-C; every loop is bounded in count and time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// overallLimit bounds a whole run, whatever happens.
const overallLimit = 25 * time.Minute

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	level := slog.LevelInfo
	if cfg.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, overallLimit)
	defer cancel()

	rep, err := runBench(ctx, cfg, log)
	if err != nil {
		log.Error("bench failed", "err", err)
		return 1
	}
	md := rep.markdown()
	if _, err := io.WriteString(stdout, rep.table()); err != nil {
		log.Error("print table", "err", err)
		return 1
	}
	if cfg.out != "" {
		if err := writeFileAtomic(cfg.out, []byte(md)); err != nil {
			log.Error("write report", "err", err)
			return 1
		}
		log.Info("report written", "path", cfg.out)
	}
	if ctx.Err() != nil {
		log.Error("bench interrupted; the report is partial", "err", context.Cause(ctx))
		return 1
	}
	if !rep.portholeOK {
		log.Error("the porthole column is empty: " + rep.machine.porthole)
		return 1
	}
	return 0
}

// config is the parsed command line.
type config struct {
	quick    bool
	only     map[measureName]bool // nil: all
	porthole string
	out      string
	aa       bool
	verbose  bool
}

func (c config) wants(m measureName) bool { return c.only == nil || c.only[m] }

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	var only string
	fs.BoolVar(&cfg.quick, "quick", false, "fewer iterations and smaller transfers (for development; numbers are rough)")
	fs.StringVar(&only, "only", "", "comma-separated measures to run: "+strings.Join(measureNames(), ","))
	fs.StringVar(&cfg.porthole, "porthole", "build/bin/porthole", "path of the porthole binary")
	fs.StringVar(&cfg.out, "out", "", "write the Markdown report to this file as well (e.g. docs/BENCHMARKS.md)")
	fs.BoolVar(&cfg.aa, "aa", false, "A/A self-test: run OpenSSH in the porthole column too (ratios should be ≈1)")
	fs.BoolVar(&cfg.verbose, "v", false, "debug logs")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./internal/bench [-quick] [-only get,page,...] [-porthole PATH] [-out PATH] [-aa] [-v]\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return cfg, errors.New("usage")
	}
	if only != "" {
		set, err := parseOnly(only)
		if err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return cfg, err
		}
		cfg.only = set
	}
	return cfg, nil
}

// parseOnly parses the -only list.
func parseOnly(s string) (map[measureName]bool, error) {
	set := make(map[measureName]bool)
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		m, ok := lookupMeasure(part)
		if !ok {
			return nil, fmt.Errorf("-only: unknown measure %q; choose from %s", part, strings.Join(measureNames(), ","))
		}
		set[m] = true
	}
	if len(set) == 0 {
		return nil, fmt.Errorf("-only: empty list; choose from %s", strings.Join(measureNames(), ","))
	}
	return set, nil
}

// writeFileAtomic writes data to a temp file next to path and renames it.
func writeFileAtomic(path string, data []byte) error {
	dir := "."
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		dir = path[:i]
	}
	f, err := os.CreateTemp(dir, ".bench-*.md")
	if err != nil {
		return fmt.Errorf("create temp file next to %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("chmod %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("rename to %s: %w", path, err)
	}
	return nil
}
