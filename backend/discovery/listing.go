package discovery

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// socketsScript lists the listening sockets; see the record list at its top.
//
//go:embed sockets.sh
var socketsScript string

// listingHeader is the first line of the script's output. A new, incompatible
// format gets a new version; this parser then fails with ErrBadOutput
// rather than misread it.
const listingHeader = "porthole-sockets v1"

// The records of "porthole-sockets v1", one per line, tag first:
//
//	T <epoch>                 the server's clock (date +%s)
//	U <uid> <user>            the login's user
//	H <home>                  $HOME, for "~/project" in titles
//	M <arch>                  uname -m: /proc addresses are in host byte order
//	S proc|lsof|netstat|none  which branch listed the sockets
//	K <btime> <hz>            boot time and clock ticks per second (proc)
//	L <4|6> <hexaddr>:<hexport> <uid> <inode>   a listening socket (proc)
//	F <pid> <inode>           process pid holds socket inode (proc)
//	P <pid>\t<start>\t<comm>\t<cwd>\t<cmdline>  a process (proc); start is
//	                          clock ticks after boot, or "@<epoch>"
//	O <line>                  a line of `lsof -nP -iTCP -sTCP:LISTEN`
//	Q <line>                  a line of `ps -o pid= -o etime= -o command=`
//	                          (etime "-" from busybox ps, which has none)
//	W <line>                  a line of `lsof -a -d cwd -Fpn`
//	N <line>                  a line of `netstat -an`
//	J <name>\t<json>          a Jupyter runtime file (jpserver-PID.json,
//	                          nbserver-PID.json) on one line; it holds a
//	                          token: never log it
//	X <kind>\t<path>          a Unix socket the login may read and write
//	                          (kind: docker, postgres, mysql, socket)
//	E                         end of output
//
// Unknown tags and garbled records are skipped (and logged), never fatal.

// sockEntry is one listening socket.
type sockEntry struct {
	addr  netip.Addr
	port  int
	uid   int    // -1: unknown
	user  string // owner's name (lsof), "" unknown
	inode uint64 // 0: unknown
	pids  []int  // processes holding it (a forked server's workers share it)
	name  string // command name when there is no Process record (lsof)
}

// listing is the parsed output of one listing, whatever its source.
type listing struct {
	source  Source
	now     time.Time // the host's clock; zero when unknown
	uid     int       // the login's uid; -1 unknown
	user    string
	home    string
	arch    string
	sockets []sockEntry
	procs   map[int]*Process
	jupyter []runtimeFile // unchecked: see verifiedJupyter
	unix    []Socket      // usable Unix sockets (X records)
	skipped int           // garbled or unknown lines
}

// bigEndianArches are `uname -m` values of big-endian machines, whose
// /proc/net/tcp prints addresses without the little-endian byte swap.
var bigEndianArches = map[string]bool{
	"s390": true, "s390x": true, "ppc": true, "ppc64": true, "mips": true, "mips64": true,
	"sparc": true, "sparc64": true, "m68k": true, "armeb": true, "aarch64_be": true,
	"parisc": true, "parisc64": true, "hppa": true, "or1k": true,
}

