package discovery

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// procListing is a recorded Linux listing: a motd line before the header,
// tcp and tcp6 sockets (an IPv4-mapped one among them), a forking server's
// workers sharing a socket, another user's sockets, and garbled lines.
var procListing = strings.Join([]string{
	"Welcome to Ubuntu 22.04.4 LTS (GNU/Linux 5.15.0-97-generic x86_64)",
	"porthole-sockets v1",
	"T 1741083667",
	"U 1000 alice",
	"H /home/alice",
	"M x86_64",
	"S proc",
	"K 1741000000 100",
	"L 4 0100007F:22B8 1000 41001",
	"L 4 00000000:1776 1000 41002",
	"L 6 00000000000000000000000000000000:1776 1000 41003",
	"L 6 0000000000000000FFFF00000100007F:1388 1000 41004",
	"L 4 00000000:0016 0 1234",
	"L 6 00000000000000000000000000000000:0016 0 1235",
	"L 4 0100007F:1538 115 22222",
	"L 6 00000000000000000000000001000000:1538 115 22223",
	"L 4 0500000A:1F90 1000 41005",
	"L 4 0100007F:zzzz 1000 1",
	"L 4 0100007F:1F40",
	"F 4242 41001",
	"F 4343 41002",
	"F 4343 41003",
	"F 4445 41004",
	"F 4444 41004",
	"F 4546 41005",
	"F notapid 1",
	"P 4242\t183000\tjupyter-lab\t/home/alice/project\t/home/alice/.venv/bin/python3 /home/alice/.venv/bin/jupyter-lab --no-browser",
	"P 4343\t190000\ttensorboard\t/home/alice/exp\t/usr/bin/python3 /home/alice/.local/bin/tensorboard --logdir runs --port 6006",
	"P 4444\t150000\tgunicorn\t/home/alice/ml\t/usr/bin/python3 /home/alice/.local/bin/gunicorn -b 127.0.0.1:5000 -w 4 mlflow.server:app",
	"P 4445\t150100\tgunicorn\t/home/alice/ml\t/usr/bin/python3 /home/alice/.local/bin/gunicorn -b 127.0.0.1:5000 -w 4 mlflow.server:app",
	"P 4546\t@1741080000\tpython3\t/srv/app (deleted)\tpython3 -m http.server --bind 10.0.0.5 8080",
	"P broken line without tabs",
	"X unknown tag",
	"E",
	"",
}, "\n")

// lsofListing is a recorded macOS listing.
var lsofListing = strings.Join([]string{
	"porthole-sockets v1",
	"T 1741083667",
	"U 501 alice",
	"H /Users/alice",
	"M arm64",
	"S lsof",
	"O COMMAND     PID     USER   FD   TYPE             DEVICE SIZE/OFF NODE NAME",
	"O ControlCe   612    alice   10u  IPv4 0x3c1d2e4b5a6f7081      0t0  TCP *:7000 (LISTEN)",
	"O ControlCe   612    alice   11u  IPv6 0x3c1d2e4b5a6f7082      0t0  TCP *:7000 (LISTEN)",
	"O python3.1 12345    alice    3u  IPv4 0x9a8f3c1d2e4b5a67      0t0  TCP 127.0.0.1:8888 (LISTEN)",
	"O python3.1 12345    alice    4u  IPv6 0x9a8f3c1d2e4b5a68      0t0  TCP [::1]:8888 (LISTEN)",
	"O postgres    800 postgres    7u  IPv6 0x1b2c3d4e5f607182      0t0  TCP [::1]:5432 (LISTEN)",
	"O garbage",
	"Q   612  3-01:02:03 /System/Library/CoreServices/ControlCenter.app/Contents/MacOS/ControlCenter",
	"Q 12345       05:10 /opt/homebrew/bin/python3.11 /Users/alice/.venv/bin/jupyter-lab  --port=8888",
	"W p612",
	"W fcwd",
	"W n/",
	"W p12345",
	"W fcwd",
	"W n/Users/alice/project",
	"E",
}, "\n")

