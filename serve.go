package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/pkg/browser"
	"github.com/porthole-app/porthole/backend/apps"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/notify"
	"github.com/porthole-app/porthole/backend/portmap"
	"github.com/porthole-app/porthole/backend/settings"
	"github.com/porthole-app/porthole/backend/ui"
	"github.com/porthole-app/porthole/backend/webui"
)

const serveUsage = "usage: porthole serve [--addr 127.80.72.1:0] [--open]"

type serveFlags struct {
	addr string // "": Porthole's own address (portmap.ServeAddr), any free port
	open bool
}

// parseServeFlags parses serve's flags; errors are one line and wrap errUsage.
func parseServeFlags(args []string) (serveFlags, error) {
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.addr, "addr", "", "loopback address and port to listen on (port 0: any free port); default "+
		portmap.ServeAddr().String()+":0, Porthole's own address, or 127.0.0.1:0 where that address is not available")
	fs.BoolVar(&f.open, "open", false, "open the UI in your default browser")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, fmt.Errorf("%s: %w", serveUsage, errUsage)
		}
		return f, fmt.Errorf("serve: %v; %s: %w", err, serveUsage, errUsage)
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("serve: unexpected argument %q; %s: %w", fs.Arg(0), serveUsage, errUsage)
	}
	if f.addr == "" {
		return f, nil
	}
	host, _, err := net.SplitHostPort(f.addr)
	if err != nil {
		return f, fmt.Errorf("serve: --addr %q is not host:port (e.g. 127.0.0.1:8080): %w", f.addr, errUsage)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return f, fmt.Errorf("serve: --addr %q: serve listens on an IPv4 loopback address only (e.g. 127.0.0.1:8080), so no other computer can reach it: %w", f.addr, errUsage)
	}
	return f, nil
}

func runServe(args []string) error {
	f, err := parseServeFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "porthole "+err.Error())
		return errUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, f, os.Stdout, newLogger(os.Stderr, false))
}

// serve runs `porthole serve` until ctx ends. The first line written to stdout is
// the URL with the access token: scripts and tests read it.
func serve(ctx context.Context, f serveFlags, stdout io.Writer, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := serveListener(ctx, f.addr, log)
	if err != nil {
		return err
	}

	bus := events.New()
	origin := "http://" + ln.Addr().String()
	app, life := ui.New(ui.Options{Log: log, Mode: ui.ModeServe, Bus: bus, Settings: settings.OpenLogged(log),
		Servers: openServerConfig(log), Ports: openPortmapLogged(log), Tabs: apps.OpenTabsLogged(log),
		ServeOrigin: origin, Version: currentVersion(), Notify: notify.Desktop(log)})
	srv, err := webui.New(webui.Options{Bound: app, Assets: frontendFS(), Snapshot: app.Snapshot, Status: ui.HTTPStatus, Logger: log})
	if err != nil {
		ln.Close()
		return err
	}
	bus.AddSink(srv)
	addr := ln.Addr().String()
	fmt.Fprintln(stdout, srv.URL(addr))
	life.Startup(ctx)
	if f.open {
		// A private single-use launch page, not the token: a browser's command
		// line is visible to every local user; a file's path is not a secret.
		launch, err := srv.LaunchFile(addr)
		if err == nil {
			err = browser.OpenFile(launch)
		}
		if err != nil {
			log.Warn("could not open a browser; open the URL above yourself", "err", err)
		}
	}
	log.Info("serving the Porthole UI", "addr", addr)
	defer life.Shutdown()
	return srv.Serve(ctx, ln)
}

// serveListener listens on addr, or, when addr is "", on Porthole's own
// loopback address (portmap.ServeAddr) with any free port, falling back to
// 127.0.0.1 where that address is not available. Serving on any address but
// Porthole's own is logged as a warning: Chromium keys the apps' partitioned
// cookies by the top-level site, the page's IP without its port, so every
// other page on that IP could make the browser send them.
func serveListener(ctx context.Context, addr string, log *slog.Logger) (net.Listener, error) {
	var (
		ln  net.Listener
		err error
	)
	if addr == "" {
		addr = net.JoinHostPort(portmap.ServeAddr().String(), "0")
		ln, _, err = portmap.ListenServe(ctx, 0)
	} else {
		ln, err = portmap.Listen(ctx, addr)
	}
	if err != nil {
		var pe *portmap.PortInUseError
		if errors.As(err, &pe) {
			host, _, _ := net.SplitHostPort(addr)
			return nil, fmt.Errorf("cannot serve on %s: %v; pick another port with --addr %s", addr, pe, net.JoinHostPort(host, "0"))
		}
		return nil, fmt.Errorf("cannot serve on %s: %w", addr, err)
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); host != portmap.ServeAddr().String() {
		log.Warn(portmap.SharedServeWarning(host))
	}
	return ln, nil
}
