package webui

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
)

// shape is what a bound method returns.
type shape int

const (
	shapeNone       shape = iota // ()
	shapeValue                   // (T)
	shapeError                   // (error)
	shapeValueError              // (T, error)
)

func (sh shape) String() string {
	switch sh {
	case shapeNone:
		return "()"
	case shapeValue:
		return "(T)"
	case shapeError:
		return "(error)"
	case shapeValueError:
		return "(T, error)"
	default:
		return "shape(" + strconv.Itoa(int(sh)) + ")"
	}
}

// MethodInfo describes one callable method (GET /api/methods).
type MethodInfo struct {
	Name   string   `json:"name"`
	Params []string `json:"params"`           // parameter type names, in order
	Result string   `json:"result,omitempty"` // result type name; empty when the method returns no value
	Error  bool     `json:"error"`            // whether the method can fail (returns error)
}

// method is one entry of the method table, built once in New.
type method struct {
	name     string
	fn       reflect.Value // bound to the receiver
	params   []reflect.Type
	variadic bool // last param is a slice passed as one JSON array
	shape    shape
	sig      string // "(string, int)" for messages
}

var (
	errorType            = reflect.TypeFor[error]()
	jsonUnmarshalerType  = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType  = reflect.TypeFor[encoding.TextUnmarshaler]()
	jsonMarshalerType    = reflect.TypeFor[json.Marshaler]()
	textMarshalerType    = reflect.TypeFor[encoding.TextMarshaler]()
	emptyInterfaceType   = reflect.TypeFor[any]()
	lifecycleHookMethods = map[string]bool{
		// Wails lifecycle hooks, in case the App exports them: never callable from a page.
		"Startup": true, "Shutdown": true, "DomReady": true, "BeforeClose": true,
		"OnStartup": true, "OnShutdown": true, "OnDomReady": true, "OnBeforeClose": true,
	}
)

// buildMethods reflects over bv's exported methods and keeps those the bridge
// can call: JSON-decodable parameters and a supported result shape.
func buildMethods(bv reflect.Value, log *slog.Logger) (map[string]*method, []MethodInfo) {
	t := bv.Type()
	table := make(map[string]*method)
	var infos []MethodInfo
	for i := range t.NumMethod() {
		tm := t.Method(i)
		if !tm.IsExported() {
			continue
		}
		if lifecycleHookMethods[tm.Name] {
			log.Debug("not exposing lifecycle hook", "method", tm.Name)
			continue
		}
		fn := bv.Method(i)
		ft := fn.Type()
		m := &method{name: tm.Name, fn: fn, variadic: ft.IsVariadic()}
		ok := true
		for j := range ft.NumIn() {
			p := ft.In(j)
			if !decodable(p, 0) {
				log.Debug("not exposing method: parameter cannot be decoded from JSON", "method", tm.Name, "param", typeName(p))
				ok = false
				break
			}
			m.params = append(m.params, p)
		}
		if !ok {
			continue
		}
		var result reflect.Type
		switch {
		case ft.NumOut() == 0:
			m.shape = shapeNone
		case ft.NumOut() == 1 && ft.Out(0) == errorType:
			m.shape = shapeError
		case ft.NumOut() == 1:
			m.shape, result = shapeValue, ft.Out(0)
		case ft.NumOut() == 2 && ft.Out(1) == errorType:
			m.shape, result = shapeValueError, ft.Out(0)
		default:
			log.Debug("not exposing method: unsupported results (want (), (T), (error) or (T, error))", "method", tm.Name)
			continue
		}
		if result != nil && !encodable(result, 0) {
			log.Debug("not exposing method: result cannot be encoded as JSON", "method", tm.Name, "result", typeName(result))
			continue
		}
		info := MethodInfo{Name: m.name, Params: make([]string, len(m.params)), Error: m.shape == shapeError || m.shape == shapeValueError}
		for j, p := range m.params {
			info.Params[j] = typeName(p)
		}
		if result != nil {
			info.Result = typeName(result)
		}
		m.sig = "(" + strings.Join(info.Params, ", ") + ")"
		table[m.name] = m
		infos = append(infos, info)
	}
	sort.Slice(infos, func(a, b int) bool { return infos[a].Name < infos[b].Name })
	return table, infos
}

