package prom

import (
	"bytes"
	"os"
	"runtime"
	rm "runtime/metrics"
	"strconv"
	"sync"
	"syscall"
)

// RegisterRuntime serves the Go runtime's and the process's figures
// under the names Prometheus's Go client uses, read at each scrape from
// runtime/metrics and /proc/self (Linux; elsewhere the process figures are
// left out):
//
//	go_goroutines, go_threads, go_info{version},
//	go_memstats_heap_alloc_bytes, go_memstats_heap_inuse_bytes,
//	go_memstats_sys_bytes, go_memstats_next_gc_bytes,
//	go_gc_cycles_total, go_gc_gogc_percent, go_gc_gomemlimit_bytes,
//	go_sched_gomaxprocs_threads,
//	process_cpu_seconds_total, process_resident_memory_bytes,
//	process_virtual_memory_bytes, process_start_time_seconds,
//	process_open_fds, process_max_fds.
func RegisterRuntime(r *Registry) {
	info := NewGaugeVec("go_info", "Information about the Go environment.", "version")
	info.WithLabelValues(runtime.Version()).Set(1)
	r.MustRegister(info,
		runtimeFunc("go_goroutines", "Number of goroutines that currently exist.", TypeGauge, "/sched/goroutines:goroutines"),
		runtimeFunc("go_threads", "Number of OS threads the Go runtime has (live or idle).", TypeGauge, "/sched/threads/total:threads"),
		runtimeFunc("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and still in use (reachable or not yet swept).", TypeGauge, "/memory/classes/heap/objects:bytes"),
		runtimeFunc("go_memstats_heap_inuse_bytes", "Number of heap bytes in spans in use.", TypeGauge, "/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes"),
		runtimeFunc("go_memstats_sys_bytes", "Number of bytes obtained from the system.", TypeGauge, "/memory/classes/total:bytes"),
		runtimeFunc("go_memstats_next_gc_bytes", "Heap size the next garbage collection aims at.", TypeGauge, "/gc/heap/goal:bytes"),
		runtimeFunc("go_gc_cycles_total", "Completed garbage collection cycles.", TypeCounter, "/gc/cycles/total:gc-cycles"),
		runtimeFunc("go_gc_gogc_percent", "Heap size target percentage (GOGC).", TypeGauge, "/gc/gogc:percent"),
		runtimeFunc("go_gc_gomemlimit_bytes", "Go runtime memory limit (GOMEMLIMIT).", TypeGauge, "/gc/gomemlimit:bytes"),
		runtimeFunc("go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting.", TypeGauge, "/sched/gomaxprocs:threads"),
		newFunc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", TypeCounter, func() (float64, bool) {
			st, ok := readStat()
			return float64(st.utime+st.stime) / userHZ, ok
		}),
		newFunc("process_resident_memory_bytes", "Resident memory size in bytes.", TypeGauge, func() (float64, bool) {
			st, ok := readStat()
			return float64(st.rss) * float64(os.Getpagesize()), ok
		}),
		newFunc("process_virtual_memory_bytes", "Virtual memory size in bytes.", TypeGauge, func() (float64, bool) {
			st, ok := readStat()
			return float64(st.vsize), ok
		}),
		newFunc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", TypeGauge, startTime),
		newFunc("process_open_fds", "Number of open file descriptors.", TypeGauge, func() (float64, bool) {
			es, err := os.ReadDir("/proc/self/fd")
			return float64(len(es)), err == nil
		}),
		newFunc("process_max_fds", "Maximum number of open file descriptors.", TypeGauge, func() (float64, bool) {
			var l syscall.Rlimit
			if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
				return 0, false
			}
			return float64(l.Cur), true
		}),
	)
}

// runtimeFunc is a family whose value is the sum of runtime/metrics
// samples, read at each scrape.
func runtimeFunc(name, help string, typ Type, keys ...string) *Func {
	return newFunc(name, help, typ, func() (float64, bool) {
		s := make([]rm.Sample, len(keys))
		for i, k := range keys {
			s[i].Name = k
		}
		rm.Read(s)
		var sum float64
		for _, x := range s {
			switch x.Value.Kind() {
			case rm.KindUint64:
				sum += float64(x.Value.Uint64())
			case rm.KindFloat64:
				sum += x.Value.Float64()
			default: // not in this Go version
				return 0, false
			}
		}
		return sum, true
	})
}

// userHZ is the unit of the times in /proc/self/stat (USER_HZ): 100 on
// every Linux the gateway runs on.
const userHZ = 100

type procStat struct {
	utime, stime, starttime, vsize, rss uint64
}

// readStat reads /proc/self/stat.
func readStat() (procStat, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return procStat{}, false
	}
	return parseStat(b)
}

// parseStat parses a /proc/pid/stat line. The command name, in
// parentheses, may hold spaces and parentheses: the fields start after
// the last ')'.
func parseStat(b []byte) (procStat, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	// Fields from 3 (state) on; utime is field 14, stime 15, starttime 22,
	// vsize 23, rss 24.
	f := bytes.Fields(b[i+1:])
	if len(f) < 22 {
		return procStat{}, false
	}
	var st procStat
	for _, x := range []struct {
		field int
		to    *uint64
	}{{14, &st.utime}, {15, &st.stime}, {22, &st.starttime}, {23, &st.vsize}, {24, &st.rss}} {
		v, err := strconv.ParseUint(string(f[x.field-3]), 10, 64)
		if err != nil {
			return procStat{}, false
		}
		*x.to = v
	}
	return st, true
}

// startTime is when the process started: the boot time (/proc/stat
// btime) plus its start in clock ticks since boot. It does not change:
// read once.
var startTime = sync.OnceValues(func() (float64, bool) {
	st, ok := readStat()
	if !ok {
		return 0, false
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			bt, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				return 0, false
			}
			return float64(bt) + float64(st.starttime)/userHZ, true
		}
	}
	return 0, false
})