// netstatListing is a recorded macOS netstat -an listing.
var netstatListing = strings.Join([]string{
	"porthole-sockets v1",
	"U 501 alice",
	"S netstat",
	"N Active Internet connections (including servers)",
	"N Proto Recv-Q Send-Q  Local Address          Foreign Address        (state)",
	"N tcp4       0      0  127.0.0.1.8888         *.*                    LISTEN",
	"N tcp46      0      0  *.5000                 *.*                    LISTEN",
	"N tcp6       0      0  ::1.6006               *.*                    LISTEN",
	"N tcp4       0      0  192.168.1.20.52344     17.57.146.5.443        ESTABLISHED",
	"N udp4       0      0  *.5353                 *.*",
	"N tcp4       0      0  127.0.0.1.99999        *.*                    LISTEN",
	"N Active LOCAL (UNIX) domain sockets",
	"E",
}, "\n")

func sockKey(s sockEntry) string { return fmt.Sprintf("%s:%d", s.addr, s.port) }

func TestParseListingProc(t *testing.T) {
	l, err := parseListing([]byte(procListing), nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.source != SourceProc || l.uid != 1000 || l.user != "alice" || l.home != "/home/alice" || l.arch != "x86_64" {
		t.Errorf("header records: source %v uid %d user %q home %q arch %q", l.source, l.uid, l.user, l.home, l.arch)
	}
	if !l.now.Equal(time.Unix(1741083667, 0)) {
		t.Errorf("now = %v", l.now)
	}
	if l.skipped != 5 {
		t.Errorf("skipped = %d, want 5 (two L, one F, one P, one unknown)", l.skipped)
	}
	want := map[string]struct {
		uid   int
		inode uint64
		pids  []int
	}{
		"127.0.0.1:8888": {1000, 41001, []int{4242}},
		"0.0.0.0:6006":   {1000, 41002, []int{4343}},
		":::6006":        {1000, 41003, []int{4343}},
		"127.0.0.1:5000": {1000, 41004, []int{4445, 4444}}, // unmapped from ::ffff:127.0.0.1
		"0.0.0.0:22":     {0, 1234, nil},
		":::22":          {0, 1235, nil},
		"127.0.0.1:5432": {115, 22222, nil},
		"::1:5432":       {115, 22223, nil},
		"10.0.0.5:8080":  {1000, 41005, []int{4546}},
	}
	if len(l.sockets) != len(want) {
		t.Errorf("%d sockets, want %d: %+v", len(l.sockets), len(want), l.sockets)
	}
	for _, s := range l.sockets {
		w, ok := want[sockKey(s)]
		if !ok {
			t.Errorf("unexpected socket %s", sockKey(s))
			continue
		}
		if s.uid != w.uid || s.inode != w.inode || !slices.Equal(s.pids, w.pids) {
			t.Errorf("%s: uid %d inode %d pids %v, want %d %d %v", sockKey(s), s.uid, s.inode, s.pids, w.uid, w.inode, w.pids)
		}
	}
	jl := l.procs[4242]
	if jl == nil || jl.Name != "jupyter-lab" || jl.Cwd != "/home/alice/project" ||
		!strings.HasSuffix(jl.Cmdline, "jupyter-lab --no-browser") {
		t.Errorf("process 4242 = %+v", jl)
	}
	if want := time.Unix(1741000000+1830, 0); jl != nil && !jl.Started.Equal(want) {
		t.Errorf("start of 4242 = %v, want %v (btime + 183000/100 s)", jl.Started, want)
	}
	if p := l.procs[4546]; p == nil || p.Cwd != "/srv/app" || !p.Started.Equal(time.Unix(1741080000, 0)) {
		t.Errorf("process 4546 (deleted cwd, @epoch start) = %+v", p)
	}
}

func TestParseListingLsof(t *testing.T) {
	l, err := parseListing([]byte(lsofListing), nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.source != SourceLsof || l.skipped != 1 {
		t.Errorf("source %v skipped %d, want lsof and 1", l.source, l.skipped)
	}
	var got []string
	for _, s := range l.sockets {
		got = append(got, fmt.Sprintf("%s %v %s %s", sockKey(s), s.pids, s.user, s.name))
	}
	want := []string{
		"0.0.0.0:7000 [612] alice ControlCe",
		":::7000 [612] alice ControlCe",
		"127.0.0.1:8888 [12345] alice python3.1",
		"::1:8888 [12345] alice python3.1",
		"::1:5432 [800] postgres postgres",
	}
	if !slices.Equal(got, want) {
		t.Errorf("sockets:\n got %q\nwant %q", got, want)
	}
	p := l.procs[12345]
	if p == nil || p.Cwd != "/Users/alice/project" || p.Cmdline != "/opt/homebrew/bin/python3.11 /Users/alice/.venv/bin/jupyter-lab  --port=8888" ||
		!p.Started.Equal(time.Unix(1741083667-310, 0)) {
		t.Errorf("process 12345 = %+v", p)
	}
	if p := l.procs[612]; p == nil || !p.Started.Equal(time.Unix(1741083667-(3*86400+3723), 0)) || p.Cwd != "/" {
		t.Errorf("process 612 = %+v", p)
	}
	if p := l.procs[800]; p == nil || p.Name != "postgres" || p.Cmdline != "" {
		t.Errorf("process 800 (no ps row) = %+v", p)
	}
}

func TestParseListingNetstat(t *testing.T) {
	l, err := parseListing([]byte(netstatListing), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range l.sockets {
		got = append(got, sockKey(s))
	}
	want := []string{"127.0.0.1:8888", ":::5000", "::1:6006"}
	if !slices.Equal(got, want) || l.skipped != 1 {
		t.Errorf("sockets %q skipped %d, want %q and 1 (port 99999)", got, l.skipped, want)
	}
}

func TestParseListingErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  string
	}{
		{"empty", ""},
		{"csh error", "Unmatched '''.\n"},
		{"other version", "porthole-sockets v2\nS proc\nE\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseListing([]byte(tc.out), nil)
			if !errors.Is(err, ErrBadOutput) {
				t.Errorf("err = %v, want ErrBadOutput", err)
			}
		})
	}
	t.Run("big-endian machine", func(t *testing.T) {
		l, err := parseListing([]byte("porthole-sockets v1\nM s390x\nS proc\nL 4 7F000001:1F90 1000 1\nE\n"), nil)
		if err != nil || len(l.sockets) != 1 || l.sockets[0].addr.String() != "127.0.0.1" {
			t.Errorf("s390x listing: %v, %+v", err, l)
		}
	})
	t.Run("no end marker is kept", func(t *testing.T) {
		l, err := parseListing([]byte("porthole-sockets v1\nS proc\nL 4 0100007F:22B8 1000 41001\n"), nil)
		if err != nil || len(l.sockets) != 1 {
			t.Errorf("cut-short listing: %v, %+v", err, l)
		}
	})
}

