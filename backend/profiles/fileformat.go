package profiles

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// SchemaVersion is the version of the file format this package writes.
const SchemaVersion = 2

var (
	// ErrCorrupt is wrapped by every *ParseError: the file is not valid.
	ErrCorrupt = errors.New("the profiles file cannot be read")
	// ErrNewerSchema: the file was written by a newer Porthole. It is opened
	// read-only and never rewritten.
	ErrNewerSchema = errors.New("the profiles file was written by a newer version of Porthole")
)

// ParseError says where the profiles file stops making sense. Line and
// Column are 1-based. errors.Is(err, ErrCorrupt) is true.
type ParseError struct {
	Path   string // the file
	Line   int
	Column int
	Backup string // the copy made of the file, "" if none could be made
	Err    error  // what is wrong
}

func (e *ParseError) Error() string {
	msg := fmt.Sprintf("profiles file %s, line %d, column %d: %v", e.Path, e.Line, e.Column, e.Err)
	msg += "; the file was left as it is"
	if e.Backup != "" {
		msg += " and copied to " + e.Backup
	}
	return msg + "; fix the file or move it away, then reload (until then the profiles are read-only)"
}

// Unwrap returns ErrCorrupt and the underlying error.
func (e *ParseError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// fileDoc is the current (v2) layout.
type fileDoc struct {
	SchemaVersion int       `json:"schemaVersion"`
	Profiles      []Profile `json:"profiles"`
}

// v1Profile is a profile as schema version 1 wrote it (a bare JSON array).
type v1Profile struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Hostname     string   `json:"hostname"`
	Port         int      `json:"port"`
	Username     string   `json:"username"`
	IdentityFile string   `json:"identityFile"`
	JumpHosts    []string `json:"jumpHosts"`
}

func (o v1Profile) migrate() Profile {
	p := Profile{
		ID:        o.ID,
		Name:      o.Name,
		Host:      o.Hostname,
		Port:      o.Port,
		User:      o.Username,
		KeyPath:   o.IdentityFile,
		JumpHosts: o.JumpHosts,
	}
	if p.Port == 0 {
		p.Port = DefaultPort
	}
	if p.Name == "" {
		p.Name = p.Host
	}
	return p
}

// parsed is the result of reading a profiles file.
type parsed struct {
	version  int // the version found in the file (1 or 2); 0 for a missing file
	profiles []Profile
	// missingIDs counts profiles that had no ID and were given one.
	missingIDs int
}

// parseFile decodes a profiles file of any known version. Errors are
// *ParseError (with Path unset) or wrap ErrNewerSchema.
func parseFile(data []byte) (parsed, error) {
	var res parsed
	// 1. Syntax, with the exact offset of the first error.
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return res, syntaxParseError(data, err)
	}
	start := skipSpace(data, 0)
	var elems []rawElem
	var err error
	switch data[start] {
	case '[':
		res.version = 1
		elems, err = arrayElems(data, start)
	case '{':
		res.version, elems, err = objectDoc(data, start)
	default:
		return res, posError(data, int64(start), errors.New("expected an object {\"schemaVersion\": …, \"profiles\": […]}"))
	}
	if err != nil {
		return res, err
	}
	seen := make(map[string]int64, len(elems))
	for i, el := range elems {
		var p Profile
		if res.version == 1 {
			var o v1Profile
			if err := strictUnmarshal(el.raw, &o); err != nil {
				return res, elemError(data, el.off, i, err)
			}
			p = o.migrate()
		} else {
			if err := strictUnmarshal(el.raw, &p); err != nil {
				return res, elemError(data, el.off, i, err)
			}
		}
		if p.ID == "" {
			// Derived from the content so that re-reading the same file
			// (every change re-reads it) gives the same ID until it is saved.
			p.ID = derivedID(i, el.raw)
			res.missingIDs++
		} else if _, dup := seen[p.ID]; dup {
			return res, posError(data, el.off, fmt.Errorf("profile %d has the same id %q as an earlier profile; give it another id or delete it", i+1, p.ID))
		}
		seen[p.ID] = el.off
		res.profiles = append(res.profiles, p)
	}
	return res, nil
}

// derivedID is a stable ID for the i-th profile of a file when it has none.
func derivedID(i int, raw []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\n", i)
	h.Write(raw)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h.Sum(nil))[:26])
}

// strictUnmarshal decodes one JSON value; an element must be an object.
func strictUnmarshal(raw []byte, v any) error {
	if b := bytes.TrimSpace(raw); len(b) == 0 || b[0] != '{' {
		return errors.New("a profile must be a JSON object {…}")
	}
	return json.Unmarshal(raw, v)
}

type rawElem struct {
	off int64 // offset of the element's first byte in the whole file
	raw json.RawMessage
}

