//go:build linux

package profiles

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/godbus/dbus/v5"
)

const secretServiceName = "org.freedesktop.secrets"

// sessionBusAddress finds the D-Bus session bus the way godbus does
// (DBUS_SESSION_BUS_ADDRESS, then /run/user/<uid>/bus and
// /run/user/<uid>/dbus-session) but never auto-launches one: godbus would
// otherwise run dbus-launch and leave a stray bus daemon behind. It returns
// "" and the reason when there is none.
func sessionBusAddress() (string, string) {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return a, ""
	}
	run := fmt.Sprintf("/run/user/%d", os.Getuid())
	if st, err := os.Stat(filepath.Join(run, "bus")); err == nil && !st.IsDir() {
		return "unix:path=" + dbus.EscapeBusAddressValue(filepath.Join(run, "bus")), ""
	}
	if b, err := os.ReadFile(filepath.Join(run, "dbus-session")); err == nil {
		if a, ok := strings.CutPrefix(string(b), "DBUS_SESSION_BUS_ADDRESS="); ok {
			if a = strings.TrimSpace(a); a != "" {
				return a, ""
			}
		}
	}
	return "", "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set and " + run + "/bus does not exist); " +
		"run Porthole inside a desktop session, or start one with dbus-run-session"
}

// probeKeyring checks that the session bus answers and that a Secret
// Service is running on it or can be started by D-Bus activation. It returns
// when ctx ends at the latest: the private connection is tied to ctx and
// closed by godbus when ctx is done, which unblocks every step.
func probeKeyring(ctx context.Context) error {
	addr, why := sessionBusAddress()
	if addr == "" {
		return fmt.Errorf("%w: %s", ErrKeyringUnavailable, why)
	}
	unavailable := func(what string, err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: the D-Bus session bus (%s) did not answer in time while %s; is the session still alive?", ErrKeyringUnavailable, addr, what)
		}
		return fmt.Errorf("%w: %s on the D-Bus session bus %s: %v", ErrKeyringUnavailable, what, addr, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // also closes conn (dbus.WithContext)
	conn, err := dbus.Connect(addr, dbus.WithContext(ctx))
	if err != nil {
		return unavailable("connecting", err)
	}
	defer conn.Close()
	var owned bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, secretServiceName).Store(&owned); err != nil {
		return unavailable("looking for the Secret Service", err)
	}
	if owned {
		return nil
	}
	var activatable []string
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.ListActivatableNames", 0).Store(&activatable); err != nil {
		return unavailable("looking for the Secret Service", err)
	}
	if slices.Contains(activatable, secretServiceName) {
		return nil
	}
	return fmt.Errorf("%w: no Secret Service (e.g. gnome-keyring-daemon or KWallet) runs on the D-Bus session bus; install or start one", ErrKeyringUnavailable)
}