var procAddrCases = []struct {
	in        string
	bigEndian bool
	addr      string
	port      int
	ok        bool
}{
	{"0100007F:1F90", false, "127.0.0.1", 8080, true},
	{"00000000:0016", false, "0.0.0.0", 22, true},
	{"0500000A:22B8", false, "10.0.0.5", 8888, true},
	{"7F000001:1F90", true, "127.0.0.1", 8080, true},
	{"00000000000000000000000001000000:1776", false, "::1", 6006, true},
	{"00000000000000000000000000000001:1776", true, "::1", 6006, true},
	{"00000000000000000000000000000000:1388", false, "::", 5000, true},
	{"0000000000000000FFFF00000100007F:1388", false, "127.0.0.1", 5000, true}, // IPv4-mapped
	{"0000000000000000FFFF00000500000A:0050", false, "10.0.0.5", 80, true},
	{"000080FE00000000FF005002020000FE:0277", false, "fe80::250:ff:fe00:2", 631, true},
	{"B80D0120000000000000000001000000:01BB", false, "2001:db8::1", 443, true},
	{"0100007F:0000", false, "", 0, false},
	{"0100007F:zz", false, "", 0, false},
	{"0100007F1F90", false, "", 0, false},
	{"0100007:1F90", false, "", 0, false},
	{"0100007G:1F90", false, "", 0, false},
	{"0100007F:11F90", false, "", 0, false},
	{":", false, "", 0, false},
}

