// Package apperr names what kind of failure an application-layer error is,
// in domain words (bad input, not found, conflict, unavailable, unreachable),
// without changing its message. Rooms mark their errors; the UI facade
// (backend/ui) is the one place that turns a kind into an HTTP status.
package apperr

import (
	"errors"
	"fmt"
)

// The kinds; check them with errors.Is.
var (
	// ErrBadInput: the caller's input cannot be used; fixing it helps.
	ErrBadInput = errors.New("bad input")
	// ErrNotFound: the thing asked for does not exist (any more).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request clashes with the current state (not
	// connected yet, a file that cannot be written, a port in use).
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: this mode or this run cannot do it at all.
	ErrUnavailable = errors.New("unavailable")
	// ErrUnreachable: a server or the network did not answer.
	ErrUnreachable = errors.New("unreachable")
)

// marked is err with a kind; its message is err's own.
type marked struct {
	err  error
	kind error
}

func (e *marked) Error() string { return e.err.Error() }
func (e *marked) Unwrap() []error {
	return []error{e.err, e.kind}
}

// Mark returns err marked with kind (one of the Err* kinds); errors.Is and
// errors.As still find everything err wraps. A nil err stays nil.
func Mark(err error, kind error) error {
	if err == nil {
		return nil
	}
	return &marked{err: err, kind: kind}
}

// BadInput is a formatted error of kind ErrBadInput.
func BadInput(format string, a ...any) error {
	return Mark(fmt.Errorf(format, a...), ErrBadInput)
}

// New is a formatted error of the given kind.
func New(kind error, format string, a ...any) error {
	return Mark(fmt.Errorf(format, a...), kind)
}
