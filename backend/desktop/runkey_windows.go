//go:build windows

package desktop

import (
	"errors"

	"golang.org/x/sys/windows/registry"
)

const runKeySubkey = `Software\Microsoft\Windows\CurrentVersion\Run`

// winRunKey is the current user's Run key in the registry.
type winRunKey struct{}

func systemRunKey() RunKey { return winRunKey{} }

func (winRunKey) Get(name string) (string, bool, error) {
	k, err := registry.OpenKey(registry.CURRENT_USER, runKeySubkey, registry.QUERY_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer k.Close()
	v, _, err := k.GetStringValue(name)
	if errors.Is(err, registry.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return v, true, nil
}

func (winRunKey) Set(name, cmd string) error {
	k, _, err := registry.CreateKey(registry.CURRENT_USER, runKeySubkey, registry.SET_VALUE)
	if err != nil {
		return err
	}
	defer k.Close()
	return k.SetStringValue(name, cmd)
}

func (winRunKey) Delete(name string) error {
	k, err := registry.OpenKey(registry.CURRENT_USER, runKeySubkey, registry.SET_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer k.Close()
	if err := k.DeleteValue(name); err != nil && !errors.Is(err, registry.ErrNotExist) {
		return err
	}
	return nil
}
