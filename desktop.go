//go:build desktop

// The desktop window: compiled only into porthole-desktop (tags desktop,production),
// the one build that links GTK/WebKit. See desktop_exec.go for the plain build.

package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/wailsapp/wails/v2"
	"github.com/wailsapp/wails/v2/pkg/options"
	"github.com/wailsapp/wails/v2/pkg/options/assetserver"
	"github.com/wailsapp/wails/v2/pkg/options/linux"
	wruntime "github.com/wailsapp/wails/v2/pkg/runtime"

	"github.com/porthole-app/porthole/backend/apps"
	"github.com/porthole-app/porthole/backend/appview"
	"github.com/porthole-app/porthole/backend/desktop"
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
	launch, err := desktop.ParseLaunch(os.Args[1:])
	if err != nil { // nothing else happens: no window, no hand-over
		fmt.Fprintf(os.Stderr, "porthole: %v\n", err)
		return errUsage
	}
	log := newLogger(os.Stderr, false)
	// A Porthole already running in this session takes the arguments (and
	// comes forward); this process then opens nothing.
	if handed, err := desktop.HandOver(os.Args[1:]); handed {
		log.Info("Porthole is already running; it took this launch's arguments")
		return nil
	} else if err != nil {
		log.Debug("no running Porthole to hand over to", "err", err)
	}
	trayUp, err := desktop.TrayHostPresent()
	if err != nil {
		log.Debug("no tray host", "err", err)
	}
	// Before wails.Run creates the window, on this goroutine (GTK's thread).
	if err := appview.SetupWebData(log); err != nil {
		log.Warn("apps in tabs will be logged out when Porthole restarts", "err", err)
	}
	bus := events.New()
	var (
		uiMu  sync.Mutex
		uiCtx context.Context // the Wails runtime's, once OnStartup ran
	)
	setFile := settings.OpenLogged(log)
	bg := desktop.NewBackground(log, func() bool { return setFile.Get().HideOnClose })
	bg.SetTray(trayUp)
	autostart := desktop.DefaultAutostart(launcherPath())
	var quitOnce sync.Once // a second Quit (tray + signal) would run after GTK's main loop ended
	quit := func() {
		bg.Quitting() // a real quit: the close that follows is not hidden
		uiMu.Lock()
		ctx := uiCtx
		uiMu.Unlock()
		if ctx != nil {
			quitOnce.Do(func() { wruntime.Quit(ctx) })
		}
	}
	withUI := func(f func(ctx context.Context)) {
		uiMu.Lock()
		ctx := uiCtx
		uiMu.Unlock()
		if ctx != nil {
			f(ctx)
		}
	}
	tabs := apps.OpenTabsLogged(log)
	opts := ui.Options{Log: log, Mode: ui.ModeDesktop, Bus: bus, Settings: setFile,
		Servers: openServerConfig(log), Ports: openPortmapLogged(log), Tabs: tabs,
		Quit: quit, Version: currentVersion(), Background: bg, Autostart: &autostart}
	opts.Notify = notify.Desktop(log) // OS notifications, else toasts; app-rules.json
	var life *ui.Lifecycle
	viewsFailed := func() { life.PublishStatus() } // the shell opens apps in the browser
	if views := appview.New(log, bus, viewsFailed); views != nil {
		defer views.Close()
		opts.Views = views
	}
	app, life := ui.New(opts)
	bg.OnFirstHide(life.NotifyBackground) // "Porthole keeps running" (OS notification, else a toast)
	shell := desktop.StartShell(desktop.ShellOptions{Log: log, Bus: bus, Background: bg, Tabs: tabs, Icon: appIcon,
		Servers: app.ListServers, Connect: func(id string) error { _, err := app.Connect(id); return err },
		Disconnect: func(id string) error { _, err := app.Disconnect(id); return err },
		OpenInBrowser: func() (err error) {
			withUI(func(ctx context.Context) { err = life.OpenInBrowser(ctx, frontendFS()) })
			return err
		},
		Show: func() { withUI(func(ctx context.Context) { wruntime.WindowShow(ctx); wruntime.WindowUnminimise(ctx) }) },
		Quit: quit})
	defer shell.Close()
	// A click on a notification brings the (maybe hidden) window forward.
	defer events.Subscribe(bus, notify.TopicOpen, func(r notify.OpenRequest) {
		if r.Show {
			withUI(func(ctx context.Context) { wruntime.WindowShow(ctx); wruntime.WindowUnminimise(ctx) })
		}
	})()
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
			// Wails' own SIGTERM/SIGINT handler quits too: the second quit crashed
			// the window after its main loop ended. Only ours (above) stays.
			signal.Reset(syscall.SIGTERM, syscall.SIGINT)
			signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
			uiMu.Lock()
			uiCtx = ctx
			uiMu.Unlock()
			bus.AddSink(wailsSink{ctx: ctx})
			life.Startup(ctx)
			shell.Launched(os.Args[1:], true)
		},
		// Closing the window with tunnels open hides it (the tray brings it back).
		OnBeforeClose: func(ctx context.Context) bool {
			hide := bg.BeforeClose(life.Busy())
			if hide {
				wruntime.WindowHide(ctx)
			}
			return hide
		},
		StartHidden: launch.Hidden && trayUp, // without a tray, nothing could show it
		SingleInstanceLock: &options.SingleInstanceLock{UniqueId: desktop.SingleInstanceID,
			OnSecondInstanceLaunch: func(d options.SecondInstanceData) { shell.Launched(d.Args, false) }},
		OnShutdown: func(context.Context) { life.Shutdown() },
		Bind:       []any{app},
		Linux: &linux.Options{
			Icon:             appIcon,
			ProgramName:      "porthole",
			WebviewGpuPolicy: gpuPolicy(),
		},
	})
}

// launcherPath is what starts Porthole at login: the plain porthole next to
// this executable (it execs the window), else this executable.
func launcherPath() string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved
	}
	if p := filepath.Join(filepath.Dir(self), "porthole"); p != self {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return self
}

// gpuPolicy: the shell's view composites with OpenGL only where app views do
// (appview.GPU: a GPU render node, or PORTHOLE_GPU).
func gpuPolicy() linux.WebviewGpuPolicy {
	if appview.GPU() {
		return linux.WebviewGpuPolicyOnDemand
	}
	return linux.WebviewGpuPolicyNever
}
