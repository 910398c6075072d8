//go:build linux && cgo

package agent

// cgoBuild: this binary may resolve names through glibc (cgo), whose
// modules read more system files than Go's own resolver.
const cgoBuild = true