// parseListing parses the script's output. Only a missing header is an
// error (ErrBadOutput); bad lines are counted in skipped and logged.
func parseListing(out []byte, log *slog.Logger) (*listing, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &listing{uid: -1, procs: map[int]*Process{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	header := false
	var (
		btime    int64 = -1
		hz       int64
		starts   = map[int]string{}
		owners   = map[uint64][]int{}
		lsofRows []lsofEntry
		psRows   []psEntry
		cwds     = map[int]string{}
		cwdPID   = -1
		ended    bool
	)
	skip := func(line, why string) {
		l.skipped++
		log.Debug("discovery: skipping listing line", "why", why, "line", truncate(line, 200))
	}
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if !header {
			// Login banners or motd may precede the header; skip them.
			if strings.TrimSpace(line) == listingHeader {
				header = true
			}
			continue
		}
		if line == "" {
			continue
		}
		tag, rest, _ := strings.Cut(line, " ")
		switch tag {
		case "T":
			if n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64); err == nil && n > 0 {
				l.now = time.Unix(n, 0)
			}
		case "U":
			f := strings.Fields(rest)
			if len(f) >= 1 {
				if n, err := strconv.Atoi(f[0]); err == nil && n >= 0 {
					l.uid = n
				}
			}
			if len(f) >= 2 {
				l.user = f[1]
			}
		case "H":
			l.home = rest
		case "M":
			l.arch = strings.TrimSpace(rest)
		case "S":
			switch strings.TrimSpace(rest) {
			case "proc":
				l.source = SourceProc
			case "lsof":
				l.source = SourceLsof
			case "netstat":
				l.source = SourceNetstat
			case "none":
				l.source = SourceNone
			default:
				skip(line, "unknown source")
			}
		case "K":
			f := strings.Fields(rest)
			if len(f) == 2 {
				b, err1 := strconv.ParseInt(f[0], 10, 64)
				h, err2 := strconv.ParseInt(f[1], 10, 64)
				if err1 == nil && err2 == nil && b > 0 && h > 0 {
					btime, hz = b, h
					continue
				}
			}
			skip(line, "bad boot time record")
		case "L":
			s, err := parseProcSocket(rest, bigEndianArches[l.arch])
			if err != nil {
				skip(line, err.Error())
				continue
			}
			l.sockets = append(l.sockets, s)
		case "F":
			f := strings.Fields(rest)
			if len(f) != 2 {
				skip(line, "bad fd record")
				continue
			}
			pid, err1 := strconv.Atoi(f[0])
			ino, err2 := strconv.ParseUint(f[1], 10, 64)
			if err1 != nil || err2 != nil || pid <= 0 {
				skip(line, "bad fd record")
				continue
			}
			owners[ino] = append(owners[ino], pid)
		case "P":
			p, start, err := parseProcRecord(rest)
			if err != nil {
				skip(line, err.Error())
				continue
			}
			l.procs[p.PID] = p
			starts[p.PID] = start
		case "O":
			e, ok, err := parseLsofLine(rest)
			if err != nil {
				skip(line, err.Error())
			} else if ok {
				lsofRows = append(lsofRows, e)
			}
		case "Q":
			e, err := parsePSLine(rest)
			if err != nil {
				skip(line, err.Error())
				continue
			}
			psRows = append(psRows, e)
		case "W":
			// lsof -F: "p<pid>", "f<fd>", "n<name>".
			switch {
			case strings.HasPrefix(rest, "p"):
				pid, err := strconv.Atoi(rest[1:])
				if err != nil {
					skip(line, "bad cwd pid")
					cwdPID = -1
					continue
				}
				cwdPID = pid
			case strings.HasPrefix(rest, "n") && cwdPID > 0:
				cwds[cwdPID] = rest[1:]
			}
		case "N":
			s, ok, err := parseNetstatLine(rest)
			if err != nil {
				skip(line, err.Error())
			} else if ok {
				l.sockets = append(l.sockets, s)
			}
		case "J":
			f, err := parseRuntimeRecord(rest)
			if err != nil {
				// Not skip(line, …): the line holds a token.
				l.skipped++
				log.Debug("discovery: skipping listing line", "why", err.Error())
				continue
			}
			l.jupyter = append(l.jupyter, f)
		case "X":
			u, err := parseSocketRecord(rest)
			if err != nil {
				skip(line, err.Error())
				continue
			}
			l.unix = append(l.unix, u)
		case "E":
			ended = true
		default:
			skip(line, "unknown record")
		}
	}
	if err := sc.Err(); err != nil {
		// A line over 1 MiB: keep what was read.
		log.Warn("discovery: socket listing cut short", "err", err)
	}
	if !header {
		return nil, fmt.Errorf("%w: no %q header in %d bytes of output; is the login shell POSIX (sh, bash, zsh, fish)?", ErrBadOutput, listingHeader, len(out))
	}
	if !ended {
		log.Warn("discovery: socket listing has no end marker; it may be incomplete")
	}

	// Linux: attach owners and start times.
	for i := range l.sockets {
		if l.sockets[i].inode != 0 {
			l.sockets[i].pids = owners[l.sockets[i].inode]
		}
	}
	for pid, s := range starts {
		l.procs[pid].Started = procStartTime(s, btime, hz)
	}

	// lsof: sockets with pids, and processes from lsof, ps and the cwd lines.
	for _, e := range lsofRows {
		l.sockets = append(l.sockets, sockEntry{addr: e.addr, port: e.port, uid: -1, user: e.user, pids: []int{e.pid}, name: e.command})
		if _, ok := l.procs[e.pid]; !ok {
			l.procs[e.pid] = &Process{PID: e.pid, Name: e.command}
		}
	}
	for _, e := range psRows {
		p, ok := l.procs[e.pid]
		if !ok {
			continue
		}
		p.Cmdline = e.command
		if !l.now.IsZero() && e.elapsed >= 0 {
			p.Started = l.now.Add(-e.elapsed)
		}
	}
	for pid, cwd := range cwds {
		if p, ok := l.procs[pid]; ok {
			p.Cwd = cwd
		}
	}
	if l.skipped > 0 {
		log.Warn("discovery: skipped lines of the socket listing", "count", l.skipped, "source", l.source)
	}
	return l, nil
}