// objectDoc walks the top-level object of a v2+ file.
func objectDoc(data []byte, start int) (int, []rawElem, error) {
	dec := json.NewDecoder(bytes.NewReader(data[start:]))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // '{'
		return 0, nil, posError(data, int64(start), err)
	}
	version := 0
	versionOff := int64(start)
	var profilesOff int64 = -1
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return 0, nil, posError(data, int64(start)+dec.InputOffset(), err)
		}
		key, _ := tok.(string)
		valOff := int64(skipSep(data, start+int(dec.InputOffset())))
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return 0, nil, posError(data, valOff, err)
		}
		switch key {
		case "schemaVersion":
			versionOff = valOff
			n, err := strconv.Atoi(string(bytes.TrimSpace(val)))
			if err != nil || n < 1 {
				return 0, nil, posError(data, valOff, fmt.Errorf("schemaVersion must be a positive whole number, not %s", val))
			}
			version = n
		case "profiles":
			profilesOff = valOff
		}
	}
	switch {
	case version == 0:
		return 0, nil, posError(data, int64(start), errors.New(`the object has no "schemaVersion"`))
	case version > SchemaVersion:
		return version, nil, fmt.Errorf("%w (schema version %d; this Porthole reads up to %d): update Porthole to change profiles", ErrNewerSchema, version, SchemaVersion)
	case version != SchemaVersion:
		return 0, nil, posError(data, versionOff, fmt.Errorf("unknown schemaVersion %d (version 1 files are a bare array; this Porthole writes %d)", version, SchemaVersion))
	}
	if profilesOff < 0 {
		return version, nil, nil
	}
	if data[profilesOff] == 'n' { // null
		return version, nil, nil
	}
	if data[profilesOff] != '[' {
		return 0, nil, posError(data, profilesOff, errors.New(`"profiles" must be an array [ … ]`))
	}
	elems, err := arrayElems(data, int(profilesOff))
	return version, elems, err
}

// arrayElems returns the elements of the array starting at data[start].
func arrayElems(data []byte, start int) ([]rawElem, error) {
	dec := json.NewDecoder(bytes.NewReader(data[start:]))
	if _, err := dec.Token(); err != nil { // '['
		return nil, posError(data, int64(start), err)
	}
	var out []rawElem
	for dec.More() {
		off := int64(skipSep(data, start+int(dec.InputOffset())))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, posError(data, off, err)
		}
		out = append(out, rawElem{off: off, raw: raw})
	}
	return out, nil
}

func elemError(data []byte, off int64, i int, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Type != nil {
		where := "a value"
		if te.Field != "" {
			where = `"` + te.Field + `"`
		}
		return posError(data, valueStart(data, off+te.Offset), fmt.Errorf("profile %d: %s must be %s, not a JSON %s", i+1, where, jsonTypeName(te.Type.Kind().String()), te.Value))
	}
	return posError(data, off, fmt.Errorf("profile %d: %w", i+1, err))
}

// valueStart finds where the scalar value ending at end begins, so that a
// type error points at the value rather than just past it. Objects and
// arrays are left pointing at their end.
func valueStart(data []byte, end int64) int64 {
	if end <= 0 || end > int64(len(data)) {
		return end
	}
	i := end - 1
	switch c := data[i]; {
	case c == '"':
		for i--; i >= 0; i-- {
			if data[i] != '"' {
				continue
			}
			bs := 0
			for j := i - 1; j >= 0 && data[j] == '\\'; j-- {
				bs++
			}
			if bs%2 == 0 {
				return i
			}
		}
		return end
	case c == '-' || c == '.' || c == '+' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		for i > 0 {
			p := data[i-1]
			if p == '-' || p == '.' || p == '+' || (p >= '0' && p <= '9') || (p >= 'a' && p <= 'z') || (p >= 'A' && p <= 'Z') {
				i--
				continue
			}
			break
		}
		return i
	}
	return end
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int64", "int32", "float64", "uint16", "uint":
		return "a number"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "true or false"
	}
	return "a " + kind
}

func syntaxParseError(data []byte, err error) error {
	var se *json.SyntaxError
	if len(bytes.TrimSpace(data)) == 0 || errors.Is(err, io.ErrUnexpectedEOF) ||
		(errors.As(err, &se) && strings.Contains(se.Error(), "unexpected end of JSON input")) {
		return posError(data, int64(len(data)), errors.New("unexpected end of file (the file is empty or cut short)"))
	}
	if errors.As(err, &se) {
		off := se.Offset - 1 // Offset is just after the offending byte
		if off < 0 {
			off = 0
		}
		return posError(data, off, se)
	}
	return posError(data, 0, err)
}

// posError builds a *ParseError at byte offset off of data.
func posError(data []byte, off int64, err error) *ParseError {
	line, col := lineCol(data, off)
	return &ParseError{Line: line, Column: col, Err: err}
}

// lineCol converts a byte offset into a 1-based line and column (in runes).
func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	col := len(bytes.Runes(before[lineStart:])) + 1
	return line, col
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipSep skips whitespace, ':' and ',' (what lies between a decoder's
// position and the next value).
func skipSep(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r', ':', ',':
			i++
		default:
			return i
		}
	}
	return i
}

// encodeFile writes the current format.
func encodeFile(list []Profile) ([]byte, error) {
	if list == nil {
		list = []Profile{}
	}
	b, err := json.MarshalIndent(fileDoc{SchemaVersion: SchemaVersion, Profiles: list}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding profiles: %w", err)
	}
	return append(b, '\n'), nil
}
