package desktop

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/godbus/dbus/v5"
)

// WatcherName is the StatusNotifierWatcher's bus name: the tray host that
// shows StatusNotifierItems (KDE, GNOME with the AppIndicator extension,
// waybar, …). Without it there is no tray icon to come back from.
const WatcherName = "org.kde.StatusNotifierWatcher"

// TrayHostPresent reports whether a StatusNotifierWatcher owns its name on
// the session bus.
func TrayHostPresent() (bool, error) {
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return false, fmt.Errorf("connect to the session bus: %w", err)
	}
	defer conn.Close()
	var has bool
	if err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, WatcherName).Store(&has); err != nil {
		return false, fmt.Errorf("ask the session bus for %s: %w", WatcherName, err)
	}
	return has, nil
}

// SingleInstanceID is the window's options.SingleInstanceLock.UniqueId.
const SingleInstanceID = "app.porthole.desktop"

// singleInstanceName is the bus name and object path Wails v2 (Linux) owns
// for SingleInstanceID (internal/frontend/desktop/linux/single_instance.go).
func singleInstanceName(uniqueID string) (name string, path dbus.ObjectPath) {
	id := "wails_app_" + strings.ReplaceAll(strings.ReplaceAll(uniqueID, "-", "_"), ".", "_")
	return "org." + id + ".SingleInstance", dbus.ObjectPath("/org/" + id + "/SingleInstance")
}

// HandOver gives args to a Porthole window already running in this session
// (Wails' SingleInstanceLock protocol: its OnSecondInstanceLaunch gets
// them) and reports whether one took them. It runs before this process
// opens anything, so a second launch starts no agent and no window; Wails'
// own check stays behind it for two launches at the same instant.
func HandOver(args []string) (bool, error) {
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return false, fmt.Errorf("connect to the session bus: %w", err)
	}
	defer conn.Close()
	name, path := singleInstanceName(SingleInstanceID)
	var has bool
	if err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has); err != nil {
		return false, fmt.Errorf("ask the session bus for a running Porthole: %w", err)
	}
	if !has {
		return false, nil
	}
	wd, _ := os.Getwd()
	msg, err := json.Marshal(struct {
		Args             []string
		WorkingDirectory string
	}{Args: args, WorkingDirectory: wd})
	if err != nil {
		return false, err
	}
	if err := conn.Object(name, path).Call(name+".SendMessage", 0, string(msg)).Store(); err != nil {
		return false, fmt.Errorf("hand the arguments to the running Porthole: %w", err)
	}
	return true, nil
}
