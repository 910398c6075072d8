package forwarder

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// The server-side scripts of remote forwards. They run as the login user
// through an exec request, read /proc only, and write nothing; the kill
// script is the one sanctioned action (ending this login's own stale sshd
// session, re-verified by the socket it holds just before each signal).
// They are written for sh -c '…', so a single quote inside is spelled '"'"'.

// infoScript prints the server's view of this connection ($SSH_CONNECTION)
// and the listening sockets on port $1 (4 hex digits, as in /proc/net/tcp).
const infoScript = `echo "conn $SSH_CONNECTION"
cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p="$1" '"'"'$4=="0A" { split($2, a, ":"); if (a[2]==p) print "listen", $10, $8, $2 }'"'"'
`

// findScript lists the sockets listening on port $1 and the established
// sockets whose peer is one of $2 (comma-separated /proc/net/tcp
// addresses), which processes hold them, and those processes' owners.
const findScript = `echo "uid $(id -u)"
socks=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p="$1" -v peers="$2" '"'"'
BEGIN { n = split(peers, pl, ","); for (i = 1; i <= n; i++) want[pl[i]] = 1 }
$4=="0A" { split($2, a, ":"); if (a[2]==p) print "listen", $10, $8, $2 }
$4=="01" && ($3 in want) { print "peer", $10, $8, $3 }'"'"')
[ -n "$socks" ] || exit 0
printf "%s\n" "$socks"
inodes=$(printf "%s\n" "$socks" | awk '"'"'{ printf "%s,", $2 }'"'"')
pids=$(ls -l /proc/[0-9]*/fd 2>/dev/null | awk -v inodes="$inodes" '"'"'
BEGIN { n = split(inodes, il, ","); for (i = 1; i <= n; i++) if (il[i] != "") want["socket:[" il[i] "]"] = 1 }
/^\/proc\/[0-9]+\/fd:$/ { split($0, d, "/"); pid = d[3]; next }
($NF in want) { s = $NF; gsub(/[^0-9]/, "", s); print "fd", pid, s }'"'"')
[ -n "$pids" ] || exit 0
printf "%s\n" "$pids"
for pid in $(printf "%s\n" "$pids" | awk '"'"'{ print $2 }'"'"' | sort -u); do
	uid=$(awk '"'"'/^Uid:/ { print $2 }'"'"' /proc/$pid/status 2>/dev/null)
	comm=$(cat /proc/$pid/comm 2>/dev/null)
	echo "proc $pid ${uid:--} $comm"
done
`

// killScript ends process $1 if it still holds socket inode $2: SIGTERM,
// then SIGKILL after about $3 tenths of a second if it still holds it.
const killScript = `held() { ls -l /proc/$1/fd 2>/dev/null | grep -q "socket:\[$2\]"; }
held "$1" "$2" || { echo gone; exit 0; }
kill -TERM "$1" || exit 1
i=0
while [ "$i" -lt "$3" ]; do
	held "$1" "$2" || { echo term; exit 0; }
	sleep 0.1 2>/dev/null || sleep 1
	i=$((i+1))
done
held "$1" "$2" || { echo term; exit 0; }
kill -KILL "$1" && echo kill
`

// shellCommand runs script with sh, whatever the login shell, with args
// (which must be plain words: numbers, hex, commas).
func shellCommand(script string, args ...string) string {
	var b strings.Builder
	b.WriteString("exec sh -c '")
	b.WriteString(script)
	b.WriteString("' porthole")
	for _, a := range args {
		b.WriteByte(' ')
		b.WriteString(a)
	}
	return b.String()
}

// procPort is a port as /proc/net/tcp writes it.
func procPort(p int) string { return fmt.Sprintf("%04X", p) }

