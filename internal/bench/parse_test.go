package main

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/porthole-app/porthole/internal/testrig"
)

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{"typical", "Name:\tssh\nVmPeak:\t 9000 kB\nVmRSS:\t    6512 kB\nRssAnon:\t 1 kB\n", 6512, false},
		{"zero", "VmRSS:\t0 kB\n", 0, false},
		{"missing (zombie)", "Name:\tssh\nState:\tZ (zombie)\n", 0, true},
		{"bad unit", "VmRSS:\t6512 MB\n", 0, true},
		{"bad number", "VmRSS:\tx kB\n", 0, true},
		{"negative", "VmRSS:\t-1 kB\n", 0, true},
		{"empty", "", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseVmRSS(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseVmRSS err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("parseVmRSS = %d, want %d", got, tc.want)
			}
		})
	}
}

func FuzzParseVmRSS(f *testing.F) {
	for _, s := range []string{"VmRSS:\t    6512 kB\n", "VmRSS:\t0 kB\n", "Name:\tssh\n", "VmRSS:\tx kB\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseVmRSS(s)
		if err == nil && n < 0 {
			t.Errorf("parseVmRSS(%q) = %d, want >= 0", s, n)
		}
	})
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		ppid, pgrp int
		wantErr    bool
	}{
		{"typical", "1234 (ssh) S 1 1234 1234 0 -1 4194560", 1, 1234, false},
		{"name with spaces and parens", "77 (a) b) (c) R 5 99 77 0", 5, 99, false},
		{"no paren", "1234 ssh S 1 1234", 0, 0, true},
		{"short", "1234 (ssh) S 1", 0, 0, true},
		{"pgrp not a number", "1234 (ssh) S 1 x 1", 0, 0, true},
		{"ppid not a number", "1234 (ssh) S x 1 1", 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ppid, pgrp, err := parseStat(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseStat err = %v, wantErr %v", err, tc.wantErr)
			}
			if ppid != tc.ppid || pgrp != tc.pgrp {
				t.Errorf("parseStat = %d, %d; want %d, %d", ppid, pgrp, tc.ppid, tc.pgrp)
			}
		})
	}
}

func FuzzParseStat(f *testing.F) {
	for _, s := range []string{"1234 (ssh) S 1 1234 1234 0", "77 (a) b) (c) R 5 99 77 0", "1234 ssh S", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _, _ = parseStat(s) // must not panic
	})
}

func TestFamilyOf(t *testing.T) {
	all := []procInfo{
		{pid: 1, ppid: 0, pgrp: 1},
		{pid: 10, ppid: 1, pgrp: 10},  // the tunnel, group leader
		{pid: 11, ppid: 10, pgrp: 10}, // same group
		{pid: 12, ppid: 10, pgrp: 12}, // own session
		{pid: 13, ppid: 12, pgrp: 12}, // grandchild
		{pid: 20, ppid: 1, pgrp: 20},  // unrelated
		{pid: 21, ppid: 20, pgrp: 10}, // unrelated parent, but in the group
	}
	var got []int
	for _, p := range familyOf(all, 10) {
		got = append(got, p.pid)
	}
	if want := []int{10, 11, 12, 13, 21}; !slices.Equal(got, want) {
		t.Errorf("familyOf = %v, want %v", got, want)
	}
}

func TestParseCPUInfo(t *testing.T) {
	in := "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n"
	model, cores := parseCPUInfo(in)
	if model != "AMD EPYC 7B13" || cores != 2 {
		t.Errorf("parseCPUInfo = %q, %d; want AMD EPYC 7B13, 2", model, cores)
	}
	if model, cores := parseCPUInfo(""); model != "unknown" || cores != 0 {
		t.Errorf("parseCPUInfo(empty) = %q, %d; want unknown, 0", model, cores)
	}
}

func FuzzParseCPUInfo(f *testing.F) {
	f.Add("processor\t: 0\nmodel name\t: AMD EPYC\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if _, n := parseCPUInfo(s); n < 0 {
			t.Errorf("negative core count")
		}
	})
}

func TestParseMemTotal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{"typical", "MemTotal:       24683904 kB\nMemFree: 1 kB\n", 24683904, false},
		{"missing", "MemFree: 1 kB\n", 0, true},
		{"zero", "MemTotal: 0 kB\n", 0, true},
		{"bad unit", "MemTotal: 5 MB\n", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMemTotal(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseMemTotal = %d, %v; want %d, err %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func FuzzParseMemTotal(f *testing.F) {
	f.Add("MemTotal:       24683904 kB\n")
	f.Add("MemTotal: 5 MB\n")
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := parseMemTotal(s); err == nil && n <= 0 {
			t.Errorf("parseMemTotal(%q) = %d without error", s, n)
		}
	})
}