func TestParseProcAddr(t *testing.T) {
	for _, tc := range procAddrCases {
		t.Run(tc.in, func(t *testing.T) {
			a, p, err := parseProcAddr(tc.in, tc.bigEndian)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (a.String() != tc.addr || p != tc.port) {
				t.Errorf("= %s %d, want %s %d", a, p, tc.addr, tc.port)
			}
		})
	}
}

// procHex encodes an address and port as /proc/net/tcp{,6} does on a
// little-endian machine; tests use it to write listings.
func procHex(a netip.Addr, port int) string {
	b := a.AsSlice()
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return fmt.Sprintf("%X:%04X", b, port)
}

func TestProcHexRoundTrip(t *testing.T) {
	for _, s := range []string{"127.0.0.1", "::1", "10.1.2.3", "2001:db8::42"} {
		a := netip.MustParseAddr(s)
		got, port, err := parseProcAddr(procHex(a, 4321), false)
		if err != nil || got != a || port != 4321 {
			t.Errorf("%s: round trip gave %s %d %v", s, got, port, err)
		}
	}
}

var lsofCases = []struct {
	name string
	line string
	want string // "cmd pid user addr port"; "" when ok is false
	err  bool
}{
	{"header", "COMMAND   PID  USER   FD   TYPE DEVICE SIZE/OFF NODE NAME", "", false},
	{"v4 star", "rapportd  512 alice  4u  IPv4 0x1234567890abcdef 0t0 TCP *:49152 (LISTEN)", "rapportd 512 alice 0.0.0.0 49152", false},
	{"v6 star", "rapportd  512 alice  5u  IPv6 0x1234567890abcdef 0t0 TCP *:49152 (LISTEN)", "rapportd 512 alice :: 49152", false},
	{"loopback", "python3.1 999 alice 3u IPv4 0xabc 0t0 TCP 127.0.0.1:8888 (LISTEN)", "python3.1 999 alice 127.0.0.1 8888", false},
	{"bracketed v6", "node 77 bob 21u IPv6 0xabc 0t0 TCP [::1]:3000 (LISTEN)", "node 77 bob ::1 3000", false},
	{"zone", "cupsd 88 root 6u IPv6 0xabc 0t0 TCP [fe80::1%lo0]:631 (LISTEN)", "cupsd 88 root fe80::1%lo0 631", false},
	{"linux lsof", "python3 10186 root 3u IPv4 312966 0t0 TCP 127.0.0.1:18767 (LISTEN)", "python3 10186 root 127.0.0.1 18767", false},
	{"escaped name", `Google\x20 700 alice 30u IPv4 0xabc 0t0 TCP 127.0.0.1:9222 (LISTEN)`, "Google  700 alice 127.0.0.1 9222", false},
	{"established", "ssh 1 a 3u IPv4 0x1 0t0 TCP 10.0.0.2:5000->10.0.0.3:22 (ESTABLISHED)", "", false},
	{"short", "garbage", "", true},
	{"bad pid", "x y alice 3u IPv4 0xabc 0t0 TCP 127.0.0.1:8888 (LISTEN)", "", true},
	{"bad port", "x 1 alice 3u IPv4 0xabc 0t0 TCP 127.0.0.1:http (LISTEN)", "", true},
	{"not tcp", "x 1 alice 3u IPv4 0xabc 0t0 UDP 127.0.0.1:53 (LISTEN)", "", true},
}

