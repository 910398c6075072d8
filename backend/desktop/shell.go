package desktop

import (
	"log/slog"
	"sync"

	"github.com/porthole-app/porthole/backend/apps"
	"github.com/porthole-app/porthole/backend/events"
	"github.com/porthole-app/porthole/backend/servers"
)

// ShellOptions wire the shell to the window and the App (the root passes
// Wails' runtime and the App's methods).
type ShellOptions struct {
	Log        *slog.Logger
	Bus        *events.Bus
	Background *Background // its Tray() says whether to show the icon
	Tabs       *apps.TabsFile
	Icon       []byte // PNG; the "down" variant is made from it
	Servers    func() []servers.ServerSummary
	Connect    func(id string) error
	Disconnect func(id string) error
	// OpenInBrowser serves the App to the user's browser and opens it.
	OpenInBrowser func() error
	Show          func() // shows and raises the window
	Quit          func() // quits for real (Ctrl+Q's path)
}

// Shell is the window's life outside it: the tray icon and menu, and the
// requests of launches (the first, and each later one handed over).
type Shell struct {
	o    ShellOptions
	log  *slog.Logger
	reqs *Requests
	tray *Tray
	stop []func()
	wg   sync.WaitGroup // clicks that call into the App

	mu     sync.Mutex
	list   []servers.ServerSummary
	tabs   []apps.SavedTab
	closed bool
}

// StartShell shows the tray icon when a tray host is there; without one it
// says that closing the window quits.
func StartShell(o ShellOptions) *Shell {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Shell{o: o, log: log, reqs: NewRequests(o.Bus)}
	if !o.Background.Tray() {
		log.Info("no system tray (no StatusNotifierWatcher on the session bus): closing the window quits Porthole")
		return s
	}
	down, err := DownIcon(o.Icon)
	if err != nil {
		log.Warn("the tray's server-down icon is the plain icon", "err", err)
		down = o.Icon
	}
	s.tabs = o.Tabs.Get()
	s.tray = StartTray(log.With("component", "tray"), o.Icon, down, TrayMenu(nil, s.tabs), false, s.click)
	s.stop = append(s.stop, events.Subscribe(o.Bus, servers.TopicServers, func(l servers.ServerList) {
		s.mu.Lock()
		s.list = l.Servers
		s.mu.Unlock()
		s.refresh()
	}))
	o.Tabs.OnSave(func(t []apps.SavedTab) {
		s.mu.Lock()
		s.tabs = t
		s.mu.Unlock()
		s.refresh()
	})
	return s
}

func (s *Shell) refresh() {
	s.mu.Lock()
	list, tabs, closed := s.list, s.tabs, s.closed
	s.mu.Unlock()
	if !closed && s.tray != nil {
		s.tray.Update(TrayMenu(list, tabs), SomeServerDown(list))
	}
}

// click runs a tray menu entry.
func (s *Shell) click(id string) {
	switch {
	case id == MenuShow:
		s.o.Show()
	case id == MenuSettings:
		s.reqs.Send(DesktopRequest{Kind: RequestSettings})
		s.o.Show()
	case id == MenuQuit:
		s.log.Info("quit asked for from the tray")
		s.o.Quit()
	case id == MenuBrowser:
		s.async(func() {
			if err := s.o.OpenInBrowser(); err != nil {
				s.log.Warn("could not open Porthole in the browser", "err", err)
				s.o.Show()
				s.reqs.Send(DesktopRequest{Kind: RequestMessage, Message: "Porthole could not open in your browser: " + err.Error()})
			}
		})
	case len(id) > len(MenuConnectPrefix) && id[:len(MenuConnectPrefix)] == MenuConnectPrefix:
		sid := id[len(MenuConnectPrefix):]
		s.async(func() {
			if err := s.o.Connect(sid); err != nil {
				s.log.Info("connecting from the tray failed", "server", sid, "err", err)
			}
		})
	case len(id) > len(MenuDisconnPrefix) && id[:len(MenuDisconnPrefix)] == MenuDisconnPrefix:
		sid := id[len(MenuDisconnPrefix):]
		s.async(func() { _ = s.o.Disconnect(sid) })
	case len(id) > len(MenuTabPrefix) && id[:len(MenuTabPrefix)] == MenuTabPrefix:
		s.reqs.Send(DesktopRequest{Kind: RequestFocusTab, TabID: id[len(MenuTabPrefix):]})
		s.o.Show()
	}
}

func (s *Shell) async(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); f() }()
}

// Launched acts on a launch's arguments: the first launch's (once the
// window is up; hidden it stays hidden unless there is a URL), or a later
// launch's handed over by HandOver (the window comes forward).
func (s *Shell) Launched(args []string, first bool) {
	l, err := ParseLaunch(args)
	if err != nil { // the launching process said so already; nothing else happens
		s.log.Info("a second launch had unusable arguments; ignored")
		return
	}
	r := RequestFor(l, refs(s.o.Servers()))
	if r.Kind != RequestShow {
		s.log.Info("a launch asks the window to act", "request", r.Kind.String(), "first", first)
		s.reqs.Send(r)
	}
	if !first || r.Kind != RequestShow {
		s.o.Show()
	}
}

func refs(list []servers.ServerSummary) []ServerRef {
	out := make([]ServerRef, len(list))
	for i, sv := range list {
		out[i] = ServerRef{ID: sv.ID, Name: sv.Name}
	}
	return out
}

// Close removes the tray icon and waits for the clicks it started.
func (s *Shell) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	for _, f := range s.stop {
		f()
	}
	s.o.Tabs.OnSave(nil)
	if s.tray != nil {
		s.tray.Close()
	}
	s.wg.Wait()
}
