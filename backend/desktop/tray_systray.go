//go:build desktop

// The tray icon and menu as a StatusNotifierItem (fyne.io/systray: pure
// D-Bus on Linux, no GTK, so it runs beside the Wails window's GTK main
// loop). Only porthole-desktop links it; the plain build has tray_stub.go.

package desktop

import (
	"log/slog"
	"strings"
	"sync"

	"fyne.io/systray"
)

// Slots of the tray menu: its items are made once and then retitled, shown
// and hidden, so that an item's dbusmenu id stays what a tray host last
// read (a rebuilt menu would drop the click on an item it replaced).
const (
	serverSlots = 20
	appSlots    = 21 // 20 apps and "…and more"
)

// slot is one item (and, for a server, its Connect/Disconnect sub-item).
type slot struct {
	item, sub *systray.MenuItem
	id, subID string // what a click does now; "" hidden or inactive
}

// Tray is the running tray icon. There is one per process (systray is global).
// The menu's model is TrayMenu.
type Tray struct {
	log      *slog.Logger
	click    func(id string)
	icon     []byte
	iconDown []byte
	end      func()
	readyCh  chan struct{}
	wg       sync.WaitGroup

	mu      sync.Mutex
	fixed   map[string]*slot // show, browser, quit
	servers []*slot
	apps    []*slot
	menu    []MenuEntry
	down    bool
	ready   bool
	closed  bool
}

// StartTray shows the icon and menu on the session bus. click gets a menu
// entry's ID (Menu*). iconDown is the "some server is down" icon.
func StartTray(log *slog.Logger, icon, iconDown []byte, menu []MenuEntry, down bool, click func(id string)) *Tray {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Tray{log: log, click: click, icon: icon, iconDown: iconDown, readyCh: make(chan struct{})}
	start, end := systray.RunWithExternalLoop(func() {
		systray.SetTitle("Porthole")
		t.mu.Lock()
		t.build()
		t.ready = true
		t.apply(menu, down, true)
		t.mu.Unlock()
		close(t.readyCh)
	}, nil)
	t.end = end
	systray.SetOnTapped(func() { click(MenuShow) })
	start()
	return t
}

// build makes every slot once (t.mu held).
func (t *Tray) build() {
	t.fixed = map[string]*slot{}
	add := func(title string) *slot {
		s := &slot{item: systray.AddMenuItem(title, "")}
		t.listen(s, s.item, false)
		return s
	}
	t.fixed[MenuShow] = add("Show Porthole")
	systray.AddSeparator()
	for range serverSlots {
		s := add("")
		s.sub = s.item.AddSubMenuItem("", "")
		t.listen(s, s.sub, true)
		s.item.Hide()
		t.servers = append(t.servers, s)
	}
	systray.AddSeparator()
	for range appSlots {
		s := add("")
		s.item.Hide()
		t.apps = append(t.apps, s)
	}
	systray.AddSeparator()
	t.fixed[MenuBrowser] = add("Open Porthole in your browser")
	t.fixed[MenuSettings] = add("Settings…")
	systray.AddSeparator()
	t.fixed[MenuQuit] = add("Quit Porthole")
}

// listen calls click with the slot's current id (or sub-id) on each click,
// until the item is removed at Close (systray closes its channel then).
func (t *Tray) listen(s *slot, item *systray.MenuItem, sub bool) {
	ch := item.ClickedCh
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for range ch {
			t.mu.Lock()
			id := s.id
			if sub {
				id = s.subID
			}
			t.mu.Unlock()
			if strings.TrimSpace(id) != "" {
				t.click(id)
			}
		}
	}()
}

// Update shows menu and the icon variant (down: some server is down).
func (t *Tray) Update(menu []MenuEntry, down bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || !t.ready {
		return
	}
	t.apply(menu, down, false)
}

// apply runs with t.mu held.
func (t *Tray) apply(menu []MenuEntry, down, first bool) {
	if first || down != t.down {
		if down {
			systray.SetIcon(t.iconDown)
			systray.SetTooltip("Porthole: a server is down")
		} else {
			systray.SetIcon(t.icon)
			systray.SetTooltip("Porthole")
		}
	}
	t.down = down
	var srv, app []MenuEntry
	for _, e := range menu {
		switch {
		case e.Label == "":
		case t.fixed[e.ID] != nil:
			s := t.fixed[e.ID]
			s.id = e.ID
			setItem(s.item, e.Label, e.Enabled)
		case strings.HasPrefix(e.ID, MenuServerPrefix) || e.ID == "no-servers":
			srv = append(srv, e)
		default:
			app = append(app, e)
		}
	}
	fill(t.servers, srv)
	fill(t.apps, app)
}

// fill shows entries in slots, in order, and hides the slots left over.
func fill(slots []*slot, entries []MenuEntry) {
	for i, s := range slots {
		if i >= len(entries) {
			s.id, s.subID = "", ""
			s.item.Hide()
			continue
		}
		e := entries[i]
		s.id = e.ID
		if len(e.Children) > 0 {
			s.id = "" // a submenu's own click does nothing
		}
		setItem(s.item, e.Label, e.Enabled)
		s.item.Show()
		if s.sub == nil {
			continue
		}
		if len(e.Children) == 0 {
			s.subID = ""
			s.sub.Hide()
			continue
		}
		c := e.Children[0]
		s.subID = c.ID
		setItem(s.sub, c.Label, c.Enabled)
		s.sub.Show()
	}
}

func setItem(item *systray.MenuItem, label string, enabled bool) {
	item.SetTitle(label)
	if enabled {
		item.Enable()
	} else {
		item.Disable()
	}
}

// Close removes the icon from the session bus and waits for the menu's
// click goroutines.
func (t *Tray) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	t.mu.Unlock()
	<-t.readyCh
	systray.ResetMenu() // closes every item's channel: the goroutines end
	t.end()
	t.wg.Wait()
}
