//go:build desktop

// The desktop window: compiled only into porthole-desktop (tags desktop,production),
// the one build that links GTK/WebKit. See desktop_exec.go for the plain build.

package main

import (
	"context"
	"os"

	"github.com/wailsapp/wails/v2"
	"github.com/wailsapp/wails/v2/pkg/options"
	"github.com/wailsapp/wails/v2/pkg/options/assetserver"
	"github.com/wailsapp/wails/v2/pkg/options/linux"
	wruntime "github.com/wailsapp/wails/v2/pkg/runtime"

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
	hub := newEventHub()
	app := NewApp(log, ModeDesktop, hub, openSettingsLogged(log), withServers(openServerConfig(log)),
		withPortmap(openPortmapLogged(log)), withTabs(openTabsLogged(log)))
	return wails.Run(&options.App{
		Title:            "Porthole",
		Width:            1280,
		Height:           820,
		MinWidth:         720,
		MinHeight:        480,
		AssetServer:      &assetserver.Options{Assets: frontendFS()},
		BackgroundColour: &options.RGBA{R: 22, G: 24, B: 29, A: 255},
		OnStartup: func(ctx context.Context) {
			hub.AddSink(wailsSink{ctx: ctx})
			app.startup(ctx)
		},
		OnShutdown: func(context.Context) { app.shutdown() },
		Bind:       []any{app},
		Linux: &linux.Options{
			Icon:             appIcon,
			ProgramName:      "porthole",
			WebviewGpuPolicy: linux.WebviewGpuPolicyOnDemand,
		},
	})
}
