package sshconn

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// parseCiphers reads an ssh_config Ciphers value the way OpenSSH does: a
// comma-separated list replaces the defaults; "+list" appends to them, "-list"
// removes from them and "^list" puts the list first. Names must be ciphers
// golang.org/x/crypto/ssh implements.
func parseCiphers(v string) ([]string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	defaults := ssh.SupportedAlgorithms().Ciphers
	known := append(slices.Clone(defaults), ssh.InsecureAlgorithms().Ciphers...)
	op := byte(0)
	if strings.ContainsRune("+-^", rune(v[0])) {
		op, v = v[0], v[1:]
	}
	var list []string
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if op != '-' && !slices.Contains(known, name) {
			return nil, fmt.Errorf("unknown cipher %q (supported: %s)", name, strings.Join(known, ", "))
		}
		list = append(list, name)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("no cipher named in %q", v)
	}
	switch op {
	case '+':
		out := slices.Clone(defaults)
		for _, n := range list {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		return out, nil
	case '-':
		return slices.DeleteFunc(slices.Clone(defaults), func(n string) bool { return slices.Contains(list, n) }), nil
	case '^':
		out := slices.Clone(list)
		for _, n := range defaults {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		return out, nil
	}
	return list, nil
}
