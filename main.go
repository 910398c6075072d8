// Command porthole makes the web apps and services on your servers feel local.
//
// One binary, several modes (see docs/ARCHITECTURE.md, "Modes"):
//
//	porthole                 the desktop window (Wails)
//	porthole serve           the same UI for your own browser
//	porthole forward …       tunnels from the terminal, no UI (like ssh -N)
//	porthole version         prints the version
package main

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/porthole-app/porthole/backend/desktop"
)

//go:embed all:frontend/dist
var assets embed.FS

// Set at link time by the Makefile (-X main.version=… -X main.commit=…).
var (
	version = "dev"
	commit  = "unknown"
)

// errUsage marks a command-line mistake: the message has been printed, exit 2.
var errUsage = errors.New("usage error")

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	mode := ""
	if len(args) > 0 {
		mode = args[0]
	}
	var err error
	switch mode {
	case "":
		err = runDesktop()
	case "serve":
		err = runServe(args[1:])
	case "forward":
		err = runForward(args[1:])
	case "agent":
		// Internal: one login's forwarders, started by the app (see backend/agent).
		return runAgent()
	case "version", "--version", "-version":
		v := currentVersion()
		fmt.Printf("porthole %s (commit %s, %s, wails %s)\n", v.Version, v.Commit, v.Go, v.Wails)
	case "help", "-h", "--help":
		fmt.Print(usageText)
	default:
		if desktop.LooksLikeLaunch(args) { // porthole [--hidden] [--server NAME] [URL]
			err = runDesktop()
			break
		}
		if len(mode) > 0 && mode[0] == '-' {
			fmt.Fprintf(os.Stderr, "porthole: unknown flag %q\n%s", mode, usageText)
		} else {
			fmt.Fprintf(os.Stderr, "porthole: unknown command %q\n%s", mode, usageText)
		}
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(os.Stderr, "porthole: %v\n", err)
		return 1
	}
}

const usageText = `Usage:
  porthole [--hidden] [--server NAME] [URL]
                                        open the desktop window (or bring it forward);
                                        URL: http://localhost:PORT/… opens it in a tab,
                                        ssh://user@host[:port] fills in a new server
  porthole serve [--addr 127.80.72.1:0] [--open]
                                        serve the same UI to your own browser
  porthole forward [-L [bind:]port:host:hostport]... [-J jump] [-i key] [-p port]
                   [-o Key=Value]... [-v] [user@]host
                                        tunnels from the terminal, no UI
  porthole version                      print the version
`

// frontendFS is the built UI (frontend/dist) as served to the window and to serve's browsers.
func frontendFS() fs.FS {
	sub, err := fs.Sub(assets, "frontend/dist")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory exists
	}
	return sub
}
