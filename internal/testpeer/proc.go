package testpeer

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ProcStat is what Linux's /proc says about one process: the CPU time it
// used so far (user and system) and its resident memory now.
type ProcStat struct {
	CPU time.Duration
	// RSS is the resident set in bytes: what the process would need on a
	// device of its own. Pages it shares with other copies of the same
	// program count in each copy.
	RSS int64
}

// clockTick is the unit of /proc/PID/stat's times (USER_HZ, 100 on every
// Linux architecture).
const clockTick = 10 * time.Millisecond

// ReadProc reads /proc/PID/stat and /proc/PID/status.
func ReadProc(pid int) (ProcStat, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcStat{}, fmt.Errorf("process %d: %w", pid, err)
	}
	f, err := statFields(stat)
	if err != nil {
		return ProcStat{}, fmt.Errorf("process %d: %w", pid, err)
	}
	// After the command's ")": state ppid ... utime (14th field of the
	// whole line, 12th here) stime (13th).
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return ProcStat{}, fmt.Errorf("process %d: /proc stat times %q %q", pid, f[11], f[12])
	}
	st := ProcStat{CPU: time.Duration(utime+stime) * clockTick}
	kb, err := StatusKB(pid, "VmRSS")
	if err != nil {
		return ProcStat{}, err
	}
	st.RSS = int64(kb) << 10
	return st, nil
}

// StatusKB is a kB field of /proc/PID/status: VmRSS (resident now), VmHWM
// (the peak since the start or ResetPeakRSS), RssAnon (the part that is
// the program's own memory, not pages of its binary).
func StatusKB(pid int, field string) (float64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	for l := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				return 0, fmt.Errorf("process %d: %s %q", pid, field, v)
			}
			return kb, nil
		}
	}
	return 0, fmt.Errorf("process %d: no %s in /proc/%d/status", pid, field, pid)
}

// statFields are the fields of a /proc/PID/stat line after the command
// (which may hold spaces and parentheses itself).
func statFields(stat []byte) ([]string, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc stat without a command: %q", stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return nil, fmt.Errorf("/proc stat with %d fields", len(f))
	}
	return f, nil
}

// Children maps each parent process id to its children's, from every
// process in /proc at the moment of the call.
func Children() map[int][]int {
	out := map[int][]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		stat, err := os.ReadFile(d)
		if err != nil {
			continue // ended meanwhile
		}
		f, err := statFields(stat)
		if err != nil {
			continue
		}
		pid, err1 := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		ppid, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil {
			out[ppid] = append(out[ppid], pid)
		}
	}
	return out
}

// Pid is the broker's process id (0 when it is not running).
func (m *Mosquitto) Pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Pid is nginx's process id (0 when it is not running). The test's nginx
// runs without a master process: this one process serves every request.
func (n *Nginx) Pid() int {
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// InotifyFDs counts this process's open inotify descriptors, for tests
// that a watch is opened once and closed again.
func InotifyFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.Contains(l, "inotify") {
			n++
		}
	}
	return n
}