// decodable reports whether encoding/json can decode into a value of type t.
// Struct fields are not inspected (a bad field only fails if the JSON names it).
func decodable(t reflect.Type, depth int) bool {
	if depth > 16 {
		return true
	}
	if t.Implements(jsonUnmarshalerType) || reflect.PointerTo(t).Implements(jsonUnmarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.Func, reflect.Chan, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128, reflect.Uintptr:
		return false
	case reflect.Interface:
		return t == emptyInterfaceType || t.NumMethod() == 0 // context.Context and friends: no
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return decodable(t.Elem(), depth+1)
	case reflect.Map:
		k := t.Key()
		keyOK := k.Kind() == reflect.String || isIntKind(k.Kind()) || isUintKind(k.Kind()) ||
			reflect.PointerTo(k).Implements(textUnmarshalerType)
		return keyOK && decodable(t.Elem(), depth+1)
	default:
		return true
	}
}

// encodable reports whether encoding/json can (in principle) encode a value of type t.
func encodable(t reflect.Type, depth int) bool {
	if depth > 16 {
		return true
	}
	if t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.Func, reflect.Chan, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		return false
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return encodable(t.Elem(), depth+1)
	case reflect.Map:
		return encodable(t.Elem(), depth+1)
	default:
		return true
	}
}

func isIntKind(k reflect.Kind) bool {
	return k >= reflect.Int && k <= reflect.Int64
}

func isUintKind(k reflect.Kind) bool {
	return k >= reflect.Uint && k <= reflect.Uintptr
}

// typeName is a short, readable name: "string", "Settings", "[]ServerSummary",
// "*Options", "map[string]int" (package qualifiers dropped).
func typeName(t reflect.Type) string {
	if t.Name() != "" {
		return t.Name()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return "*" + typeName(t.Elem())
	case reflect.Slice:
		return "[]" + typeName(t.Elem())
	case reflect.Array:
		return "[" + strconv.Itoa(t.Len()) + "]" + typeName(t.Elem())
	case reflect.Map:
		return "map[" + typeName(t.Key()) + "]" + typeName(t.Elem())
	case reflect.Interface:
		if t.NumMethod() == 0 {
			return "any"
		}
	}
	return t.String()
}

// statusError is an error of the bridge itself, with its HTTP status.
type statusError struct {
	status   int
	msg      string
	sentinel error
}

func (e *statusError) Error() string   { return e.msg }
func (e *statusError) Unwrap() error   { return e.sentinel }
func (e *statusError) HTTPStatus() int { return e.status }

func badArgs(format string, args ...any) error {
	return &statusError{status: 400, msg: fmt.Sprintf(format, args...), sentinel: ErrBadArguments}
}

// jsonKind names the JSON type of a raw value: string, number, boolean, null, object, array.
func jsonKind(raw []byte) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

func (m *method) expects() string {
	if len(m.params) == 0 {
		return "no arguments"
	}
	return plural(len(m.params), "argument") + " " + m.sig
}

// decodeArgs turns a request body (empty, or a JSON array with one element per
// parameter) into the call's argument values. Errors wrap ErrBadArguments and
// name the method and what it expects; they never quote argument values.
func (m *method) decodeArgs(body []byte) ([]reflect.Value, error) {
	trimmed := bytes.TrimSpace(body)
	var raws []json.RawMessage
	if len(trimmed) > 0 {
		if trimmed[0] != '[' {
			return nil, badArgs("%s: arguments must be a JSON array, got %s (it expects %s)", m.name, jsonKind(trimmed), m.expects())
		}
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, badArgs("%s: arguments are not valid JSON: %s", m.name, jsonErrorText(err))
		}
	}
	if len(raws) != len(m.params) {
		return nil, badArgs("%s expects %s, got %d", m.name, m.expects(), len(raws))
	}
	args := make([]reflect.Value, len(m.params))
	for i, p := range m.params {
		v, err := decodeArg(raws[i], p)
		if err != nil {
			return nil, badArgs("%s argument %d: %s", m.name, i+1, err)
		}
		args[i] = v
	}
	return args, nil
}