// procStartTime turns the start field of a P record into a time: clock ticks
// after boot, or "@<epoch seconds>" (stat -c %Y /proc/PID).
func procStartTime(s string, btime, hz int64) time.Time {
	if rest, ok := strings.CutPrefix(s, "@"); ok {
		if n, err := strconv.ParseInt(rest, 10, 64); err == nil && n > 0 {
			return time.Unix(n, 0)
		}
		return time.Time{}
	}
	ticks, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ticks < 0 || btime <= 0 || hz <= 0 {
		return time.Time{}
	}
	return time.Unix(btime, 0).Add(time.Duration(ticks) * time.Second / time.Duration(hz))
}

// parseProcSocket parses an L record: "<4|6> <hexaddr>:<hexport> <uid> <inode>".
func parseProcSocket(rest string, bigEndian bool) (sockEntry, error) {
	f := strings.Fields(rest)
	if len(f) != 4 {
		return sockEntry{}, errors.New("bad socket record")
	}
	want := map[string]int{"4": 8, "6": 32}[f[0]]
	if hexAddr, _, _ := strings.Cut(f[1], ":"); want == 0 || len(hexAddr) != want {
		return sockEntry{}, errors.New("address does not match the family")
	}
	addr, port, err := parseProcAddr(f[1], bigEndian)
	if err != nil {
		return sockEntry{}, err
	}
	uid, err := strconv.Atoi(f[2])
	if err != nil || uid < 0 {
		return sockEntry{}, errors.New("bad uid")
	}
	ino, err := strconv.ParseUint(f[3], 10, 64)
	if err != nil {
		return sockEntry{}, errors.New("bad inode")
	}
	return sockEntry{addr: addr, port: port, uid: uid, inode: ino}, nil
}

// parseProcAddr parses a /proc/net/tcp{,6} address such as "0100007F:1F90"
// (127.0.0.1:8080 on a little-endian machine): the address is printed as
// 32-bit words in host byte order, the port in network order. IPv4-mapped
// IPv6 addresses are unmapped.
func parseProcAddr(s string, bigEndian bool) (netip.Addr, int, error) {
	hexAddr, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return netip.Addr{}, 0, errors.New("address has no port")
	}
	if len(hexPort) == 0 || len(hexPort) > 4 {
		return netip.Addr{}, 0, errors.New("bad port")
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil || port == 0 {
		return netip.Addr{}, 0, errors.New("bad port")
	}
	if len(hexAddr) != 8 && len(hexAddr) != 32 {
		return netip.Addr{}, 0, errors.New("bad address length")
	}
	b, err := hex.DecodeString(hexAddr)
	if err != nil {
		return netip.Addr{}, 0, errors.New("bad address hex")
	}
	if !bigEndian {
		for i := 0; i < len(b); i += 4 {
			b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
		}
	}
	addr, _ := netip.AddrFromSlice(b)
	return addr.Unmap(), int(port), nil
}

// parseProcRecord parses a P record: pid, start, comm, cwd, cmdline separated
// by tabs (the cmdline may itself be cut short).
func parseProcRecord(rest string) (*Process, string, error) {
	f := strings.SplitN(rest, "\t", 5)
	if len(f) != 5 {
		return nil, "", errors.New("bad process record")
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return nil, "", errors.New("bad pid")
	}
	return &Process{
		PID:     pid,
		Name:    f[2],
		Cwd:     strings.TrimSuffix(f[3], " (deleted)"),
		Cmdline: strings.TrimSpace(f[4]),
	}, f[1], nil
}

// lsofEntry is one row of `lsof -nP -iTCP -sTCP:LISTEN`.
type lsofEntry struct {
	command string
	pid     int
	user    string
	addr    netip.Addr
	port    int
}

