package main

import (
	"context"
	"errors"
	"os"
	"runtime"

	"github.com/wailsapp/wails/v2"
	"github.com/wailsapp/wails/v2/pkg/options"
	"github.com/wailsapp/wails/v2/pkg/options/assetserver"
	"github.com/wailsapp/wails/v2/pkg/options/linux"
	wruntime "github.com/wailsapp/wails/v2/pkg/runtime"

	"github.com/porthole-app/porthole/backend/webui"
)

// errNoDisplay: the desktop window needs a graphical session.
var errNoDisplay = errors.New("no display: the Porthole window needs a graphical session (DISPLAY or WAYLAND_DISPLAY is not set); run `porthole serve` to use Porthole from your browser instead")

// wailsSink publishes events to the window through the Wails runtime.
type wailsSink struct{ ctx context.Context }

func (s wailsSink) Publish(topic string, data any) {
	wruntime.EventsEmit(s.ctx, "porthole:event", webui.Event{Topic: topic, Data: data})
}

func runDesktop() error {
	if runtime.GOOS == "linux" && os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return errNoDisplay
	}
	log := newLogger(os.Stderr, false)
	hub := newEventHub()
	app := NewApp(log, ModeDesktop, hub, openSettingsLogged(log))
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
		Bind: []any{app},
		Linux: &linux.Options{
			Icon:             appIcon,
			ProgramName:      "porthole",
			WebviewGpuPolicy: linux.WebviewGpuPolicyOnDemand,
		},
	})
}
