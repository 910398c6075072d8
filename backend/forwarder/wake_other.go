//go:build !linux

package forwarder

import "context"

// watchSleepSignal: only Linux has logind; elsewhere the clocks suffice.
func (w *WakeDetector) watchSleepSignal(context.Context) {}
