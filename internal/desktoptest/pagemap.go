package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// groupMB is the memory a group of processes uses as if nothing else ran:
// the number of distinct physical pages the group maps, in MB (10^6 bytes).
// With no process outside the group sharing its pages, it equals the sum of
// the group's Pss; unlike Pss, it does not shrink when other processes on the
// machine (another WebKit app, a second test) map the same library pages, so
// runs on a busy machine compare. It needs root (/proc/PID/pagemap shows page
// frame numbers only to CAP_SYS_ADMIN); ok is false otherwise.
func groupMB(pids []int) (mb float64, ok bool) {
	pages := map[uint64]struct{}{}
	for _, pid := range pids {
		if err := addPages(pid, pages); err != nil {
			return 0, false
		}
	}
	return float64(len(pages)) * float64(os.Getpagesize()) / 1e6, true
}

// addPages adds the frame of every resident page of pid to pages.
func addPages(pid int, pages map[uint64]struct{}) error {
	ranges, err := residentRanges(pid)
	if err != nil {
		return err
	}
	pm, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", pid))
	if err != nil {
		return err
	}
	defer pm.Close()
	ps := uint64(os.Getpagesize())
	const chunk = 1 << 16 // entries read at once
	buf := make([]byte, 8*chunk)
	sawFrame := false
	for _, r := range ranges {
		for first := r[0] / ps; first < r[1]/ps; first += chunk {
			n := min(uint64(chunk), r[1]/ps-first)
			b := buf[:8*n]
			if _, err := pm.ReadAt(b, int64(first*8)); err != nil && err != io.EOF {
				break // the process changed its mappings: what was read counts
			}
			for i := uint64(0); i < n; i++ {
				e := binary.LittleEndian.Uint64(b[8*i:])
				if e>>63 == 0 { // not present
					continue
				}
				pfn := e & (1<<55 - 1)
				if pfn == 0 {
					continue
				}
				sawFrame = true
				pages[pfn] = struct{}{}
			}
		}
	}
	if len(ranges) > 0 && !sawFrame {
		return fmt.Errorf("pagemap of %d shows no page frames (not root?)", pid)
	}
	return nil
}

// residentRanges are pid's mappings with resident pages, from smaps.
func residentRanges(pid int) ([][2]uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][2]uint64
	var cur [2]uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "Rss:"); ok {
			if kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64); kb > 0 && cur[1] > cur[0] {
				out = append(out, cur)
			}
			continue
		}
		field, _, _ := strings.Cut(line, " ")
		lo, hi, ok := strings.Cut(field, "-")
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil {
			cur = [2]uint64{a, b}
		}
	}
	return out, sc.Err()
}