// procAddrs are the ways /proc/net/tcp{,6} write ap as a remote address.
func procAddrs(ap netip.AddrPort) []string {
	a := ap.Addr().Unmap()
	port := procPort(int(ap.Port()))
	var out []string
	if a.Is4() {
		b := a.As4()
		v4 := fmt.Sprintf("%02X%02X%02X%02X", b[3], b[2], b[1], b[0])
		out = append(out, v4+":"+port, "0000000000000000FFFF0000"+v4+":"+port)
		return out
	}
	b := a.As16()
	var s strings.Builder
	for w := 0; w < 4; w++ {
		for i := 3; i >= 0; i-- {
			fmt.Fprintf(&s, "%02X", b[4*w+i])
		}
	}
	return append(out, s.String()+":"+port)
}

// parseProcAddr parses a /proc/net/tcp{,6} address ("0100007F:1F90").
func parseProcAddr(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("no colon in %q", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port of %q: %w", s, err)
	}
	raw := make([]byte, 0, 16)
	for i := 0; i+2 <= len(h); i += 2 {
		v, err := strconv.ParseUint(h[i:i+2], 16, 8)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("address of %q: %w", s, err)
		}
		raw = append(raw, byte(v))
	}
	if len(raw) != 4 && len(raw) != 16 {
		return netip.AddrPort{}, fmt.Errorf("address of %q has %d bytes", s, len(raw))
	}
	for w := 0; w < len(raw); w += 4 { // each 32-bit word is little-endian
		raw[w], raw[w+1], raw[w+2], raw[w+3] = raw[w+3], raw[w+2], raw[w+1], raw[w]
	}
	a, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}

// serverInfo is what infoScript printed.
type serverInfo struct {
	peer    netip.AddrPort   // this connection's client address as the server sees it (zero: unknown)
	listens []netip.AddrPort // sockets listening on the port
}

func parseInfo(out []byte) serverInfo {
	var si serverInfo
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && f[0] == "conn":
			if a, err := netip.ParseAddr(f[1]); err == nil {
				if p, err := strconv.ParseUint(f[2], 10, 16); err == nil {
					si.peer = netip.AddrPortFrom(a.Unmap(), uint16(p))
				}
			}
		case len(f) == 4 && f[0] == "listen":
			if ap, err := parseProcAddr(f[3]); err == nil {
				si.listens = append(si.listens, ap)
			}
		}
	}
	return si
}

// portHolders is what findScript printed, sorted out.
type portHolders struct {
	uid    string            // the login user's uid on the server
	listen map[string]bool   // inodes of sockets listening on the port
	peer   map[string]bool   // inodes of established sockets to an old peer
	fds    map[int][]string  // pid → inodes of interest it holds
	procs  map[int]procOwner // pid → owner and name
	addrs  map[string]string // inode → its /proc address (for logs)
}

type procOwner struct {
	uid  string
	comm string
}

func parseHolders(out []byte) portHolders {
	h := portHolders{listen: map[string]bool{}, peer: map[string]bool{}, fds: map[int][]string{}, procs: map[int]procOwner{}, addrs: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "uid":
			h.uid = f[1]
		case "listen", "peer":
			if len(f) != 4 || !isDigits(f[1]) {
				continue
			}
			if f[0] == "listen" {
				h.listen[f[1]] = true
			} else {
				h.peer[f[1]] = true
			}
			h.addrs[f[1]] = f[3]
		case "fd":
			if len(f) != 3 || !isDigits(f[2]) {
				continue
			}
			if pid, err := strconv.Atoi(f[1]); err == nil && pid > 0 {
				h.fds[pid] = append(h.fds[pid], f[2])
			}
		case "proc":
			if len(f) < 3 {
				continue
			}
			pid, err := strconv.Atoi(f[1])
			if err != nil || pid <= 0 {
				continue
			}
			comm := ""
			if len(f) > 3 {
				comm = strings.Join(f[3:], " ")
			}
			h.procs[pid] = procOwner{uid: f[2], comm: comm}
		}
	}
	return h
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// stale returns the processes that hold both a socket listening on the port
// and an established connection to one of the old peers, owned by the login
// user: the sshd sessions of this login's own previous connections. For
// each it gives the listening socket's inode (re-checked before a signal).
func (h portHolders) stale() map[int]string {
	out := map[int]string{}
	if h.uid == "" {
		return out
	}
	for pid, inodes := range h.fds {
		var listenIno string
		hasPeer := false
		for _, ino := range inodes {
			if h.listen[ino] {
				listenIno = ino
			}
			if h.peer[ino] {
				hasPeer = true
			}
		}
		if listenIno == "" || !hasPeer {
			continue
		}
		if p, ok := h.procs[pid]; !ok || p.uid != h.uid {
			continue
		}
		out[pid] = listenIno
	}
	return out
}