func TestParseOSRelease(t *testing.T) {
	tests := []struct{ in, want string }{
		{"NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n", "Debian GNU/Linux 12 (bookworm)"},
		{"PRETTY_NAME=Plain\n", "Plain"},
		{"NAME=x\n", "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := parseOSRelease(tc.in); got != tc.want {
				t.Errorf("parseOSRelease = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseResources(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"img and script, dedup", `<img src="/res/0"><script src="/res/1"></script><link href="/res/0">`, []string{"/res/0", "/res/1"}},
		{"none", `<html><body>hi</body></html>`, nil},
		{"other paths ignored", `<img src="/small"><img src="/res/x">`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseResources([]byte(tc.in)); !slices.Equal(got, tc.want) {
				t.Errorf("parseResources = %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzParseResources(f *testing.F) {
	f.Add(`<img src="/res/0"><script src="/res/1"></script>`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range parseResources([]byte(s)) {
			if !strings.HasPrefix(p, "/res/") {
				t.Errorf("resource %q lacks /res/ prefix", p)
			}
		}
	})
}

func TestParseKexCipher(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"debug1 line", "debug1: kex: client->server cipher: aes128-gcm@openssh.com MAC: <implicit> compression: none [preauth]\ndebug1: kex: server->client cipher: chacha20-poly1305@openssh.com MAC: <implicit> compression: none [preauth]\n", "chacha20-poly1305@openssh.com"},
		{"absent", "Accepted publickey for root\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseKexCipher(tc.in); got != tc.want {
				t.Errorf("parseKexCipher = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRehostKnownHosts(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{"one key", "[127.0.0.1]:2222 ssh-ed25519 AAAAC3Nz\n", "[127.0.0.1]:9 ssh-ed25519 AAAAC3Nz\n", false},
		{"comments and comment field", "# x\n\n127.0.0.1 ssh-ed25519 AAAA host@x\n", "[127.0.0.1]:9 ssh-ed25519 AAAA\n", false},
		{"marker lines skipped", "@cert-authority * ssh-ed25519 AAAA\n", "", true},
		{"short line", "127.0.0.1 ssh-ed25519\n", "", true},
		{"empty", "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rehostKnownHosts(tc.in, "[127.0.0.1]:9")
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("rehostKnownHosts = %q, %v; want %q, err %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func FuzzRehostKnownHosts(f *testing.F) {
	f.Add("[127.0.0.1]:2222 ssh-ed25519 AAAAC3Nz\n")
	f.Add("# x\n\n127.0.0.1 ssh-ed25519 AAAA host@x\n")
	f.Fuzz(func(t *testing.T, s string) {
		out, err := rehostKnownHosts(s, "[h]:1")
		if err != nil {
			return
		}
		for line := range strings.Lines(out) {
			if !strings.HasPrefix(line, "[h]:1 ") || len(strings.Fields(line)) != 3 {
				t.Errorf("bad output line %q", line)
			}
		}
	})
}

func TestParseOnly(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []measureName
		wantErr bool
	}{
		{"two", "get,wake", []measureName{measureGet, measureWake}, false},
		{"spaces and case", " RSS , bulk ", []measureName{measureBulk, measureRSS}, false},
		{"unknown", "get,nope", nil, true},
		{"empty", ",", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOnly(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseOnly err = %v, wantErr %v", err, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("parseOnly = %v, want %v", got, tc.want)
			}
			for _, m := range tc.want {
				if !got[m] {
					t.Errorf("parseOnly missing %v", m)
				}
			}
		})
	}
}

func FuzzParseOnly(f *testing.F) {
	f.Add("get,wake")
	f.Add(" RSS , bulk ")
	f.Add(",")
	f.Fuzz(func(t *testing.T, s string) {
		set, err := parseOnly(s)
		if err == nil && len(set) == 0 {
			t.Errorf("parseOnly(%q): empty set without error", s)
		}
	})
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	tests := []struct {
		p, want float64
	}{{0, 1}, {50, 3}, {100, 5}, {25, 2}, {95, 4.8}}
	for _, tc := range tests {
		if got := percentile(xs, tc.p); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Errorf("median(nil) is not NaN")
	}
	if xs[0] != 5 {
		t.Errorf("percentile sorted its input in place")
	}
}

func TestOrderAlternates(t *testing.T) {
	first := map[tool]int{}
	for i := range 8 {
		o := order(i)
		if o[0] == o[1] {
			t.Fatalf("order(%d) = %v: same tool twice", i, o)
		}
		first[o[0]]++
	}
	if first[toolSSH] != 4 || first[toolPorthole] != 4 {
		t.Errorf("each tool should go first half the time: %v", first)
	}
}

func TestRenderTable(t *testing.T) {
	rows := []row{
		{measure: "GET median", unit: unitMS, cells: [2]cell{value(140), value(70)}, target: ratioMax(0.55)},
		{measure: "download", unit: unitMBps, higher: true, cells: [2]cell{value(30), value(27)}, target: ratioMin(1.0)},
		{measure: "wake", unit: unitMS, cells: [2]cell{failed(errNoField), {ok: true, v: 900, failedReqs: 1}}, target: wakeTarget(1500, true)},
		{measure: "pipe | in name", unit: unitMB, cells: [2]cell{value(7), failed(errors.New("boom"))}, target: absMax(20, "≤ 20 MB")},
	}
	out := renderTable(rows, true, false)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.Contains(out, "| GET median | 140 ms | 70.0 ms | 0.50× | ≤ 0.55× | yes |") {
		t.Errorf("ratio row wrong:\n%s", out)
	}
	if !strings.Contains(out, "| download | 30.0 MB/s | 27.0 MB/s | 0.90× (MB/s: higher is better) | ≥ 1× | no |") {
		t.Errorf("throughput row wrong:\n%s", out)
	}
	if !strings.Contains(out, "| wake | field not found | 900 ms | — | ≤ 1500 ms, 0 failed, 0 hung | no |") {
		t.Errorf("wake row wrong (a failed request must fail the target):\n%s", out)
	}
	if !strings.Contains(out, `pipe \| in name`) {
		t.Errorf("pipe not escaped:\n%s", out)
	}
	if len(lines) != 2+len(rows) {
		t.Errorf("got %d lines, want %d:\n%s", len(lines), 2+len(rows), out)
	}
	if got := renderTable(rows[:1], false, false); !strings.Contains(got, "| ≤ 0.55× | — |") {
		t.Errorf("without porthole, met? should be —:\n%s", got)
	}
}

func TestSoakUnits(t *testing.T) {
	for _, tc := range []struct {
		u    unit
		v    float64
		want string
	}{{unitCount, 0, "0"}, {unitCount, 12, "12"}, {unitCount, -3, "-3"}, {unitConnPS, 1397.4, "1397 conn/s"}} {
		if got := tc.u.format(tc.v); got != tc.want {
			t.Errorf("%v.format(%v) = %q, want %q", tc.u, tc.v, got, tc.want)
		}
	}
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 10_000: "10,000", 100_000: "100,000", 1_234_567: "1,234,567", -1000: "-1,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
	rows := []row{{measure: "soak: failed", unit: unitCount, cells: [2]cell{{err: "n/a"}, value(0)}, target: absMax(0, "0")}}
	if out := renderTable(rows, true, false); !strings.Contains(out, "| soak: failed | n/a | 0 | — | 0 | yes |") {
		t.Errorf("soak row wrong:\n%s", out)
	}
}

func TestAnalyzeCold(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ev := func(flow int64, k testrig.RelayEventKind, ms int) testrig.RelayEvent {
		return testrig.RelayEvent{Flow: flow, Kind: k, Bytes: 10, At: at(ms)}
	}
	evs := []testrig.RelayEvent{
		ev(1, testrig.RelayAccept, 1), // an earlier start's flow: before exec
		ev(2, testrig.RelayAccept, 7),
		ev(2, testrig.RelayUp, 8), ev(2, testrig.RelayDown, 20), ev(2, testrig.RelayDown, 21), // 1
		ev(3, testrig.RelayAccept, 30), ev(3, testrig.RelayUp, 31), // another flow: ignored
		ev(2, testrig.RelayUp, 60), ev(2, testrig.RelayUp, 61), ev(2, testrig.RelayDown, 100), // 2
		ev(2, testrig.RelayUp, 140), ev(2, testrig.RelayDown, 180), // 3
		ev(2, testrig.RelayUp, 215), // the close after the response: not a round trip
		ev(2, testrig.RelayUp, 900), // after ready
	}
	ct, err := analyzeCold(evs[1:], at(0), at(220))
	if err != nil {
		t.Fatal(err)
	}
	if ct.flights != 3 || ct.dial != 7*time.Millisecond || ct.firstUp != 8*time.Millisecond {
		t.Fatalf("got flights %d, dial %v, first byte %v; want 3, 7ms, 8ms (%s)", ct.flights, ct.dial, ct.firstUp, ct)
	}
	if _, err := analyzeCold(nil, at(0), at(10)); err == nil {
		t.Fatal("no events: want an error")
	}
}

func TestParseStatCPU(t *testing.T) {
	stat := "1234 (porthole (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 8 0 5000 0 0"
	if n, err := parseStatCPU(stat); err != nil || n != 281 {
		t.Fatalf("parseStatCPU = %d, %v; want 281", n, err)
	}
	if _, err := parseStatCPU("1 (x) S 1"); err == nil {
		t.Fatal("short stat: want an error")
	}
}
