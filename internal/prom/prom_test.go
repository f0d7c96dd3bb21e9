package prom

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

func TestTextFormat(t *testing.T) {
	r := NewRegistry()
	c := NewCounterVec("b_total", "Counts b.\nSecond line with a \\ backslash.", "state", "connector")
	g := NewGauge("a_gauge", `A "quoted" gauge.`)
	c0 := NewCounter("c_total", "No labels.")
	empty := NewGaugeVec("d_empty", "Never set.", "x")
	r.MustRegister(c, g, c0, empty)
	c.WithLabelValues("on", "z").Add(2)
	c.WithLabelValues("off", "z").Inc()
	c.WithLabelValues("on", `a"b\c`+"\nd").Add(0.5)
	g.Set(-1.5)
	c0.Add(1e6)
	want := `# HELP a_gauge A "quoted" gauge.
# TYPE a_gauge gauge
a_gauge -1.5
# HELP b_total Counts b.\nSecond line with a \\ backslash.
# TYPE b_total counter
b_total{connector="a\"b\\c\nd",state="on"} 0.5
b_total{connector="z",state="off"} 1
b_total{connector="z",state="on"} 2
# HELP c_total No labels.
# TYPE c_total counter
c_total 1e+06
`
	if got := string(r.AppendText(nil)); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestEscape(t *testing.T) {
	for _, tc := range []struct {
		in          string
		quote       bool
		want        string
		description string
	}{
		{"plain", true, "plain", "nothing to escape"},
		{`a\b`, true, `a\\b`, "backslash"},
		{"a\nb", true, `a\nb`, "line feed"},
		{`say "hi"`, true, `say \"hi\"`, "quotes in a label value"},
		{`say "hi"`, false, `say "hi"`, "quotes stay in help"},
		{"tab\tcr\r", true, "tab\tcr\r", "other controls stay"},
		{`\n`, true, `\\n`, "a literal backslash-n"},
		{"ünï", true, "ünï", "UTF-8"},
	} {
		if got := string(appendEscaped(nil, tc.in, tc.quote)); got != tc.want {
			t.Errorf("%s: %q: got %q, want %q", tc.description, tc.in, got, tc.want)
		}
	}
}

// unescape reverses appendEscaped the way a Prometheus parser reads a
// label value.
func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i++; i == len(s) {
			return "", fmt.Errorf("trailing backslash")
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case '"':
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("bad escape \\%c", s[i])
		}
	}
	return b.String(), nil
}

// FuzzLabelValue: any label value is written on one line, in quotes that
// end where the value does, and reads back as itself (bad UTF-8 replaced).
func FuzzLabelValue(f *testing.F) {
	for _, s := range []string{"", "a", `"`, `\`, "\n", `\"`, "a\"}\n b 1", "\xff\xfe", "}", "ü", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		r := NewRegistry()
		c := NewCounterVec("x_total", v, "l")
		r.MustRegister(c)
		c.WithLabelValues(v).Inc()
		out := string(r.AppendText(nil))
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 3 {
			t.Fatalf("%d lines, want 3: %q", len(lines), out)
		}
		help, ok := strings.CutPrefix(lines[0], "# HELP x_total ")
		if !ok {
			t.Fatalf("help line %q", lines[0])
		}
		if got, err := unescape(help); err != nil || got != v {
			t.Fatalf("help reads back as %q (%v), want %q", got, err, v)
		}
		sample, ok := strings.CutPrefix(lines[2], `x_total{l="`)
		if !ok || !strings.HasSuffix(sample, `"} 1`) {
			t.Fatalf("sample line %q", lines[2])
		}
		quoted := strings.TrimSuffix(sample, `"} 1`)
		// The value's closing quote is the first one not escaped.
		for i := 0; i < len(quoted); i++ {
			if quoted[i] == '\\' {
				i++
			} else if quoted[i] == '"' {
				t.Fatalf("unescaped quote in %q", quoted)
			}
		}
		got, err := unescape(quoted)
		if err != nil {
			t.Fatal(err)
		}
		want := strings.ToValidUTF8(v, "\uFFFD")
		if got != want || !utf8.ValidString(got) {
			t.Fatalf("label value reads back as %q, want %q", got, want)
		}
	})
}

func TestCounterAdds(t *testing.T) {
	c := NewCounter("n_total", "n")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				c.Inc()
				c.Add(2)
				c.Add(0.25)
			}
		})
	}
	wg.Wait()
	if v := c.Value(); v != 8*1000*3.25 {
		t.Errorf("value %v, want %v", v, 8*1000*3.25)
	}
	defer func() {
		if recover() == nil {
			t.Error("a negative Add did not panic")
		}
	}()
	c.Add(-1)
}

func TestGauge(t *testing.T) {
	g := NewGauge("g", "g")
	g.Set(3)
	g.Inc()
	g.Dec()
	g.Dec()
	g.Add(0.5)
	if v := g.Value(); v != 2.5 {
		t.Errorf("value %v, want 2.5", v)
	}
	g.Set(math.Inf(1))
	if got := string(g.appendSamples(nil)); got != "g +Inf\n" {
		t.Errorf("got %q", got)
	}
	g.Set(math.NaN())
	if got := string(g.appendSamples(nil)); got != "g NaN\n" {
		t.Errorf("got %q", got)
	}
}

