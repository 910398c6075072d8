package settings

import (
	"time"

	"github.com/porthole-app/porthole/backend/apperr"
)

// Limits of ServerDefaults, checked by Validate.
const (
	MinPingThreshold = time.Second
	MaxPingThreshold = 10 * time.Minute
	MaxIdleTimeout   = 24 * time.Hour
	MaxPoolSize      = 32
)

// ServerDefaults are what a new server starts with: its connection options
// (the add-server form is filled in with them) and whether new endpoints get
// a loopback address of their own per server and per app.
type ServerDefaults struct {
	// PingThresholdSec: a connection idle this many seconds is pinged before
	// use; 1 s – 10 min.
	PingThresholdSec int `json:"pingThresholdSec"`
	// IdleTimeoutSec: an unused SSH connection is closed after this many
	// seconds (and redialed on demand); 0 never closes it; at most 24 h.
	IdleTimeoutSec int `json:"idleTimeoutSec"`
	// PoolSize: pre-opened channels per hot target; 0 is Porthole's
	// default; at most 32.
	PoolSize int `json:"poolSize"`
	// LoopbackPerServer: each server's new endpoints get its own loopback
	// address (127.0.0.2, 127.0.0.3…), so two servers' apps never share
	// cookies; off: new endpoints use 127.0.0.1 with distinct ports.
	LoopbackPerServer bool `json:"loopbackPerServer"`
	// CookiesPerApp ("separate cookies per app"): with LoopbackPerServer on,
	// each new app endpoint gets a loopback address of its own (127.N.A.1),
	// so two apps of one server never share cookies either (browsers ignore
	// the port); off: a server's new endpoints share its address. Endpoints
	// assigned before keep theirs either way.
	CookiesPerApp bool `json:"cookiesPerApp"`
}

// DefaultServerDefaults are a new user's: ping after 30 s idle, never close
// an idle connection, the default pool, a loopback address per server and
// per app.
func DefaultServerDefaults() ServerDefaults {
	return ServerDefaults{PingThresholdSec: 30, LoopbackPerServer: true, CookiesPerApp: true}
}

// Validate refuses a value out of range, saying which and why (apperr.ErrBadInput).
func (d ServerDefaults) Validate() error {
	switch {
	case d.PingThresholdSec < int(MinPingThreshold/time.Second) || d.PingThresholdSec > int(MaxPingThreshold/time.Second):
		return apperr.BadInput("ping threshold %d s is out of range: use 1 s to 10 min (600 s)", d.PingThresholdSec)
	case d.IdleTimeoutSec < 0 || d.IdleTimeoutSec > int(MaxIdleTimeout/time.Second):
		return apperr.BadInput("idle timeout %d s is out of range: use 0 (never) to 24 h (86400 s)", d.IdleTimeoutSec)
	case d.PoolSize < 0 || d.PoolSize > MaxPoolSize:
		return apperr.BadInput("pool size %d is out of range: use 0 (Porthole's default) to %d", d.PoolSize, MaxPoolSize)
	}
	return nil
}

// PingThreshold is PingThresholdSec as a duration.
func (d ServerDefaults) PingThreshold() time.Duration {
	return time.Duration(d.PingThresholdSec) * time.Second
}

// IdleTimeout is IdleTimeoutSec as a duration (0: never).
func (d ServerDefaults) IdleTimeout() time.Duration {
	return time.Duration(d.IdleTimeoutSec) * time.Second
}

// SetDefaults validates and saves the defaults for new servers; an invalid
// value is refused with the reason and changes nothing. A nil File changes
// nothing and returns what it would be.
func (f *File) SetDefaults(d ServerDefaults) (Settings, error) {
	if err := d.Validate(); err != nil {
		return f.Get(), err
	}
	if f == nil {
		s := Default()
		s.Defaults = d
		return s, nil
	}
	return f.Update(func(s *Settings) { s.Defaults = d })
}

// SetStartHidden sets whether starting at login starts Porthole with its
// window hidden (on, the default) and saves it. A nil File changes nothing
// and returns what it would be.
func (f *File) SetStartHidden(on bool) (Settings, error) {
	if f == nil {
		s := Default()
		s.StartHidden = on
		return s, nil
	}
	return f.Update(func(s *Settings) { s.StartHidden = on })
}
