package agent

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

var cappedLineCases = []struct {
	name, in string
	limit    int
	lines    []string
	dropped  []int
}{
	{"short lines", "a\nbc\n", 8, []string{"a", "bc"}, []int{0, 0}},
	{"crlf", "a\r\nb", 8, []string{"a", "b"}, []int{0, 0}},
	{"capped", "0123456789\nok\n", 4, []string{"0123", "ok"}, []int{6, 0}},
	{"longer than the buffer", strings.Repeat("y", 10000) + "\nz\n", 100, []string{strings.Repeat("y", 100), "z"}, []int{9900, 0}},
	{"unterminated", "tail", 8, []string{"tail"}, []int{0}},
	{"empty line", "\n", 8, []string{""}, []int{0}},
}

func readAllCapped(in string, limit int) (lines []string, dropped []int) {
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	for {
		b, d, err := readCappedLine(br, limit)
		if err == nil || len(b) > 0 || d > 0 {
			lines, dropped = append(lines, string(b)), append(dropped, d)
		}
		if err != nil {
			return
		}
	}
}

func TestReadCappedLine(t *testing.T) {
	for _, tc := range cappedLineCases {
		t.Run(tc.name, func(t *testing.T) {
			lines, dropped := readAllCapped(tc.in, tc.limit)
			if strings.Join(lines, "|") != strings.Join(tc.lines, "|") || len(dropped) != len(tc.dropped) {
				t.Fatalf("lines %q dropped %v, want %q %v", lines, dropped, tc.lines, tc.dropped)
			}
			for i := range dropped {
				if dropped[i] != tc.dropped[i] {
					t.Errorf("line %d: dropped %d, want %d", i, dropped[i], tc.dropped[i])
				}
			}
		})
	}
}

func FuzzReadCappedLine(f *testing.F) {
	for _, tc := range cappedLineCases {
		f.Add(tc.in, tc.limit)
	}
	f.Fuzz(func(t *testing.T, in string, limit int) {
		limit = limit%64 + 64
		if limit < 1 {
			limit = 1
		}
		br := bufio.NewReaderSize(strings.NewReader(in), 16)
		total := 0
		for {
			b, d, err := readCappedLine(br, limit)
			if len(b) > limit {
				t.Fatalf("a line of %d bytes, limit %d", len(b), limit)
			}
			total += len(b) + d
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
				break
			}
		}
		if total > len(in) {
			t.Fatalf("read %d bytes of %d", total, len(in))
		}
	})
}