// others are the processes holding the port that are not in stale.
func (h portHolders) others(stale map[int]string) []string {
	var out []string
	for pid, inodes := range h.fds {
		if _, ok := stale[pid]; ok {
			continue
		}
		for _, ino := range inodes {
			if h.listen[ino] {
				name := h.procs[pid].comm
				if name == "" {
					name = "?"
				}
				out = append(out, fmt.Sprintf("pid %d (%s)", pid, name))
				break
			}
		}
	}
	return out
}

// ErrExecFailed means a server-side command of a remote forward could not run.
var ErrExecFailed = errors.New("server command failed")

// maxScriptOutput bounds what a server-side script may print.
const maxScriptOutput = 1 << 20

// runScript runs cmd in an exec session on client and returns its stdout.
// It gives up when ctx ends or the connection dies.
func (s *Session) runScript(ctx context.Context, client SSHClient, dead <-chan struct{}, cmd string) ([]byte, error) {
	type result struct {
		out []byte
		err error
	}
	res := make(chan result, 1)
	var chMu chanHolder
	if !s.spawnOpen(func() {
		ch, reqs, err := client.OpenChannel("session", nil)
		if err != nil {
			res <- result{err: fmt.Errorf("%w: opening a session: %w", ErrExecFailed, err)}
			return
		}
		if !chMu.set(ch) {
			_ = ch.Close()
			ssh.DiscardRequests(reqs)
			return
		}
		status := make(chan int, 1)
		go func() {
			st := -1
			for r := range reqs {
				if r.Type == "exit-status" && len(r.Payload) >= 4 {
					st = int(uint32(r.Payload[0])<<24 | uint32(r.Payload[1])<<16 | uint32(r.Payload[2])<<8 | uint32(r.Payload[3]))
				}
				if r.WantReply {
					_ = r.Reply(false, nil)
				}
			}
			status <- st
		}()
		ok, err := ch.SendRequest("exec", true, ssh.Marshal(struct{ Command string }{cmd}))
		if err != nil || !ok {
			_ = ch.Close()
			<-status
			if err == nil {
				err = errors.New("the server refused to run a command")
			}
			res <- result{err: fmt.Errorf("%w: %w", ErrExecFailed, err)}
			return
		}
		stderrDone := make(chan struct{})
		go func() {
			defer close(stderrDone)
			_, _ = io.Copy(io.Discard, ch.Stderr())
		}()
		out, err := io.ReadAll(io.LimitReader(ch, maxScriptOutput))
		_ = ch.Close()
		st := <-status
		<-stderrDone
		if err == nil && st > 0 {
			err = fmt.Errorf("%w: exit status %d", ErrExecFailed, st)
		}
		res <- result{out: out, err: err}
	}) {
		return nil, ErrSessionClosed
	}
	select {
	case r := <-res:
		return r.out, r.err
	case <-dead:
		chMu.abandon()
		return nil, fmt.Errorf("%w: the connection ended", errConnLost)
	case <-ctx.Done():
		chMu.abandon()
		return nil, ctx.Err()
	}
}

// chanHolder lets runScript close a channel whose caller gave up.
type chanHolder struct {
	mu        sync.Mutex
	ch        ssh.Channel
	abandoned bool
}

func (h *chanHolder) set(ch ssh.Channel) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.abandoned {
		return false
	}
	h.ch = ch
	return true
}

func (h *chanHolder) abandon() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.abandoned = true
	if h.ch != nil {
		_ = h.ch.Close()
	}
}
