package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// The freedesktop Notifications API on the session bus.
const (
	notifyService   = "org.freedesktop.Notifications"
	notifyPath      = dbus.ObjectPath("/org/freedesktop/Notifications")
	notifyInterface = "org.freedesktop.Notifications"
)

// ErrNoDesktop: no notification service answers on the session bus; the
// window shows toasts instead.
var ErrNoDesktop = errors.New("no desktop notification service")

// redialAfter spaces attempts to reach the session bus after a failure.
const redialAfter = 30 * time.Second

// maxActions bounds the clickable notifications remembered.
const maxActions = 64

// DBus sends notifications through org.freedesktop.Notifications on the
// session bus, with an action button, and runs a notification's action
// when the person clicks it (the ActionInvoked signal). It connects on the
// first Send, never auto-launches a bus, and tries again at most every 30 s
// after a failure.
type DBus struct {
	log  *slog.Logger
	addr string // "": the session bus

	mu         sync.Mutex
	conn       *dbus.Conn
	connCancel context.CancelFunc
	failedAt   time.Time
	failErr    error
	closed     bool
	actions    map[uint32]func()
	order      []uint32
	wg         sync.WaitGroup
}

// NewDBus returns a sender for the bus at address ("" = the session bus).
func NewDBus(log *slog.Logger, address string) *DBus {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &DBus{log: log.With("component", "notify.dbus"), addr: address, actions: map[uint32]func(){}}
}

// sessionBusAddress finds the session bus without auto-launching one.
func sessionBusAddress() (string, error) {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return a, nil
	}
	p := filepath.Join(fmt.Sprintf("/run/user/%d", os.Getuid()), "bus")
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return "unix:path=" + dbus.EscapeBusAddressValue(p), nil
	}
	return "", fmt.Errorf("%w: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set and %s does not exist)", ErrNoDesktop, p)
}

// connLocked returns the connection, dialing it if needed.
func (d *DBus) connLocked(ctx context.Context) (*dbus.Conn, error) {
	if d.closed {
		return nil, fmt.Errorf("%w: closed", ErrNoDesktop)
	}
	if d.conn != nil && d.conn.Connected() {
		return d.conn, nil
	}
	if !d.failedAt.IsZero() && time.Since(d.failedAt) < redialAfter {
		return nil, d.failErr
	}
	if d.conn != nil { // broken: drop it
		_ = d.conn.Close()
		d.connCancel()
		d.conn, d.connCancel = nil, nil
	}
	fail := func(err error) (*dbus.Conn, error) {
		d.failedAt, d.failErr = time.Now(), err
		return nil, err
	}
	addr := d.addr
	if addr == "" {
		a, err := sessionBusAddress()
		if err != nil {
			return fail(err)
		}
		addr = a
	}
	// The connection lives until Close; ctx bounds only the dial.
	cctx, ccancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, ccancel)
	conn, err := dbus.Connect(addr, dbus.WithContext(cctx))
	if !stop() && err == nil {
		_ = conn.Close()
		err = ctx.Err()
	}
	if err != nil {
		ccancel()
		return fail(fmt.Errorf("%w: connecting to the session bus: %w", ErrNoDesktop, err))
	}
	for _, member := range []string{"ActionInvoked", "NotificationClosed"} {
		if err := conn.AddMatchSignalContext(ctx, dbus.WithMatchObjectPath(notifyPath), dbus.WithMatchInterface(notifyInterface), dbus.WithMatchMember(member)); err != nil {
			_ = conn.Close()
			ccancel()
			return fail(fmt.Errorf("%w: watching clicks: %w", ErrNoDesktop, err))
		}
	}
	ch := make(chan *dbus.Signal, 32)
	conn.Signal(ch)
	d.wg.Go(func() { d.signals(ch) }) // ends when conn closes (godbus closes ch)
	d.conn, d.connCancel, d.failedAt, d.failErr = conn, ccancel, time.Time{}, nil
	return conn, nil
}

// signals runs the action of a clicked notification.
func (d *DBus) signals(ch <-chan *dbus.Signal) {
	for sig := range ch {
		if len(sig.Body) < 2 {
			continue
		}
		id, ok := sig.Body[0].(uint32)
		if !ok {
			continue
		}
		d.mu.Lock()
		f := d.actions[id]
		if sig.Name == notifyInterface+".NotificationClosed" || f != nil {
			delete(d.actions, id) // one click per notification
		}
		d.mu.Unlock()
		if sig.Name == notifyInterface+".ActionInvoked" && f != nil {
			d.log.Debug("notification clicked", "id", id)
			f()
		}
	}
}

// Send shows n on the desktop.
func (d *DBus) Send(ctx context.Context, n Notification, onAction func()) error {
	d.mu.Lock()
	conn, err := d.connLocked(ctx)
	d.mu.Unlock()
	if err != nil {
		return err
	}
	var actions []string
	if n.Action != "" && onAction != nil {
		// "default" is a click on the notification itself.
		actions = []string{"default", n.Action, "open", n.Action}
	}
	hints := map[string]dbus.Variant{
		"desktop-entry": dbus.MakeVariant("porthole"),
		"urgency":       dbus.MakeVariant(byte(1)),
		"category":      dbus.MakeVariant("network"),
	}
	var id uint32
	call := conn.Object(notifyService, notifyPath).CallWithContext(ctx, notifyInterface+".Notify", 0,
		"Porthole", uint32(0), "porthole", n.Title, escapeMarkup(n.Body), actions, hints, int32(-1))
	if err := call.Store(&id); err != nil {
		return fmt.Errorf("%w: Notify: %w", ErrNoDesktop, err)
	}
	if actions != nil {
		d.mu.Lock()
		d.actions[id] = onAction
		d.order = append(d.order, id)
		if len(d.order) > maxActions {
			delete(d.actions, d.order[0])
			d.order = d.order[1:]
		}
		d.mu.Unlock()
	}
	return nil
}

// escapeMarkup keeps a body's text from being read as the spec's markup.
func escapeMarkup(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Close disconnects and waits for the signal reader.
func (d *DBus) Close() error {
	d.mu.Lock()
	conn, cancel := d.conn, d.connCancel
	d.conn, d.connCancel, d.closed = nil, nil, true
	d.mu.Unlock()
	var err error
	if conn != nil {
		err = conn.Close()
	}
	if cancel != nil {
		cancel()
	}
	d.wg.Wait()
	return err
}
