package agent

import (
	"strconv"
	"testing"
)

// TestDisplayNameReadsOnlyNames: DisplayName reads the name fields only,
// so RemoteLogin may name its login in an error (a call that timed out)
// while SetForwards replaces spec.Forwards under its lock. A value receiver
// copied the whole spec, Forwards included: -race saw it in a fresh run
// (a listing's Exec timing out while OpenApp set the forwards).
func TestDisplayNameReadsOnlyNames(t *testing.T) {
	s := &LoginSpec{Name: "gpu box"}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			s.Forwards = []ForwardSpec{{ID: "app-" + strconv.Itoa(i)}}
		}
	}()
	for range 2000 {
		if got := s.DisplayName(); got != "gpu box" {
			t.Fatalf("DisplayName = %q", got)
		}
	}
	<-done
}
