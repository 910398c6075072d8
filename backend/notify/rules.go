package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/porthole-app/porthole/backend/apperr"
	"github.com/porthole-app/porthole/backend/atomicfile"
)

// OnAppear is what Porthole does when an app appears on a port.
type OnAppear int

const (
	// OnAppearAuto notifies, unless the port is ephemeral (EphemeralFrom and
	// up, unless the server's rules say otherwise) or in an ignored range.
	OnAppearAuto    OnAppear = iota
	OnAppearNotify           // always notify
	OnAppearOpenTab          // open the app in a tab, without a notification
	OnAppearIgnore           // do nothing
)

var onAppearNames = [...]string{
	OnAppearAuto:    "auto",
	OnAppearNotify:  "notify",
	OnAppearOpenTab: "open-tab",
	OnAppearIgnore:  "ignore",
}

func (o OnAppear) String() string {
	if o >= 0 && int(o) < len(onAppearNames) {
		return onAppearNames[o]
	}
	return fmt.Sprintf("OnAppear(%d)", int(o))
}

// MarshalText writes the name.
func (o OnAppear) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText reads a name written by MarshalText ("" is "auto").
func (o *OnAppear) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*o = OnAppearAuto
		return nil
	}
	for i, n := range onAppearNames {
		if n == string(b) {
			*o = OnAppear(i)
			return nil
		}
	}
	return apperr.BadInput("unknown action %q for an app that appears: use \"auto\", \"notify\", \"open-tab\" or \"ignore\"", b)
}

// EphemeralFrom is where the ports the kernel hands out to clients start
// (Linux's default ip_local_port_range is 32768–60999): listeners there are
// mostly tools' and clients' passing ports, so they notify only when asked.
const EphemeralFrom = 32768

// maxLabel bounds an app's label, in characters.
const maxLabel = 80

// AppAttributes are what the user set for one port of a server.
type AppAttributes struct {
	// Label names the app in notifications instead of what discovery says.
	Label string `json:"label,omitempty"`
	// OnAppear is what to do when an app appears on the port.
	OnAppear OnAppear `json:"onAppear,omitempty"`
}

// Validate checks a label and an action.
func (a AppAttributes) Validate() error {
	if !utf8.ValidString(a.Label) {
		return apperr.BadInput("the label is not valid text (UTF-8)")
	}
	if n := utf8.RuneCountInString(a.Label); n > maxLabel {
		return apperr.BadInput("the label is %d characters long; keep it to %d", n, maxLabel)
	}
	if strings.IndexFunc(a.Label, unicode.IsControl) >= 0 {
		return apperr.BadInput("the label has a control character (a line break or tab); use plain text")
	}
	if a.OnAppear < OnAppearAuto || a.OnAppear > OnAppearIgnore {
		return apperr.BadInput("unknown action %v for an app that appears", a.OnAppear)
	}
	return nil
}

// PortRange is an inclusive range of TCP ports.
type PortRange struct{ From, To int }

// PortRanges is a set of port ranges, sorted and merged by ParsePortRanges.
type PortRanges []PortRange

// maxRanges bounds a server's ignored ranges.
const maxRanges = 64

// ParsePortRanges reads ranges as people write them: "8000-8100, 9000",
// separated by commas or spaces; "" is none. Ports are 1–65535 and a range
// goes up ("9000-8000" is refused). The result is sorted and merged.
func ParsePortRanges(s string) (PortRanges, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	if len(fields) > maxRanges {
		return nil, apperr.BadInput("%d port ranges is too many; merge them into at most %d", len(fields), maxRanges)
	}
	var out PortRanges
	for _, f := range fields {
		lo, hi, isRange := strings.Cut(f, "-")
		from, err := parsePort(lo, f)
		if err != nil {
			return nil, err
		}
		to := from
		if isRange {
			if to, err = parsePort(hi, f); err != nil {
				return nil, err
			}
		}
		if to < from {
			return nil, apperr.BadInput("port range %q goes down; write it %d-%d", f, to, from)
		}
		out = append(out, PortRange{From: from, To: to})
	}
	return out.merged(), nil
}