// parseLsofLine parses a row of `lsof -nP -iTCP -sTCP:LISTEN`:
//
//	COMMAND     PID  USER   FD   TYPE             DEVICE SIZE/OFF NODE NAME
//	python3.1 12345 alice    3u  IPv4 0x9a8f3c1d2e4b5a67      0t0  TCP 127.0.0.1:8888 (LISTEN)
//
// ok is false (and err nil) for the header and for non-listening rows.
func parseLsofLine(line string) (e lsofEntry, ok bool, err error) {
	f := strings.Fields(line)
	if len(f) == 0 || f[0] == "COMMAND" {
		return lsofEntry{}, false, nil
	}
	if len(f) < 9 {
		return lsofEntry{}, false, errors.New("short lsof row")
	}
	if f[len(f)-1] != "(LISTEN)" {
		return lsofEntry{}, false, nil
	}
	if f[len(f)-3] != "TCP" {
		return lsofEntry{}, false, errors.New("lsof row is not TCP")
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil || pid <= 0 {
		return lsofEntry{}, false, errors.New("bad lsof pid")
	}
	v6 := false
	for _, t := range f[3 : len(f)-3] {
		if t == "IPv6" {
			v6 = true
		}
	}
	addr, port, err := splitHostPortLoose(f[len(f)-2], ':', v6)
	if err != nil {
		return lsofEntry{}, false, err
	}
	return lsofEntry{command: unescapeLsof(f[0]), pid: pid, user: f[2], addr: addr, port: port}, true, nil
}

// unescapeLsof undoes lsof's \xNN escapes in command names.
func unescapeLsof(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// splitHostPortLoose splits "host<sep>port" at the last sep, where host may be
// "*" (all addresses of the family), bracketed IPv6 or an address with a zone.
func splitHostPortLoose(s string, sep byte, v6 bool) (netip.Addr, int, error) {
	i := strings.LastIndexByte(s, sep)
	if i < 0 {
		return netip.Addr{}, 0, errors.New("address has no port")
	}
	host, ps := s[:i], s[i+1:]
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || port == 0 {
		return netip.Addr{}, 0, errors.New("bad port")
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "*" || host == "" {
		if v6 {
			return netip.IPv6Unspecified(), int(port), nil
		}
		return netip.IPv4Unspecified(), int(port), nil
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, 0, errors.New("bad address")
	}
	return addr.Unmap(), int(port), nil
}

// psEntry is one row of `ps -o pid= -o etime= -o command=`.
type psEntry struct {
	pid     int
	elapsed time.Duration // -1: unknown
	command string
}

// parsePSLine parses "  123     01:02:03 /usr/bin/python3 -m jupyter lab".
func parsePSLine(line string) (psEntry, error) {
	f := strings.Fields(line)
	if len(f) < 3 {
		return psEntry{}, errors.New("short ps row")
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return psEntry{}, errors.New("bad ps pid")
	}
	el, err := parseEtime(f[1])
	if err != nil {
		el = -1
	}
	// The command keeps its inner spacing: cut after the second field.
	rest := strings.TrimLeft(line, " \t")
	rest = strings.TrimLeft(rest[len(f[0]):], " \t")
	rest = strings.TrimLeft(rest[len(f[1]):], " \t")
	return psEntry{pid: pid, elapsed: el, command: strings.TrimSpace(rest)}, nil
}

// parseEtime parses ps's elapsed time "[[dd-]hh:]mm:ss".
func parseEtime(s string) (time.Duration, error) {
	var days int64
	if d, rest, ok := strings.Cut(s, "-"); ok {
		n, err := strconv.ParseInt(d, 10, 32)
		if err != nil || n < 0 {
			return 0, errors.New("bad etime days")
		}
		days, s = n, rest
	}
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, errors.New("bad etime")
	}
	var secs int64
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil || n < 0 || len(p) == 0 || (i > 0 && n >= 60) {
			return 0, errors.New("bad etime field")
		}
		secs = secs*60 + n
	}
	return time.Duration(days*86400+secs) * time.Second, nil
}

// parseNetstatLine parses a listening row of `netstat -an`, in the Linux
// ("tcp 0 0 127.0.0.1:8888 0.0.0.0:* LISTEN") or BSD/macOS
// ("tcp4 0 0 127.0.0.1.8888 *.* LISTEN") dialect. ok is false (and err nil)
// for rows that are not listening TCP sockets.
func parseNetstatLine(line string) (sockEntry, bool, error) {
	f := strings.Fields(line)
	if len(f) < 6 || !strings.HasPrefix(f[0], "tcp") || f[5] != "LISTEN" {
		return sockEntry{}, false, nil
	}
	local := f[3]
	sep := byte(':')
	if strings.LastIndexByte(local, '.') > strings.LastIndexByte(local, ':') {
		sep = '.'
	}
	v6 := f[0] == "tcp6" || f[0] == "tcp46"
	addr, port, err := splitHostPortLoose(local, sep, v6)
	if err != nil {
		return sockEntry{}, false, err
	}
	return sockEntry{addr: addr, port: port, uid: -1}, true, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