func TestParseLsofLine(t *testing.T) {
	for _, tc := range lsofCases {
		t.Run(tc.name, func(t *testing.T) {
			e, ok, err := parseLsofLine(tc.line)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			got := ""
			if ok {
				got = fmt.Sprintf("%s %d %s %s %d", e.command, e.pid, e.user, e.addr, e.port)
			}
			if got != tc.want {
				t.Errorf("= %q, want %q", got, tc.want)
			}
		})
	}
}

var netstatCases = []struct {
	name string
	line string
	want string // "addr:port", "" when not a listener
	err  bool
}{
	{"linux v4", "tcp        0      0 127.0.0.1:8888          0.0.0.0:*               LISTEN", "127.0.0.1:8888", false},
	{"linux any", "tcp        0      0 0.0.0.0:22              0.0.0.0:*               LISTEN", "0.0.0.0:22", false},
	{"linux v6", "tcp6       0      0 :::6006                 :::*                    LISTEN", ":::6006", false},
	{"linux v6 loopback", "tcp6       0      0 ::1:631                 :::*                    LISTEN", "::1:631", false},
	{"linux mapped", "tcp6       0      0 ::ffff:127.0.0.1:80     :::*                    LISTEN", "127.0.0.1:80", false},
	{"linux with -p", "tcp        0      0 127.0.0.1:5000          0.0.0.0:*               LISTEN      4444/python3", "127.0.0.1:5000", false},
	{"busybox", "tcp        0      0 0.0.0.0:8080            0.0.0.0:*               LISTEN", "0.0.0.0:8080", false},
	{"bsd v4", "tcp4       0      0  127.0.0.1.8888         *.*                    LISTEN", "127.0.0.1:8888", false},
	{"bsd star v4", "tcp4       0      0  *.3000                 *.*                    LISTEN", "0.0.0.0:3000", false},
	{"bsd dual", "tcp46      0      0  *.5000                 *.*                    LISTEN", ":::5000", false},
	{"bsd v6", "tcp6       0      0  ::1.6006               *.*                    LISTEN", "::1:6006", false},
	{"bsd zone", "tcp6       0      0  fe80::1%lo0.631        *.*                    LISTEN", "fe80::1%lo0:631", false},
	{"established", "tcp4       0      0  192.168.1.20.52344     17.57.146.5.443        ESTABLISHED", "", false},
	{"udp", "udp4       0      0  *.5353                 *.*", "", false},
	{"header", "Proto Recv-Q Send-Q Local Address Foreign Address State", "", false},
	{"bad port", "tcp4       0      0  127.0.0.1.99999        *.*                    LISTEN", "", true},
	{"bad addr", "tcp        0      0 300.0.0.1:80            0.0.0.0:*               LISTEN", "", true},
}

func TestParseNetstatLine(t *testing.T) {
	for _, tc := range netstatCases {
		t.Run(tc.name, func(t *testing.T) {
			s, ok, err := parseNetstatLine(tc.line)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			got := ""
			if ok {
				got = sockKey(s)
			}
			if got != tc.want {
				t.Errorf("= %q, want %q", got, tc.want)
			}
		})
	}
}

var etimeCases = []struct {
	in   string
	want time.Duration
	ok   bool
}{
	{"05:10", 5*time.Minute + 10*time.Second, true},
	{"01:02:03", time.Hour + 2*time.Minute + 3*time.Second, true},
	{"3-01:02:03", 3*24*time.Hour + time.Hour + 2*time.Minute + 3*time.Second, true},
	{"00:00", 0, true},
	{"5", 0, false},
	{"1:2:3:4", 0, false},
	{"a:b", 0, false},
	{"-1:00", 0, false},
	{"1-", 0, false},
	{"01:99", 0, false},
}

func TestParseEtime(t *testing.T) {
	for _, tc := range etimeCases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseEtime(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("= %v, %v; want %v ok=%v", got, err, tc.want, tc.ok)
			}
		})
	}
}