// nullable reports whether JSON null is a meaningful value for t.
func nullable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return true
	}
	return t.Implements(jsonUnmarshalerType) || reflect.PointerTo(t).Implements(jsonUnmarshalerType)
}

// decodeArg decodes one JSON value into a new value of type t. Its error
// message reads "expected string, got number" and never quotes the value.
func decodeArg(raw json.RawMessage, t reflect.Type) (reflect.Value, error) {
	if jsonKind(raw) == "null" && !nullable(t) {
		return reflect.Value{}, fmt.Errorf("expected %s, got null", typeName(t))
	}
	ptr := reflect.New(t)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(ptr.Interface()); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			got := te.Value
			if got == "bool" {
				got = "boolean"
			}
			if te.Field != "" {
				return reflect.Value{}, fmt.Errorf("field %q: expected %s, got %s", te.Field, typeName(te.Type), got)
			}
			return reflect.Value{}, fmt.Errorf("expected %s, got %s", typeName(t), got)
		}
		return reflect.Value{}, fmt.Errorf("%s (expected %s)", jsonErrorText(err), typeName(t))
	}
	return ptr.Elem(), nil
}

// jsonErrorText is err's message without encoding/json's "json: " prefix.
func jsonErrorText(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}

// call runs the named method with the JSON arguments in body and returns its
// JSON-encoded result ("null" when it returns no value). Errors: ErrUnknownMethod,
// ErrBadArguments, ErrMethodPanicked (all carry HTTPStatus), or the method's own
// error unchanged.
func (s *Server) call(name string, body []byte) (out []byte, err error) {
	m, ok := s.methods[name]
	if !ok {
		return nil, &statusError{status: 404, msg: fmt.Sprintf("unknown method %q: GET /api/methods lists them", name), sentinel: ErrUnknownMethod}
	}
	args, err := m.decodeArgs(body)
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("method panicked", "method", name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			out, err = nil, &statusError{status: 500, msg: fmt.Sprintf("%s: %s (see the log of porthole serve)", name, ErrMethodPanicked), sentinel: ErrMethodPanicked}
		}
	}()
	var res []reflect.Value
	if m.variadic {
		res = m.fn.CallSlice(args)
	} else {
		res = m.fn.Call(args)
	}
	var result any
	switch m.shape {
	case shapeValue:
		result = res[0].Interface()
	case shapeError:
		if !res[0].IsNil() {
			return nil, res[0].Interface().(error)
		}
	case shapeValueError:
		if !res[1].IsNil() {
			return nil, res[1].Interface().(error)
		}
		result = res[0].Interface()
	}
	out, err = json.Marshal(result)
	if err != nil {
		s.log.Error("cannot encode method result as JSON", "method", name, "err", err)
		return nil, &statusError{status: 500, msg: fmt.Sprintf("%s: cannot encode its result as JSON: %s", name, jsonErrorText(err))}
	}
	return out, nil
}

// httpStatus maps an error of call to an HTTP status: the status of the first
// error in the chain with an HTTPStatus() int method (400–599), otherwise 500.
func httpStatus(err error) int {
	var hs interface{ HTTPStatus() int }
	if errors.As(err, &hs) {
		if st := hs.HTTPStatus(); st >= 400 && st <= 599 {
			return st
		}
	}
	return 500
}

// WithStatus returns err with an HTTP status for POST /api/<Method> (400–599):
// its message and errors.Is/As chain are err's own. The desktop window ignores
// the status. Example: return Settings{}, webui.WithStatus(err, 400).
// A nil err stays nil.
func WithStatus(err error, status int) error {
	if err == nil {
		return nil
	}
	return &withStatus{err: err, status: status}
}

type withStatus struct {
	err    error
	status int
}

func (e *withStatus) Error() string   { return e.err.Error() }
func (e *withStatus) Unwrap() error   { return e.err }
func (e *withStatus) HTTPStatus() int { return e.status }
