//go:build !windows

package desktop

// systemRunKey: there is no registry outside Windows.
func systemRunKey() RunKey { return nil }
