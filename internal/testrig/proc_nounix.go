//go:build !unix

package testrig

import "os/exec"

// killGroupOnCancel keeps exec's default (kill the process only).
func killGroupOnCancel(*exec.Cmd) {}
