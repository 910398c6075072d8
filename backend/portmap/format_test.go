package portmap

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

type parseCase struct {
	name string
	in   string
	// for a damaged file: where and what
	line, col int
	problem   string
	newer     bool
	// for a good file: what it holds
	logins  map[string]string // id → addr
	entries map[key]string    // key → local
}

var parseCases = []parseCase{
	{name: "minimal", in: `{"version":1,"endpoints":[]}`, logins: map[string]string{}, entries: map[key]string{}},
	{name: "no endpoints field", in: `{"version": 1}`, logins: map[string]string{}, entries: map[key]string{}},
	{name: "full", in: `{
  "version": 1,
  "last_login_addr": "127.0.0.4",
  "logins": [
    {"id": "a", "addr": "127.0.0.2"},
    {"id": "b", "addr": "127.0.0.3"}
  ],
  "endpoints": [
    {"login": "a", "host": "localhost", "port": 8888, "local": "127.0.0.2:8888"},
    {"login": "b", "host": "localhost", "port": 8888, "local": "127.0.0.3:8888"},
    {"login": "c", "host": "db.internal", "port": 5432, "local": "127.0.0.1:5432"}
  ]
}
`,
		logins: map[string]string{"a": "127.0.0.2", "b": "127.0.0.3"},
		entries: map[key]string{
			{"a", "localhost", 8888}:   "127.0.0.2:8888",
			{"b", "localhost", 8888}:   "127.0.0.3:8888",
			{"c", "db.internal", 5432}: "127.0.0.1:5432",
		}},
	{name: "unknown fields and host spellings", in: `{"version":1,"future":{"x":[1,2]},"endpoints":[
 {"login":"a","host":"[::1]","port":6006,"local":"127.0.0.1:6006","note":"hi"},
 {"login":"a","host":"GPU-Box.","port":6006,"local":"127.0.0.1:6007"}]}`,
		logins: map[string]string{},
		entries: map[key]string{
			{"a", "localhost", 6006}: "127.0.0.1:6006",
			{"a", "gpu-box", 6006}:   "127.0.0.1:6007",
		}},
	{name: "empty", in: "", line: 1, col: 1, problem: "empty"},
	{name: "blank lines", in: "\n\n  \n", line: 1, col: 1, problem: "empty"},
	{name: "not json", in: "version = 1\n", line: 1, col: 1, problem: "not valid JSON"},
	{name: "top-level array", in: `[{"version":1}]`, line: 1, col: 1, problem: "must be an object"},
	{name: "trailing comma", in: "{\"version\": 1,\n  \"endpoints\": [\n    {\"login\": \"a\", \"host\": \"localhost\", \"port\": 1, \"local\": \"127.0.0.1:2000\"},\n  ]\n}\n",
		line: 4, col: 3, problem: "not valid JSON"},
	{name: "truncated", in: "{\"version\": 1,\n\"endpoints\": [", line: 2, col: 15, problem: "ends too early"},
	{name: "truncated in value", in: "{\"version\": 1,\n\"endpoints\": [{\"login\": \"a", line: 2, col: 27, problem: "ends too early"},
	{name: "garbage after", in: "{\"version\": 1}\nxyz", line: 2, col: 1, problem: "after top-level value"},
	{name: "version is a string", in: `{"version": "1"}`, line: 1, col: 13, problem: "version must be a whole number"},
	{name: "version missing", in: `{"endpoints": []}`, line: 1, col: 1, problem: `"version" is missing`},
	{name: "version zero", in: "{\n \"version\": 0}", line: 2, col: 13, problem: "not a valid format version"},
	{name: "version twice", in: `{"version": 1, "version": 1}`, line: 1, col: 16, problem: "appears twice"},
	{name: "newer version", in: `{"version": 2, "endpoints": "whatever"}`, newer: true},
	{name: "endpoints not an array", in: `{"version": 1, "endpoints": {}}`, line: 1, col: 29, problem: "endpoints must be an array"},
	{name: "port is text", in: "{\"version\": 1, \"endpoints\": [\n  {\"login\": \"a\", \"host\": \"h\", \"port\": \"8888\", \"local\": \"127.0.0.1:8888\"}]}",
		line: 2, col: 3, problem: "endpoints[0].port must be a whole number"},
	{name: "remote port out of range", in: "{\"version\": 1, \"endpoints\": [\n  {\"login\": \"a\", \"host\": \"h\", \"port\": 70000, \"local\": \"127.0.0.1:8888\"}]}",
		line: 2, col: 3, problem: "remote port 70000"},
	{name: "local not loopback", in: "{\"version\": 1, \"endpoints\": [\n  {\"login\": \"a\", \"host\": \"h\", \"port\": 80, \"local\": \"10.1.2.3:8888\"}]}",
		line: 2, col: 3, problem: "not on an IPv4 loopback"},
	{name: "local not addr:port", in: "{\"version\": 1, \"endpoints\": [\n  {\"login\": \"a\", \"host\": \"h\", \"port\": 80, \"local\": \"127.0.0.1\"}]}",
		line: 2, col: 3, problem: "not an address:port"},
	{name: "local port zero", in: `{"version": 1, "endpoints": [{"login": "a", "host": "h", "port": 80, "local": "127.0.0.1:0"}]}`,
		line: 1, col: 30, problem: "outside 1–65535"},
	{name: "empty login", in: `{"version": 1, "endpoints": [{"login": "", "host": "h", "port": 80, "local": "127.0.0.1:80"}]}`,
		line: 1, col: 30, problem: "empty login ID"},
	{name: "bad host", in: `{"version": 1, "endpoints": [{"login": "a", "host": "a b", "port": 80, "local": "127.0.0.1:80"}]}`,
		line: 1, col: 30, problem: "not a host name"},
	{name: "same key twice", in: "{\"version\": 1, \"endpoints\": [\n{\"login\": \"a\", \"host\": \"localhost\", \"port\": 80, \"local\": \"127.0.0.1:2000\"},\n{\"login\": \"a\", \"host\": \"127.0.0.1\", \"port\": 80, \"local\": \"127.0.0.1:2001\"}]}",
		line: 3, col: 1, problem: "listed twice"},
	{name: "same local twice", in: "{\"version\": 1, \"endpoints\": [\n{\"login\": \"a\", \"host\": \"h\", \"port\": 80, \"local\": \"127.0.0.1:2000\"},\n  {\"login\": \"b\", \"host\": \"h\", \"port\": 80, \"local\": \"127.0.0.1:2000\"}]}",
		line: 3, col: 3, problem: "given to two apps"},
	{name: "login gets 127.0.0.1", in: "{\"version\": 1,\n\"logins\": [{\"id\": \"a\", \"addr\": \"127.0.0.1\"}]}",
		line: 2, col: 12, problem: "between 127.0.0.2"},
	{name: "login gets serve's address", in: "{\"version\": 1,\n\"logins\": [{\"id\": \"a\", \"addr\": \"127.80.72.1\"}]}",
		line: 2, col: 12, problem: "serve's own"},
	{name: "endpoint on serve's address", in: "{\"version\": 1, \"endpoints\": [\n  {\"login\": \"a\", \"host\": \"h\", \"port\": 80, \"local\": \"127.80.72.1:8888\"}]}",
		line: 2, col: 3, problem: "porthole serve's own page"},
	{name: "two logins one address", in: "{\"version\": 1, \"logins\": [\n{\"id\": \"a\", \"addr\": \"127.0.0.2\"},\n{\"id\": \"b\", \"addr\": \"127.0.0.2\"}]}",
		line: 3, col: 1, problem: "share cookies"},
	{name: "login twice", in: "{\"version\": 1, \"logins\": [\n{\"id\": \"a\", \"addr\": \"127.0.0.2\"},\n{\"id\": \"a\", \"addr\": \"127.0.0.3\"}]}",
		line: 3, col: 1, problem: "listed twice"},
	{name: "endpoint on another login's address", in: "{\"version\": 1, \"logins\": [{\"id\": \"a\", \"addr\": \"127.0.0.2\"}],\n\"endpoints\": [{\"login\": \"b\", \"host\": \"h\", \"port\": 80, \"local\": \"127.0.0.2:2000\"}]}",
		line: 2, col: 15, problem: "share cookies"},
	{name: "bad last_login_addr", in: "{\"version\": 1,\n  \"last_login_addr\": \"10.0.0.1\"}", line: 2, col: 22, problem: "last_login_addr"},
	{name: "per-app blocks", in: `{"version": 1, "last_app_net": 3,
 "logins": [{"id": "a", "addr": "127.0.0.2"}],
 "app_nets": [{"login": "a", "net": 1, "last_addr": "127.1.1.1"}, {"login": "b", "net": 2}],
 "endpoints": [
  {"login": "a", "host": "localhost", "port": 8888, "local": "127.0.0.2:8888"},
  {"login": "a", "host": "localhost", "port": 8889, "local": "127.1.1.1:8889"},
  {"login": "x", "host": "localhost", "port": 1, "local": "127.2.0.9:2000"}]}`,
		logins: map[string]string{"a": "127.0.0.2"},
		entries: map[key]string{
			{"a", "localhost", 8888}: "127.0.0.2:8888",
			{"a", "localhost", 8889}: "127.1.1.1:8889",
			{"x", "localhost", 1}:    "127.2.0.9:2000", // an older Porthole's: kept, not an error
		}},
	{name: "app net zero", in: "{\"version\": 1, \"app_nets\": [\n{\"login\": \"a\", \"net\": 0}]}", line: 2, col: 1, problem: "not a block number"},
	{name: "app net of serve", in: "{\"version\": 1, \"app_nets\": [\n{\"login\": \"a\", \"net\": 80}]}", line: 2, col: 1, problem: "not a block number"},
	{name: "app net too big", in: "{\"version\": 1, \"app_nets\": [\n{\"login\": \"a\", \"net\": 256}]}", line: 2, col: 1, problem: "not a block number"},
	{name: "app net twice", in: "{\"version\": 1, \"app_nets\": [\n{\"login\": \"a\", \"net\": 1},\n{\"login\": \"b\", \"net\": 1}]}", line: 3, col: 1, problem: "share cookies"},
	{name: "app net login twice", in: "{\"version\": 1, \"app_nets\": [\n{\"login\": \"a\", \"net\": 1},\n{\"login\": \"a\", \"net\": 2}]}", line: 3, col: 1, problem: "listed twice"},
	{name: "app last_addr outside its block", in: "{\"version\": 1, \"app_nets\": [\n{\"login\": \"a\", \"net\": 1, \"last_addr\": \"127.2.0.1\"}]}", line: 2, col: 1, problem: "not an address of block 127.1.0.0/16"},
	{name: "last_app_net out of range", in: "{\"version\": 1,\n \"last_app_net\": 300}", line: 2, col: 18, problem: "last_app_net 300"},
	{name: "app_nets not an array", in: `{"version": 1, "app_nets": 5}`, line: 1, col: 28, problem: "app_nets must be an array"},
	{name: "unicode before the error", in: "{\"version\": 1, \"x\": \"ééé\", \"endpoints\": 5}", line: 1, col: 41, problem: "endpoints must be an array"},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			st, err := parse([]byte(tc.in))
			switch {
			case tc.newer:
				if !errors.Is(err, ErrNewerVersion) {
					t.Fatalf("err = %v, want ErrNewerVersion", err)
				}
				return
			case tc.problem != "" || tc.line != 0:
				var pe *parseError
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v (state %+v), want a parseError", err, st)
				}
				line, col := lineCol([]byte(tc.in), pe.offset)
				if line != tc.line || col != tc.col || !strings.Contains(pe.msg, tc.problem) {
					t.Fatalf("got line %d col %d %q; want line %d col %d containing %q", line, col, pe.msg, tc.line, tc.col, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if len(st.logins) != len(tc.logins) || len(st.entries) != len(tc.entries) {
				t.Fatalf("got %d logins, %d entries; want %d, %d", len(st.logins), len(st.entries), len(tc.logins), len(tc.entries))
			}
			for id, a := range tc.logins {
				if st.logins[id] != netip.MustParseAddr(a) {
					t.Errorf("login %q: addr %v, want %s", id, st.logins[id], a)
				}
			}
			for k, local := range tc.entries {
				if got := st.entries[k].String(); got != local {
					t.Errorf("%+v: local %s, want %s", k, got, local)
				}
			}
			// encode → parse round trip is the identity
			again, err := parse(encode(st))
			if err != nil || !again.equal(st) {
				t.Fatalf("round trip: %v, equal=%v\n%s", err, err == nil && again.equal(st), encode(st))
			}
		})
	}
}

