package exepages

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// One block of smaps, with the lines Release reads and a few it skips.
func block(rng, perms, path string, rssKB, anonKB int) string {
	s := rng + " " + perms + " 00000000 fe:00 10175104"
	if path != "" {
		s += "                           " + path
	}
	return s + "\nSize:               100 kB\nKernelPageSize:        4 kB\n" +
		"Rss:                " + strconv.Itoa(rssKB) + " kB\nPss:                " + strconv.Itoa(rssKB) + " kB\n" +
		"Anonymous:          " + strconv.Itoa(anonKB) + " kB\nTHPeligible:           0\nVmFlags: rd ex mr mw me\n"
}

func TestReadOnlyMappings(t *testing.T) {
	const exe = "/usr/local/bin/osgate"
	smaps := block("00400000-00acc000", "r-xp", exe, 6192, 0) + // text
		block("00acc000-01233000", "r--p", exe, 6428, 0) + // rodata
		block("01233000-012a0000", "rw-p", exe, 384, 120) + // data: written to
		block("012a0000-032ed000", "rw-p", "", 156, 156) + // bss
		block("01300000-01301000", "r--p", exe, 4, 4) + // relocated by a loader: has its own page
		block("7f6be3b80000-7f6be3e00000", "rw-p", "", 584, 584) +
		block("7ffd1a5f0000-7ffd1a5f2000", "r-xp", "[vdso]", 8, 0) +
		block("7f00000000-7f00001000", "r--p", "/usr/local/bin/osgate-old", 4, 0) +
		block("7f10000000-7f10001000", "r--s", exe, 4, 0) // shared: not ours to drop
	got, total, err := readOnlyMappings(strings.NewReader(smaps), exe)
	if err != nil {
		t.Fatal(err)
	}
	if total != 9 {
		t.Fatalf("%d mappings counted, want all 9", total)
	}
	// Code and read-only data are adjacent: one span to release.
	want := []span{{0x400000, 0x1233000}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("mapping %d: got %+v, want %+v", i, got[i], want[i])
		}
	}

	// Mappings split into pages are joined again, but not across a page
	// of the process's own, nor across a gap.
	split := block("1000-2000", "r-xp", exe, 4, 0) + block("2000-3000", "r-xp", exe, 0, 0) +
		block("3000-4000", "r-xp", exe, 4, 4) + block("4000-5000", "r--p", exe, 4, 0) +
		block("5000-6000", "r--p", exe, 4, 0) + block("7000-8000", "r--p", exe, 4, 0)
	got, _, err = readOnlyMappings(strings.NewReader(split), exe)
	if err != nil {
		t.Fatal(err)
	}
	want = []span{{0x1000, 0x3000}, {0x4000, 0x6000}, {0x7000, 0x8000}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("split mappings: got %+v, want %+v", got, want)
	}

	// A path with spaces, and the kernel's mark for a replaced file, which
	// /proc/self/exe carries too.
	const odd = "/opt/my gate/osgate (deleted)"
	got, _, err = readOnlyMappings(strings.NewReader(block("1000-3000", "r-xp", odd, 8, 0)), odd)
	if err != nil || len(got) != 1 || got[0] != (span{0x1000, 0x3000}) {
		t.Fatalf("path with spaces: %+v %v", got, err)
	}
}

func TestReadOnlyMappingsRefusesWhatItCannotJudge(t *testing.T) {
	const exe = "/osgate"
	for name, smaps := range map[string]string{
		"no Anonymous line":           "1000-2000 r-xp 00000000 fe:00 1 /osgate\nRss: 4 kB\n",
		"Anonymous not a number":      "1000-2000 r-xp 00000000 fe:00 1 /osgate\nRss: 4 kB\nAnonymous: -- kB\n",
		"the second has no Anonymous": block("1000-2000", "r-xp", exe, 4, 0) + "2000-3000 r--p 00000000 fe:00 1 /osgate\nRss: 4 kB\n",
	} {
		if got, _, err := readOnlyMappings(strings.NewReader(smaps), exe); err == nil {
			t.Errorf("%s: no error, got %+v", name, got)
		}
	}
	// Too many mappings of the file (apart): a bound, not a list
	// without end.
	var b strings.Builder
	for i := range maxMappings + 1 {
		b.WriteString(block(fmt.Sprintf("%x-%x", 0x1000+i*0x2000, 0x2000+i*0x2000), "r--p", exe, 4, 0))
	}
	if _, _, err := readOnlyMappings(strings.NewReader(b.String()), exe); err == nil {
		t.Errorf("%d mappings: no error", maxMappings+1)
	}
}

func FuzzReadOnlyMappings(f *testing.F) {
	const exe = "/osgate"
	f.Add(block("00400000-00acc000", "r-xp", exe, 6192, 0) + block("00acc000-01233000", "r--p", exe, 6428, 0))
	f.Add(block("1000-3000", "rw-p", exe, 8, 8))
	f.Add("1000-2000 r-xp 00000000 fe:00 1 /osgate\nRss: 4 kB\n")
	f.Add("2000-1000 r-xp 0 0 0 /osgate\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, smaps string) {
		got, _, err := readOnlyMappings(strings.NewReader(smaps), exe)
		if err != nil {
			return
		}
		if len(got) > maxMappings {
			t.Fatalf("%d mappings, bound %d", len(got), maxMappings)
		}
		for _, m := range got {
			if m.end <= m.start {
				t.Fatalf("mapping %+v", m)
			}
		}
	})
}

// droppable gives the spans a Release may drop: all but the pages the
// process holds a copy of its own, whose write a drop would lose.
func TestDroppable(t *testing.T) {
	const (
		ps   = 0x1000
		file = pagePresent | pageFile
		own  = pagePresent // present, not the file's
	)
	for name, c := range map[string]struct {
		entries  []uint64
		spans    []span
		resident int
	}{
		"none resident":  {[]uint64{0, 0, 0}, []span{{0x10000, 0x13000}}, 0},
		"all the file's": {[]uint64{file, 0, file}, []span{{0x10000, 0x13000}}, 2},
		"own in the middle": {[]uint64{file, own, 0, file},
			[]span{{0x10000, 0x11000}, {0x12000, 0x14000}}, 3},
		"own first and last": {[]uint64{own, file, own}, []span{{0x11000, 0x12000}}, 3},
		"all own":            {[]uint64{own, own}, nil, 2},
		"own, swapped out":   {[]uint64{file, pageSwapped, 0}, []span{{0x10000, 0x11000}, {0x12000, 0x13000}}, 1},
		"empty":              {nil, nil, 0},
	} {
		spans, resident := droppable(c.entries, 0x10000, ps)
		if fmt.Sprint(spans) != fmt.Sprint(c.spans) || resident != c.resident {
			t.Errorf("%s: spans %x, %d resident; want %x, %d", name, spans, resident, c.spans, c.resident)
		}
	}
}

// The split takes at most half of the mappings the process has left.
func TestSplitFits(t *testing.T) {
	for _, c := range []struct {
		pages, have, limit int
		ok                 bool
	}{
		{3600, 31, 65530, true},
		{3600, 31, 7231, true},  // exactly half of what is left
		{3600, 31, 7230, false}, // a limit set low
		{3600, 70000, 65530, false},
		{0, 10, 10, true},
	} {
		err := splitFits(c.pages, c.have, c.limit)
		if (err == nil) != c.ok {
			t.Errorf("%d pages, %d of %d mappings: %v, want ok %t", c.pages, c.have, c.limit, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "vm.max_map_count") {
			t.Errorf("the error does not name the setting: %v", err)
		}
	}
}