func parsePort(s, field string) (int, error) {
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, apperr.BadInput("%q is not a port or a port range such as 8000-8100", field)
	}
	n, _ := strconv.Atoi(s)
	if n < 1 || n > 65535 {
		return 0, apperr.BadInput("port %d in %q is not a TCP port (1–65535)", n, field)
	}
	return n, nil
}

// merged sorts the ranges and joins those that overlap or touch.
func (r PortRanges) merged() PortRanges {
	if len(r) == 0 {
		return nil
	}
	s := slices.Clone(r)
	slices.SortFunc(s, func(a, b PortRange) int { return a.From - b.From })
	out := PortRanges{s[0]}
	for _, x := range s[1:] {
		last := &out[len(out)-1]
		if x.From <= last.To+1 {
			last.To = max(last.To, x.To)
			continue
		}
		out = append(out, x)
	}
	return out
}

// Contains reports whether port is in one of the ranges.
func (r PortRanges) Contains(port int) bool {
	for _, x := range r {
		if port >= x.From && port <= x.To {
			return true
		}
	}
	return false
}

// String writes the ranges the way ParsePortRanges reads them: "8000-8100, 9000".
func (r PortRanges) String() string {
	parts := make([]string, len(r))
	for i, x := range r {
		parts[i] = strconv.Itoa(x.From)
		if x.To != x.From {
			parts[i] += "-" + strconv.Itoa(x.To)
		}
	}
	return strings.Join(parts, ", ")
}

// ServerRules are a server's rules for apps that appear on it.
type ServerRules struct {
	// IgnorePorts are ranges whose new apps notify nobody (unless the port's
	// own attributes say so), as ParsePortRanges reads them.
	IgnorePorts string `json:"ignorePorts,omitempty"`
	// NotifyEphemeral: ports from EphemeralFrom up notify too.
	NotifyEphemeral bool `json:"notifyEphemeral,omitempty"`
	// Ports are the attributes the user set, by port.
	Ports map[int]AppAttributes `json:"ports,omitempty"`
}

// Decide resolves what happens when an app appears on port: never
// OnAppearAuto.
func (r ServerRules) Decide(port int) OnAppear {
	if a := r.Ports[port].OnAppear; a != OnAppearAuto {
		return a
	}
	if port >= EphemeralFrom && !r.NotifyEphemeral {
		return OnAppearIgnore
	}
	if rs, err := ParsePortRanges(r.IgnorePorts); err == nil && rs.Contains(port) {
		return OnAppearIgnore
	}
	return OnAppearNotify
}

func (r ServerRules) clone() ServerRules {
	r.Ports = maps.Clone(r.Ports)
	return r
}

// rulesDoc is app-rules.json.
type rulesDoc struct {
	Servers map[string]ServerRules `json:"servers"`
}

// ErrRulesBroken means app-rules.json exists but cannot be used; it is kept
// untouched and changes are refused until it is fixed or removed.
var ErrRulesBroken = errors.New("the app rules file is unreadable")

// RulesFile keeps every server's ServerRules in a JSON file (app-rules.json),
// written atomically (mode 0600). A file that fails to parse is reported and
// kept: the rules are then the defaults and changes are refused.
type RulesFile struct {
	path string // "": in memory only

	mu     sync.Mutex
	doc    rulesDoc
	broken error
}

// OpenRules loads path ("" keeps the rules in memory). A missing file is no
// rules; a broken one returns a usable RulesFile together with the error.
func OpenRules(path string) (*RulesFile, error) {
	f := &RulesFile{path: path, doc: rulesDoc{Servers: map[string]ServerRules{}}}
	if path == "" {
		return f, nil
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return f, nil
	case err != nil:
		f.broken = fmt.Errorf("%w: %s: %w", ErrRulesBroken, path, err)
		return f, f.broken
	}
	var doc rulesDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		f.broken = fmt.Errorf("%w: %s: %s; Porthole uses the default rules and will not overwrite the file: fix it or delete it", ErrRulesBroken, path, atomicfile.DescribeJSONError(b, err))
		return f, f.broken
	}
	for id, r := range doc.Servers {
		if err := r.validate(); err != nil {
			f.broken = fmt.Errorf("%w: %s: server %s: %w; fix it or delete it", ErrRulesBroken, path, id, err)
			return f, f.broken
		}
	}
	if doc.Servers != nil {
		f.doc = doc
	}
	return f, nil
}

