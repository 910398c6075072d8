//go:build !linux

package netwatch

import "context"

// Watcher is a stub on this system: Open returns ErrUnsupported. (macOS's
// route socket and Windows' NotifyIpInterfaceChange would go here; they
// cannot be built and tested on the machines this is developed on.)
type Watcher struct{}

// Open returns ErrUnsupported: this system has no watcher yet.
func Open(Options) (*Watcher, error) { return nil, ErrUnsupported }

// Run returns ErrUnsupported.
func (*Watcher) Run(context.Context, func(Change)) error { return ErrUnsupported }

// Close does nothing.
func (*Watcher) Close() error { return nil }