func TestVecChildrenAndDelete(t *testing.T) {
	v := NewGaugeVec("s", "s", "connector", "device")
	a := v.WithLabelValues("c1", "d1")
	if v.WithLabelValues("c1", "d1") != a {
		t.Error("the same label values gave another child")
	}
	// Values that would join to the same string stay apart.
	if v.WithLabelValues("c1d", "1") == v.WithLabelValues("c1", "d1") {
		t.Error("label values joined ambiguously")
	}
	v.WithLabelValues("c2", "d1").Set(1)
	if n := v.DeletePartialMatch(map[string]string{"connector": "c1"}) + v.DeletePartialMatch(map[string]string{"device": "1"}); n != 2 {
		t.Errorf("deleted %d, want 2", n)
	}
	if got := string(v.appendSamples(nil)); got != "s{connector=\"c2\",device=\"d1\"} 1\n" {
		t.Errorf("after delete: %q", got)
	}
	if n := v.DeletePartialMatch(map[string]string{"nolabel": "x"}); n != 0 {
		t.Errorf("an unknown label deleted %d", n)
	}
	v.Reset()
	if got := v.appendSamples(nil); len(got) != 0 {
		t.Errorf("after reset: %q", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("a wrong number of label values did not panic")
		}
	}()
	v.WithLabelValues("only one")
}

// TestBound: past its bound a family serves no new series, and the
// series past it still count somewhere (no panic, no growth).
func TestBound(t *testing.T) {
	v := NewCounterVec("b_total", "b", "device").Bound(3)
	for i := range 100 {
		v.WithLabelValues(fmt.Sprint("dev", i)).Inc()
	}
	if n := len(v.v.children); n != 3 {
		t.Errorf("%d series, want 3", n)
	}
	if got := strings.Count(string(v.appendSamples(nil)), "\n"); got != 3 {
		t.Errorf("%d samples served, want 3", got)
	}
	if v.WithLabelValues("dev0").Value() != 1 {
		t.Error("a series within the bound lost its count")
	}
	if v.v.overflow == nil || v.v.overflow.Value() != 97 {
		t.Error("the series past the bound were not counted apart")
	}
}

func TestRegister(t *testing.T) {
	r := NewRegistry()
	c := NewCounter("x_total", "x")
	if err := r.Register(c); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(c); err != nil {
		t.Errorf("the same collector again: %v", err)
	}
	if err := r.Register(NewCounter("x_total", "other")); err == nil {
		t.Error("another collector under a taken name was accepted")
	}
	if err := r.Register(NewCounterVec("y_total", "y", "l").WithLabelValues("a")); err == nil {
		t.Error("a vector's child was accepted")
	}
	for _, name := range []string{"", "1abc", "a-b", "a b"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("metric name %q accepted", name)
				}
			}()
			NewCounter(name, "")
		}()
	}
}

func TestHandlerAndRuntime(t *testing.T) {
	// A test process this short may not have used one clock tick of CPU
	// yet (process_cpu_seconds_total would rightly read 0): use some first.
	spinUntilTick(t)
	r := NewRegistry()
	RegisterRuntime(r)
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != ContentType {
		t.Errorf("Content-Type %q", ct)
	}
	b, _ := io.ReadAll(resp.Body)
	samples := map[string]float64{}
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimSuffix(line, "\n")
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		name := line[:strings.IndexAny(line, "{ ")]
		samples[name] = v
	}
	st, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	for name, ok := range map[string]func(float64) bool{
		"go_goroutines":                 func(v float64) bool { return v >= 2 },
		"go_threads":                    func(v float64) bool { return v >= 1 },
		"go_info":                       func(v float64) bool { return v == 1 },
		"go_memstats_heap_inuse_bytes":  func(v float64) bool { return v > 64<<10 },
		"go_memstats_sys_bytes":         func(v float64) bool { return v > 1<<20 },
		"go_gc_gogc_percent":            func(v float64) bool { return v != 0 },
		"process_resident_memory_bytes": func(v float64) bool { return v > 1<<20 && v < 1<<34 },
		"process_cpu_seconds_total":     func(v float64) bool { return v > 0 },
		"process_start_time_seconds":    func(v float64) bool { return v > 1.7e9 && v < 4e9 },
		"process_open_fds":              func(v float64) bool { return v >= 3 },
		"process_max_fds":               func(v float64) bool { return v >= 64 },
	} {
		v, have := samples[name]
		if !have || !ok(v) {
			t.Errorf("%s: %v (present %v); /proc/self/stat %q", name, v, have, st)
		}
	}
}

// spinUntilTick burns CPU until /proc/self/stat counts at least one tick
// of it, so a CPU figure of the process must be above zero.
func spinUntilTick(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for time.Now().Before(deadline) {
		for i := range 1_000_000 {
			x += i
		}
		b, err := os.ReadFile("/proc/self/stat")
		if err != nil {
			t.Fatal(err)
		}
		if st, ok := parseStat(b); ok && st.utime+st.stime > 0 {
			return
		}
	}
	t.Fatalf("no CPU tick counted in 10 s of spinning (%d)", x)
}

func TestParseStat(t *testing.T) {
	line := "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 125 0 0 20 0 9 0 4242 123456789 3000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
	st, ok := parseStat([]byte(line))
	if !ok {
		t.Fatal("did not parse")
	}
	if want := (procStat{utime: 250, stime: 125, starttime: 4242, vsize: 123456789, rss: 3000}); st != want {
		t.Errorf("got %+v, want %+v", st, want)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 x 1 0 0 20 0 9 0 1 1 1"} {
		if _, ok := parseStat([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}
