package testrig

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// DescendsFromThisProcess reports whether pid is this process or one it
// started (directly or not), from /proc's parent links (Linux; false
// elsewhere). Tests use it to keep a listing of this machine's sockets to
// their own listeners: other packages' tests run in parallel.
func DescendsFromThisProcess(pid int) bool {
	self := os.Getpid()
	for range 64 {
		if pid == self {
			return true
		}
		if pid <= 1 {
			return false
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			return false
		}
		pid, err = strconv.Atoi(f[1])
		if err != nil {
			return false
		}
	}
	return false
}
