package webui

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeArgs throws arbitrary bodies at every method of the table: decoding
// must never panic, must either fail with ErrBadArguments or produce one value of
// the right type per parameter, and a full call must map to a known status.
func FuzzDecodeArgs(f *testing.F) {
	seeds := []struct{ name, body string }{
		{"Version", ""}, {"Version", "[]"}, {"Version", " [ ] \n"}, {"Version", "[1]"},
		{"Ping", ""}, {"Check", "[]"},
		{"SetTheme", `["dark"]`}, {"SetTheme", `["dark","light"]`}, {"SetTheme", `[42]`},
		{"SetTheme", `[null]`}, {"SetTheme", `{"theme":"dark"}`}, {"SetTheme", `"dark"`},
		{"SetTheme", `["dark"`}, {"SetTheme", `["dark"] x`}, {"SetTheme", `["blue"]`},
		{"Add", `[2, 40]`}, {"Add", `[1]`}, {"Add", `[1, true]`}, {"Add", `[1.5, 2]`}, {"Add", `[1e400, 2]`},
		{"Add", `[-9223372036854775808, 9223372036854775807]`},
		{"Configure", `[{"name":"lab","port":8888,"tags":["gpu"]}]`}, {"Configure", `[{"name":"x","prot":1}]`},
		{"Configure", `[{"name":"x","port":"80"}]`}, {"Configure", `[[1]]`}, {"Configure", `[{"tags":{"a":1}}]`},
		{"Maybe", `[{"name":"x"}]`}, {"Maybe", `[null]`}, {"Maybe", `[{"port":1.5}]`},
		{"Echo", `[{"a":[1,"b",null]}]`}, {"Echo", `[[[[[[[]]]]]]]`},
		{"Join", `["-", ["a","b","c"]]`}, {"Join", `["-", null]`}, {"Join", `["-", "a"]`},
		{"Boom", ""}, {"Conflict", ""}, {"Fail", ""}, {"Bogus", ""},
		{"Nope", ""}, {"Startup", ""}, {"", "\x00"}, {"Add", "[\"\\ud800\", 1]"},
	}
	for _, sd := range seeds {
		f.Add(sd.name, []byte(sd.body))
	}
	s, err := New(Options{Bound: &fakeApp{theme: "system"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		for _, m := range s.methods {
			args, err := m.decodeArgs(body)
			if err != nil {
				if !errors.Is(err, ErrBadArguments) || httpStatus(err) != 400 {
					t.Fatalf("%s(%q): error %v is not a 400 ErrBadArguments", m.name, body, err)
				}
				continue
			}
			if len(args) != len(m.params) {
				t.Fatalf("%s(%q): %d values for %d params", m.name, body, len(args), len(m.params))
			}
			for i, a := range args {
				if !a.IsValid() || a.Type() != m.params[i] {
					t.Fatalf("%s(%q): argument %d has the wrong type", m.name, body, i+1)
				}
			}
		}
		out, err := s.call(name, body)
		if err != nil {
			switch st := httpStatus(err); st {
			case 400, 404, 409, 500:
			default:
				t.Fatalf("%s(%q): unexpected status %d for %v", name, body, st, err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("%s(%q): result %q is not JSON", name, body, out)
		}
	})
}
