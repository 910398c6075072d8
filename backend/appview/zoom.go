package appview

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/porthole-app/porthole/backend/atomicfile"
	"github.com/porthole-app/porthole/backend/ui"
)

// Zoom is kept per app: per endpoint origin (http://127.0.0.2:8888), in
// appzoom.json in Porthole's config directory. Ctrl+plus, Ctrl+minus and
// Ctrl+0 step through the levels browsers use.

// ZoomLevels are the steps of Ctrl+plus and Ctrl+minus.
var ZoomLevels = []float64{0.3, 0.5, 0.67, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 1.75, 2, 2.5, 3}

// NextZoom is the level after cur for op.
func NextZoom(cur float64, op ui.ZoomOp) float64 {
	switch op {
	case ui.ZoomIn:
		for _, l := range ZoomLevels {
			if l > cur+0.001 {
				return l
			}
		}
		return ZoomLevels[len(ZoomLevels)-1]
	case ui.ZoomOut:
		for i := len(ZoomLevels) - 1; i >= 0; i-- {
			if ZoomLevels[i] < cur-0.001 {
				return ZoomLevels[i]
			}
		}
		return ZoomLevels[0]
	}
	return 1
}

// ZoomFile is the saved zoom levels. A file that fails to parse is
// reported, copied aside (appzoom.json.corrupt-…) and not used; the next
// change writes a new one.
type ZoomFile struct {
	path string // "": in memory only
	log  *slog.Logger

	mu     sync.Mutex
	levels map[string]float64
}

type zoomDoc struct {
	Version int                `json:"version"`
	Levels  map[string]float64 `json:"levels"`
}

// ErrZoomFile: appzoom.json could not be read.
var ErrZoomFile = errors.New("the saved zoom levels could not be read")

// OpenZoom reads path (a missing file is no levels).
func OpenZoom(path string, log *slog.Logger) (*ZoomFile, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	z := &ZoomFile{path: path, log: log, levels: map[string]float64{}}
	if path == "" {
		return z, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return z, nil
	}
	if err != nil {
		return z, fmt.Errorf("%w: %w", ErrZoomFile, err)
	}
	var doc zoomDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		kept, berr := atomicfile.BackupCorrupt(path, b, time.Now())
		if berr != nil {
			kept = path + " (could not copy it: " + berr.Error() + ")"
		}
		return z, fmt.Errorf("%w: %s is not valid JSON (%s); a copy is kept at %s, and zoom starts at 100 %%", ErrZoomFile, path, atomicfile.DescribeJSONError(b, err), kept)
	}
	for k, v := range doc.Levels {
		if ok := validZoom(v); ok {
			z.levels[k] = v
		}
	}
	return z, nil
}

// OpenZoomLogged opens appzoom.json in the config directory, logging what
// goes wrong (zoom then starts at 100 %).
func OpenZoomLogged(log *slog.Logger) *ZoomFile {
	p := ""
	if dir, err := atomicfile.ConfigDir(); err == nil {
		p = filepath.Join(dir, "appzoom.json")
	} else {
		log.Warn("zoom levels will not be kept", "err", err)
	}
	z, err := OpenZoom(p, log)
	if err != nil {
		log.Warn("zoom levels", "err", err)
	}
	return z
}

func validZoom(v float64) bool {
	return !math.IsNaN(v) && v >= ZoomLevels[0] && v <= ZoomLevels[len(ZoomLevels)-1]
}

// Get is origin's level (1 when none is saved).
func (z *ZoomFile) Get(origin string) float64 {
	z.mu.Lock()
	defer z.mu.Unlock()
	if v, ok := z.levels[origin]; ok {
		return v
	}
	return 1
}

// Step applies op to origin's level, saves it and returns it.
func (z *ZoomFile) Step(origin string, op ui.ZoomOp) (float64, error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	cur := 1.0
	if v, ok := z.levels[origin]; ok {
		cur = v
	}
	next := NextZoom(cur, op)
	if next == 1 {
		delete(z.levels, origin)
	} else {
		z.levels[origin] = next
	}
	if z.path == "" || origin == "" {
		return next, nil
	}
	b, err := json.MarshalIndent(zoomDoc{Version: 1, Levels: z.levels}, "", "  ")
	if err != nil {
		return next, err
	}
	if err := os.MkdirAll(filepath.Dir(z.path), 0o700); err != nil {
		return next, fmt.Errorf("save the zoom level: %w", err)
	}
	if err := atomicfile.WriteFile(z.path, append(b, '\n'), 0o600); err != nil {
		return next, fmt.Errorf("save the zoom level: %w", err)
	}
	return next, nil
}