func (r ServerRules) validate() error {
	if _, err := ParsePortRanges(r.IgnorePorts); err != nil {
		return err
	}
	for port, a := range r.Ports {
		if port < 1 || port > 65535 {
			return apperr.BadInput("port %d is not a TCP port (1–65535)", port)
		}
		if err := a.Validate(); err != nil {
			return fmt.Errorf("port %d: %w", port, err)
		}
	}
	return nil
}

// OpenRulesLogged opens app-rules.json in Porthole's config directory; a
// broken file is reported (and kept) and the defaults apply.
func OpenRulesLogged(log *slog.Logger) *RulesFile {
	dir, err := atomicfile.ConfigDir()
	if err != nil {
		log.Warn("the rules for new apps are kept in memory only", "err", err)
		f, _ := OpenRules("")
		return f
	}
	f, err := OpenRules(filepath.Join(dir, "app-rules.json"))
	if err != nil {
		log.Error("the rules for new apps cannot be read; using the defaults", "err", err)
	}
	return f
}

// Server returns a server's rules (a copy).
func (f *RulesFile) Server(id string) ServerRules {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.doc.Servers[id].clone()
}

// update changes one server's rules and saves them.
func (f *RulesFile) update(id string, change func(*ServerRules)) (ServerRules, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken != nil {
		return f.doc.Servers[id].clone(), apperr.Mark(f.broken, apperr.ErrConflict)
	}
	r := f.doc.Servers[id].clone()
	change(&r)
	next := maps.Clone(f.doc.Servers)
	if r.IgnorePorts == "" && !r.NotifyEphemeral && len(r.Ports) == 0 {
		delete(next, id)
	} else {
		next[id] = r
	}
	if f.path != "" {
		b, err := json.MarshalIndent(rulesDoc{Servers: next}, "", "  ")
		if err != nil {
			return f.doc.Servers[id].clone(), fmt.Errorf("encode the app rules: %w", err)
		}
		if err := atomicfile.WriteFile(f.path, append(b, '\n'), 0o600); err != nil {
			return f.doc.Servers[id].clone(), fmt.Errorf("save the app rules: %w", err)
		}
	}
	f.doc.Servers = next
	return r.clone(), nil
}

// SetPort sets (and saves) the attributes of one port; the zero value
// removes them.
func (f *RulesFile) SetPort(id string, port int, a AppAttributes) (AppAttributes, error) {
	if port < 1 || port > 65535 {
		return AppAttributes{}, apperr.BadInput("port %d is not a TCP port (1–65535)", port)
	}
	a.Label = strings.TrimSpace(a.Label)
	if err := a.Validate(); err != nil {
		return AppAttributes{}, err
	}
	r, err := f.update(id, func(r *ServerRules) {
		if a == (AppAttributes{}) {
			delete(r.Ports, port)
			return
		}
		if r.Ports == nil {
			r.Ports = map[int]AppAttributes{}
		}
		r.Ports[port] = a
	})
	return r.Ports[port], err
}

// SetIgnore sets (and saves) a server's ignored port ranges and whether
// ephemeral ports notify.
func (f *RulesFile) SetIgnore(id, ranges string, notifyEphemeral bool) (ServerRules, error) {
	rs, err := ParsePortRanges(ranges)
	if err != nil {
		return f.Server(id), err
	}
	return f.update(id, func(r *ServerRules) { r.IgnorePorts, r.NotifyEphemeral = rs.String(), notifyEphemeral })
}

// Forget drops a deleted server's rules.
func (f *RulesFile) Forget(id string) error {
	f.mu.Lock()
	_, ok := f.doc.Servers[id]
	f.mu.Unlock()
	if !ok {
		return nil
	}
	_, err := f.update(id, func(r *ServerRules) { *r = ServerRules{} })
	return err
}
