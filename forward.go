package main

import "fmt"

// runForward runs tunnels from the terminal (issue 3).
func runForward(args []string) error {
	return fmt.Errorf("forward: not available yet")
}
