package settings

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/porthole-app/porthole/backend/apperr"
)

var defaultsCases = []struct {
	name string
	d    ServerDefaults
	bad  string // "" valid; else a word of the reason
}{
	{name: "defaults", d: DefaultServerDefaults()},
	{name: "smallest", d: ServerDefaults{PingThresholdSec: 1}},
	{name: "largest", d: ServerDefaults{PingThresholdSec: 600, IdleTimeoutSec: 86400, PoolSize: 32, LoopbackPerServer: true}},
	{name: "ping zero", d: ServerDefaults{PingThresholdSec: 0}, bad: "ping threshold"},
	{name: "ping negative", d: ServerDefaults{PingThresholdSec: -5}, bad: "ping threshold"},
	{name: "ping over 10 min", d: ServerDefaults{PingThresholdSec: 601}, bad: "ping threshold"},
	{name: "idle negative", d: ServerDefaults{PingThresholdSec: 30, IdleTimeoutSec: -1}, bad: "idle timeout"},
	{name: "idle over a day", d: ServerDefaults{PingThresholdSec: 30, IdleTimeoutSec: 86401}, bad: "idle timeout"},
	{name: "pool negative", d: ServerDefaults{PingThresholdSec: 30, PoolSize: -1}, bad: "pool size"},
	{name: "pool 33", d: ServerDefaults{PingThresholdSec: 30, PoolSize: 33}, bad: "pool size"},
}

func TestServerDefaultsValidate(t *testing.T) {
	for _, tc := range defaultsCases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.d.Validate()
			if tc.bad == "" {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", tc.d, err)
				}
				return
			}
			if !errors.Is(err, apperr.ErrBadInput) || !strings.Contains(err.Error(), tc.bad) {
				t.Fatalf("Validate(%+v) = %v; want bad input naming %q", tc.d, err, tc.bad)
			}
		})
	}
}

// TestDefaultsAndStartHiddenSavedOrRefused: valid defaults are saved and
// read back; invalid ones are refused and change nothing; start hidden is on
// for a new user and kept off; a file with defaults out of range is broken.
func TestDefaultsAndStartHiddenSavedOrRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.json")
	s, err := Open(path)
	if err != nil || !s.Get().StartHidden || s.Get().Defaults != DefaultServerDefaults() {
		t.Fatalf("new user: %+v, %v", s.Get(), err)
	}
	want := ServerDefaults{PingThresholdSec: 45, IdleTimeoutSec: 3600, PoolSize: 4}
	if got, err := s.SetDefaults(want); err != nil || got.Defaults != want {
		t.Fatalf("SetDefaults = %+v, %v", got.Defaults, err)
	}
	if got, err := s.SetStartHidden(false); err != nil || got.StartHidden {
		t.Fatalf("SetStartHidden(false) = %+v, %v", got, err)
	}
	for _, tc := range defaultsCases {
		if tc.bad == "" {
			continue
		}
		if got, err := s.SetDefaults(tc.d); !errors.Is(err, apperr.ErrBadInput) || got.Defaults != want {
			t.Fatalf("SetDefaults(%s) = %+v, %v; want refused and unchanged", tc.name, got.Defaults, err)
		}
	}
	s2, err := Open(path)
	if err != nil || s2.Get().Defaults != want || s2.Get().StartHidden {
		t.Fatalf("reopened: %+v, %v", s2.Get(), err)
	}
	// An older file keeps the defaults' defaults; a partial block keeps the rest.
	for in, wantD := range map[string]ServerDefaults{
		`{"theme":"dark"}`:                         DefaultServerDefaults(),
		`{"defaults":{"poolSize":8}}`:              {PingThresholdSec: 30, PoolSize: 8, LoopbackPerServer: true, CookiesPerApp: true},
		`{"defaults":{"loopbackPerServer":false}}`: {PingThresholdSec: 30, CookiesPerApp: true},
		`{"defaults":{"cookiesPerApp":false}}`:     {PingThresholdSec: 30, LoopbackPerServer: true},
	} {
		if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
			t.Fatal(err)
		}
		if s3, err := Open(path); err != nil || s3.Get().Defaults != wantD || !s3.Get().StartHidden {
			t.Fatalf("%s: %+v, %v; want %+v", in, s3.Get(), err, wantD)
		}
	}
	if err := os.WriteFile(path, []byte(`{"defaults":{"pingThresholdSec":0}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if s4, err := Open(path); !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), "ping threshold") || s4.Get() != Default() {
		t.Fatalf("ping 0 in the file: %+v, %v; want ErrBroken naming it, defaults", s4.Get(), err)
	}
	var nilFile *File
	if got, err := nilFile.SetDefaults(want); err != nil || got.Defaults != want {
		t.Fatalf("nil File: %+v, %v", got, err)
	}
}

// FuzzServerDefaultsValidate: Validate accepts exactly the values in range;
// a refusal is one line of bad input; what it accepts survives JSON.
func FuzzServerDefaultsValidate(f *testing.F) {
	for _, tc := range defaultsCases {
		f.Add(tc.d.PingThresholdSec, tc.d.IdleTimeoutSec, tc.d.PoolSize, tc.d.LoopbackPerServer)
	}
	f.Fuzz(func(t *testing.T, ping, idle, pool int, loop bool) {
		d := ServerDefaults{PingThresholdSec: ping, IdleTimeoutSec: idle, PoolSize: pool, LoopbackPerServer: loop}
		inRange := ping >= 1 && ping <= 600 && idle >= 0 && idle <= 86400 && pool >= 0 && pool <= 32
		err := d.Validate()
		if inRange != (err == nil) {
			t.Fatalf("Validate(%+v) = %v; in range: %v", d, err, inRange)
		}
		if err != nil {
			if !errors.Is(err, apperr.ErrBadInput) || strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("Validate(%+v): %q is not one line of bad input", d, err)
			}
			if got, err2 := (*File)(nil).SetDefaults(d); err2 == nil || got.Defaults != DefaultServerDefaults() {
				t.Fatalf("SetDefaults(%+v) accepted it: %+v", d, got)
			}
			return
		}
		b, _ := json.Marshal(d)
		var back ServerDefaults
		if err := json.Unmarshal(b, &back); err != nil || back != d || back.Validate() != nil {
			t.Fatalf("JSON round trip %+v → %s → %+v, %v", d, b, back, err)
		}
		if d.PingThreshold().Seconds() != float64(ping) || d.IdleTimeout().Seconds() != float64(idle) {
			t.Fatalf("durations of %+v", d)
		}
	})
}
