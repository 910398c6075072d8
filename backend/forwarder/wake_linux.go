//go:build linux

package forwarder

import (
	"context"

	"github.com/godbus/dbus/v5"
)

// watchSleepSignal listens to logind's PrepareForSleep(bool) on the system
// bus: false means "resumed". No bus or no logind is fine (logged at debug).
func (w *WakeDetector) watchSleepSignal(ctx context.Context) {
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		w.log.Debug("no system D-Bus; wake detection uses clocks only", "err", err)
		return
	}
	defer conn.Close()
	if err := conn.AddMatchSignalContext(ctx,
		dbus.WithMatchObjectPath("/org/freedesktop/login1"),
		dbus.WithMatchInterface("org.freedesktop.login1.Manager"),
		dbus.WithMatchMember("PrepareForSleep"),
	); err != nil {
		w.log.Debug("cannot watch logind's PrepareForSleep; wake detection uses clocks only", "err", err)
		return
	}
	sigs := make(chan *dbus.Signal, 8)
	conn.Signal(sigs)
	for {
		select {
		case <-ctx.Done():
			return
		case sig, ok := <-sigs:
			if !ok {
				return
			}
			if sig.Name != "org.freedesktop.login1.Manager.PrepareForSleep" || len(sig.Body) != 1 {
				continue
			}
			if sleeping, ok := sig.Body[0].(bool); ok {
				if sleeping {
					w.log.Debug("logind: going to sleep")
				} else {
					w.Wake("logind reported a resume from sleep")
				}
			}
		}
	}
}