var psCases = []struct {
	in      string
	pid     int
	elapsed time.Duration
	cmd     string
	ok      bool
}{
	{"  612  3-01:02:03 /System/Library/ControlCenter", 612, 3*86400*time.Second + 3723*time.Second, "/System/Library/ControlCenter", true},
	{"12345       05:10 python3  -m   jupyter lab", 12345, 310 * time.Second, "python3  -m   jupyter lab", true},
	{"7 ??? sleep 10", 7, -1, "sleep 10", true},
	{"7 05:10", 0, 0, "", false},
	{"x 05:10 cmd", 0, 0, "", false},
}

func TestParsePSLine(t *testing.T) {
	for _, tc := range psCases {
		t.Run(tc.in, func(t *testing.T) {
			e, err := parsePSLine(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (e.pid != tc.pid || e.elapsed != tc.elapsed || e.command != tc.cmd) {
				t.Errorf("= %+v, want %d %v %q", e, tc.pid, tc.elapsed, tc.cmd)
			}
		})
	}
}

func FuzzParseListing(f *testing.F) {
	for _, s := range []string{procListing, lsofListing, netstatListing, socketListing, "porthole-sockets v1\nP 1\t\t\t\t\n", "porthole-sockets v1\nW p\nW n/x\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := parseListing(b, nil)
		if err != nil {
			if !errors.Is(err, ErrBadOutput) {
				t.Fatalf("error is not ErrBadOutput: %v", err)
			}
			return
		}
		for _, s := range l.sockets {
			if s.port <= 0 || s.port > 65535 || !s.addr.IsValid() {
				t.Fatalf("bad socket accepted: %+v", s)
			}
		}
		for _, u := range l.unix {
			if !strings.HasPrefix(u.Path, "/") || u.Kind < 0 || u.Kind >= socketKindCount {
				t.Fatalf("bad Unix socket accepted: %+v", u)
			}
		}
		for _, c := range buildCandidates(l) {
			if len(c.hosts) == 0 && c.svc.Scope != ScopeSpecific {
				t.Fatalf("no dial host for %+v", c.svc)
			}
		}
	})
}

func FuzzParseProcAddr(f *testing.F) {
	for _, tc := range procAddrCases {
		f.Add(tc.in, tc.bigEndian)
	}
	f.Fuzz(func(t *testing.T, s string, be bool) {
		a, port, err := parseProcAddr(s, be)
		if err != nil {
			return
		}
		if !a.IsValid() || port <= 0 || port > 65535 {
			t.Fatalf("%q: accepted %v %d", s, a, port)
		}
		if !be {
			// What parses must encode back to an equivalent address.
			b, p2, err := parseProcAddr(procHex(a, port), false)
			if err != nil || b != a || p2 != port {
				t.Fatalf("%q: round trip %v %d -> %v %d %v", s, a, port, b, p2, err)
			}
		}
	})
}

func FuzzParseLsofLine(f *testing.F) {
	for _, tc := range lsofCases {
		f.Add(tc.line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, ok, err := parseLsofLine(line)
		if ok && (err != nil || e.pid <= 0 || e.port <= 0 || e.port > 65535 || !e.addr.IsValid()) {
			t.Fatalf("%q: accepted %+v (err %v)", line, e, err)
		}
	})
}

func FuzzParseNetstatLine(f *testing.F) {
	for _, tc := range netstatCases {
		f.Add(tc.line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		s, ok, err := parseNetstatLine(line)
		if ok && (err != nil || s.port <= 0 || s.port > 65535 || !s.addr.IsValid()) {
			t.Fatalf("%q: accepted %+v (err %v)", line, s, err)
		}
	})
}

func FuzzParsePSLine(f *testing.F) {
	for _, tc := range psCases {
		f.Add(tc.in)
	}
	for _, tc := range etimeCases {
		f.Add("1 " + tc.in + " cmd")
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, err := parsePSLine(line)
		if err == nil && (e.pid <= 0 || e.elapsed < -1 || strings.TrimSpace(e.command) != e.command) {
			t.Fatalf("%q: accepted %+v", line, e)
		}
	})
}
