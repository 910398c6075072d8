package ui

import (
	"context"
	"fmt"
	"io/fs"
	"sync"

	"github.com/porthole-app/porthole/backend/desktop"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/portmap"
	"github.com/porthole-app/porthole/backend/webui"
)

// browserUI is the running window's App served to the user's browser (the
// tray's "Open Porthole in your browser"): the same servers, apps and bus,
// seen as `porthole serve` sees them (no window to quit, no app views).
type browserUI struct {
	mu   sync.Mutex
	url  string // with the token; "" until started
	view *App
}

// browserSink hands the bus's events to serve's page, with the browser
// view's status and without the window's own requests.
type browserSink struct {
	srv  *webui.Server
	view *App
}

func (s browserSink) Publish(topic string, data any) {
	switch topic {
	case TopicStatus.Name():
		data = s.view.Status()
	case desktop.TopicRequests.Name():
		return
	}
	s.srv.Publish(topic, data)
}

// OpenInBrowser serves the window's App to the user's browser on a
// loopback port (started once, stopped with ctx) and opens it there
// through a private page (the token never goes on a command line). Apps
// opened in that page before it was started are framed by the window
// only: the page offers to open them in their own browser tabs.
func (l *Lifecycle) OpenInBrowser(ctx context.Context, assets fs.FS) error {
	a := l.a
	a.browserOnce.mu.Lock()
	defer a.browserOnce.mu.Unlock()
	if a.browserOnce.url == "" {
		ln, err := portmap.Listen(ctx, "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("serve Porthole to your browser: %w", err)
		}
		view := &App{log: a.log, bus: a.bus, settings: a.settings, servers: a.servers, apps: a.apps, tabs: a.tabs,
			mode: ModeServe, started: a.started, version: a.version, ctx: a.context()}
		snapshot := func() []webui.Event {
			out := WireSnapshot(a.bus)
			kept := out[:0]
			for _, e := range out {
				switch e.Topic {
				case TopicStatus.Name():
					e.Data = view.Status()
				case desktop.TopicRequests.Name():
					continue
				}
				kept = append(kept, e)
			}
			return kept
		}
		srv, err := webui.New(webui.Options{Bound: view, Assets: assets, Snapshot: snapshot, Status: HTTPStatus, Logger: a.log})
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("serve Porthole to your browser: %w", err)
		}
		a.bus.AddSink(browserSink{srv: srv, view: view})
		go func() { _ = srv.Serve(ctx, ln) }()
		a.browserOnce.url, a.browserOnce.view = srv.URL(ln.Addr().String()), view
		a.log.Info("serving the Porthole UI to your browser too", "addr", ln.Addr().String())
	}
	return a.apps.OpenExternal(a.browserOnce.url)
}

var _ events.Sink = browserSink{}
