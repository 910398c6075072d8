//go:build desktop

// The desktop window: compiled only into porthole-desktop (tags desktop,production),
// the one build that links GTK/WebKit. See desktop_exec.go for the plain build.

package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/wailsapp/wails/v2"
	"github.com/wailsapp/wails/v2/pkg/options"
	"github.com/wailsapp/wails/v2/pkg/options/assetserver"
	"github.com/wailsapp/wails/v2/pkg/options/linux"
	wruntime "github.com/wailsapp/wails/v2/pkg/runtime"

	"github.com/porthole-app/porthole/backend/apps"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/notify"
	"github.com/porthole-app/porthole/backend/settings"
	"github.com/porthole-app/porthole/backend/ui"
	"github.com/porthole-app/porthole/backend/webui"
)

// wailsSink publishes events to the window through the Wails runtime.
type wailsSink struct{ ctx context.Context }

func (s wailsSink) Publish(topic string, data any) {
	wruntime.EventsEmit(s.ctx, "porthole:event", webui.Event{Topic: topic, Data: data})
}

func runDesktop() error {
	if err := checkDisplay(); err != nil {
		return err
	}
	log := newLogger(os.Stderr, false)
	// Before wails.Run creates the window, on this goroutine (GTK's thread).
	if err := setupWebData(log); err != nil {
		log.Warn("apps in tabs will be logged out when Porthole restarts", "err", err)
	}
	bus := events.New()
	var (
		uiMu  sync.Mutex
		uiCtx context.Context // the Wails runtime's, once OnStartup ran
	)
	quit := func() {
		uiMu.Lock()
		ctx := uiCtx
		uiMu.Unlock()
		if ctx != nil {
			wruntime.Quit(ctx)
		}
	}
	opts := ui.Options{Log: log, Mode: ui.ModeDesktop, Bus: bus, Settings: settings.OpenLogged(log),
		Servers: openServerConfig(log), Ports: openPortmapLogged(log), Tabs: apps.OpenTabsLogged(log),
		Quit: quit, Version: currentVersion()}
	opts.Notify = notify.Desktop(log) // OS notifications, else toasts; app-rules.json
	var life *ui.Lifecycle
	viewsFailed := func() { life.PublishStatus() } // the shell opens apps in the browser
	if views := newWindowAppViews(log, bus, viewsFailed); views != nil {
		defer views.Close()
		opts.Views = views
	}
	app, life := ui.New(opts)
	// SIGTERM (the session logging out, `kill`) and SIGINT close the window
	// the way Ctrl+Q does: forwards close, agents stop, tabs stay saved.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	stopSigs := make(chan struct{})
	defer close(stopSigs)
	go func() {
		select {
		case s := <-sigs:
			log.Info("quitting on a signal", "signal", s.String())
			uiMu.Lock()
			up := uiCtx != nil
			uiMu.Unlock()
			if !up { // no window yet, nothing to save: the agents die with us (Pdeathsig)
				os.Exit(1)
			}
			quit()
		case <-stopSigs:
		}
	}()
	return wails.Run(&options.App{
		Title:            "Porthole",
		Width:            1280,
		Height:           820,
		MinWidth:         720,
		MinHeight:        480,
		AssetServer:      &assetserver.Options{Assets: frontendFS()},
		BackgroundColour: &options.RGBA{R: 22, G: 24, B: 29, A: 255},
		OnStartup: func(ctx context.Context) {
			uiMu.Lock()
			uiCtx = ctx
			uiMu.Unlock()
			bus.AddSink(wailsSink{ctx: ctx})
			life.Startup(ctx)
		},
		OnShutdown: func(context.Context) { life.Shutdown() },
		Bind:       []any{app},
		Linux: &linux.Options{
			Icon:             appIcon,
			ProgramName:      "porthole",
			WebviewGpuPolicy: linux.WebviewGpuPolicyOnDemand,
		},
	})
}