func TestLastLoginAddrCoversLogins(t *testing.T) {
	st, err := parse([]byte(`{"version":1,"last_login_addr":"127.0.0.2","logins":[{"id":"a","addr":"127.0.0.9"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddr("127.0.0.9"); st.lastAddr != want {
		t.Fatalf("lastAddr = %v, want %v", st.lastAddr, want)
	}
}

func TestEncodeStable(t *testing.T) {
	st := newState()
	st.logins["b"] = netip.MustParseAddr("127.0.0.3")
	st.logins["a"] = netip.MustParseAddr("127.0.0.2")
	st.lastAddr = netip.MustParseAddr("127.0.0.3")
	for i, k := range []key{{"b", "localhost", 1}, {"a", "z", 2}, {"a", "localhost", 3}} {
		st.entries[k] = Endpoint{IP: netip.MustParseAddr("127.0.0.1"), Port: 2000 + i}
	}
	first := encode(st)
	for range 20 { // map iteration order varies; the bytes must not
		if got := encode(st.clone()); !bytes.Equal(got, first) {
			t.Fatalf("encode is not stable:\n%s\n%s", first, got)
		}
	}
	want := `{
  "version": 1,
  "last_login_addr": "127.0.0.3",
  "logins": [
    {
      "id": "a",
      "addr": "127.0.0.2"
    },
    {
      "id": "b",
      "addr": "127.0.0.3"
    }
  ],
  "endpoints": [
    {
      "login": "a",
      "host": "localhost",
      "port": 3,
      "local": "127.0.0.1:2002"
    },
    {
      "login": "a",
      "host": "z",
      "port": 2,
      "local": "127.0.0.1:2001"
    },
    {
      "login": "b",
      "host": "localhost",
      "port": 1,
      "local": "127.0.0.1:2000"
    }
  ]
}
`
	if string(first) != want {
		t.Fatalf("encode =\n%s\nwant\n%s", first, want)
	}
}

func TestLineCol(t *testing.T) {
	for _, tc := range []struct {
		in        string
		off       int64
		line, col int
	}{
		{"", 0, 1, 1},
		{"abc", 2, 1, 3},
		{"a\nbc", 2, 2, 1},
		{"a\nbc", 3, 2, 2},
		{"é\né", 5, 2, 2}, // columns count characters, not bytes
		{"abc", 99, 1, 4},
		{"abc", -5, 1, 1},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if l, c := lineCol([]byte(tc.in), tc.off); l != tc.line || c != tc.col {
				t.Fatalf("lineCol(%q, %d) = %d,%d; want %d,%d", tc.in, tc.off, l, c, tc.line, tc.col)
			}
		})
	}
}

// FuzzParse: parse never panics; what it accepts survives encode → parse
// unchanged and encodes to the same bytes; what it refuses has a position
// inside the file.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parse(data)
		if err != nil {
			var pe *parseError
			if errors.As(err, &pe) {
				if pe.offset < 0 || pe.offset > int64(len(data)) {
					t.Fatalf("offset %d outside the %d-byte file", pe.offset, len(data))
				}
				line, col := lineCol(data, pe.offset)
				if line < 1 || col < 1 || line > bytes.Count(data, []byte{'\n'})+1 {
					t.Fatalf("bad position %d:%d", line, col)
				}
			} else if !errors.Is(err, ErrNewerVersion) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		enc := encode(st)
		again, err := parse(enc)
		if err != nil {
			t.Fatalf("re-parse of encoded state failed: %v\n%s", err, enc)
		}
		if !again.equal(st) {
			t.Fatalf("round trip changed the state\n%s", enc)
		}
		if enc2 := encode(again); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
	})
}
