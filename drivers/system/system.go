// Package system is the built-in connector that reads the gateway itself:
// CPU load and use, memory, disk use of the state dir, uptime and the SoC
// temperature, from /proc and /sys. It is what the embedded default config
// exports, so a fresh install shows data without any field device.
package system

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/strict"
)

func init() { core.Register("system", New) }

// Channel names, units and what each reads.
var channels = []struct {
	name, unit string
	read       func(c *connector, d *devState, now time.Time) (any, error)
}{
	{"cpu_load_1m", "", readLoad},
	{"cpu_usage", "%", readCPU},
	{"memory_used", "%", readMemUsed},
	{"memory_available", "B", readMemAvail},
	{"disk_used", "%", readDiskUsed},
	{"disk_free", "B", readDiskFree},
	{"uptime", "s", readUptime},
	{"soc_temperature", "°C", readTemp},
}

// deviceSettings are the device keys this driver knows.
type deviceSettings struct {
	// Path whose file system disk_used and disk_free describe (default:
	// the state dir).
	Path string `json:"path"`
}

type connector struct {
	root     string // "/" in production; tests may point /proc and /sys elsewhere
	stateDir string
	devices  map[string]*devState
}

type devState struct {
	path     string
	explicit bool  // channels named in the config (else: all this machine has)
	channels []int // indexes into channels
	mu       sync.Mutex
	lastIdle uint64
	lastAll  uint64
}

// New builds the system connector.
func New(cfg core.ConnectorConfig) (core.Connector, error) {
	var es strict.Errors
	var none struct{}
	es.Merge("settings", decode(cfg.Settings, &none))
	c := &connector{root: "/", stateDir: cfg.StateDir, devices: map[string]*devState{}}
	for i, d := range cfg.Devices {
		dp := strict.Index("devices", i)
		var ds deviceSettings
		es.Merge(dp, decode(d.Settings, &ds))
		st := &devState{path: ds.Path}
		if st.path == "" {
			st.path = cfg.StateDir
		}
		if st.path == "" {
			st.path = "/"
		}
		st.explicit = len(d.Channels) > 0
		if len(d.Channels) == 0 {
			for k := range channels {
				st.channels = append(st.channels, k)
			}
		}
		for j, ch := range d.Channels {
			cp := strict.Join(strict.Index(dp+".channels", j), "name")
			k := channelIndex(ch.Name)
			if k < 0 {
				es.Add(cp, "unknown system channel %q%s (known: %s)", ch.Name, strict.DidYouMean(ch.Name, strings.Split(channelNames(), ", ")), channelNames())
				continue
			}
			if ch.Writable {
				es.Add(strict.Join(strict.Index(dp+".channels", j), "writable"), "system channels are read-only")
			}
			es.Merge(strict.Index(dp+".channels", j), decode(ch.Settings, &none))
			st.channels = append(st.channels, k)
		}
		c.devices[d.Name] = st
	}
	if err := es.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// decode is strict.Decode with an absent object meaning "{}".
func decode(raw []byte, v any) error {
	if len(raw) == 0 {
		return nil
	}
	return strict.Decode(raw, v)
}

func channelIndex(name string) int {
	for k, ch := range channels {
		if ch.name == name {
			return k
		}
	}
	return -1
}

func channelNames() string {
	names := make([]string, len(channels))
	for k, ch := range channels {
		names[k] = ch.name
	}
	return strings.Join(names, ", ")
}

// Close does nothing: the connector holds no transport.
func (c *connector) Close() error { return nil }

// Poll reads every configured channel; a channel the machine does not have
// (no thermal zone on a VM) is a Bad reading saying so.
func (c *connector) Poll(ctx context.Context, dev *core.Device) ([]core.Reading, error) {
	d := c.devices[dev.Name]
	if d == nil {
		return nil, fmt.Errorf("system: unknown device %q", dev.Name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	out := make([]core.Reading, 0, len(d.channels))
	for _, k := range d.channels {
		ch := channels[k]
		v, err := ch.read(c, d, now)
		if errors.Is(err, errAbsent) && !d.explicit {
			continue // "where present": not configured, and this machine has none
		}
		if err != nil {
			out = append(out, core.BadReading(dev.Name, ch.name, now, err))
			continue
		}
		out = append(out, core.Reading{Device: dev.Name, Channel: ch.name, Value: v, Unit: ch.unit, Time: now, Quality: core.Good})
	}
	return out, ctx.Err()
}

func (c *connector) file(rel string) ([]byte, error) {
	return os.ReadFile(filepath.Join(c.root, rel))
}

func readLoad(c *connector, _ *devState, _ time.Time) (any, error) {
	b, err := c.file("proc/loadavg")
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return nil, fmt.Errorf("system: /proc/loadavg: unexpected %q", b)
	}
	return strconv.ParseFloat(f[0], 64)
}

// readCPU is the share of non-idle CPU time since the previous poll (since
// boot on the first).
func readCPU(c *connector, d *devState, _ time.Time) (any, error) {
	b, err := c.file("proc/stat")
	if err != nil {
		return nil, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return nil, fmt.Errorf("system: /proc/stat: unexpected first line %q", line)
	}
	var all, idle uint64
	for i, s := range f[1:] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("system: /proc/stat: %w", err)
		}
		all += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	dAll, dIdle := all-d.lastAll, idle-d.lastIdle
	d.lastAll, d.lastIdle = all, idle
	if dAll == 0 {
		return 0.0, nil
	}
	return round2(100 * float64(dAll-dIdle) / float64(dAll)), nil
}

func meminfo(c *connector) (total, avail uint64, err error) {
	b, err := c.file("proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "MemTotal:":
			total = n * 1024
		case "MemAvailable:":
			avail = n * 1024
		}
	}
	if total == 0 {
		return 0, 0, fmt.Errorf("system: /proc/meminfo has no MemTotal")
	}
	return total, avail, nil
}

func readMemUsed(c *connector, _ *devState, _ time.Time) (any, error) {
	total, avail, err := meminfo(c)
	if err != nil {
		return nil, err
	}
	return round2(100 * float64(total-avail) / float64(total)), nil
}

func readMemAvail(c *connector, _ *devState, _ time.Time) (any, error) {
	_, avail, err := meminfo(c)
	if err != nil {
		return nil, err
	}
	return int64(avail), nil
}

func statfs(path string) (size, free uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, fmt.Errorf("system: disk use of %s: %w", path, err)
	}
	return st.Blocks * uint64(st.Bsize), st.Bavail * uint64(st.Bsize), nil
}

func readDiskUsed(_ *connector, d *devState, _ time.Time) (any, error) {
	size, free, err := statfs(existing(d.path))
	if err != nil {
		return nil, err
	}
	if size == 0 {
		return 0.0, nil
	}
	return round2(100 * float64(size-free) / float64(size)), nil
}

func readDiskFree(_ *connector, d *devState, _ time.Time) (any, error) {
	_, free, err := statfs(existing(d.path))
	if err != nil {
		return nil, err
	}
	return int64(free), nil
}

// existing walks up from p to the nearest directory that exists, so a state
// dir that is yet to be created still reports its file system.
func existing(p string) string {
	for {
		if _, err := os.Stat(p); err == nil || p == "/" || p == "." {
			return p
		}
		p = filepath.Dir(p)
	}
}

func readUptime(c *connector, _ *devState, _ time.Time) (any, error) {
	b, err := c.file("proc/uptime")
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return nil, fmt.Errorf("system: /proc/uptime: unexpected %q", b)
	}
	return strconv.ParseFloat(f[0], 64)
}

// readTemp reads the first thermal zone whose type names the SoC/CPU, or the
// first zone at all (the Pi's is "cpu-thermal").
func readTemp(c *connector, _ *devState, _ time.Time) (any, error) {
	zones, _ := filepath.Glob(filepath.Join(c.root, "sys/class/thermal/thermal_zone*"))
	if len(zones) == 0 {
		return nil, errAbsent
	}
	pick := zones[0]
	for _, z := range zones {
		t, _ := os.ReadFile(filepath.Join(z, "type"))
		s := strings.ToLower(string(t))
		if strings.Contains(s, "cpu") || strings.Contains(s, "soc") || strings.Contains(s, "x86_pkg") {
			pick = z
			break
		}
	}
	b, err := os.ReadFile(filepath.Join(pick, "temp"))
	if err != nil {
		return nil, fmt.Errorf("system: SoC temperature: %w", err)
	}
	milli, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("system: SoC temperature: %w", err)
	}
	return float64(milli) / 1000, nil
}

// errAbsent is a sensor this machine does not have.
var errAbsent = errors.New("system: no thermal zone in /sys/class/thermal (not available on this machine)")

func round2(f float64) float64 {
	return float64(int64(f*100+0.5)) / 100
}
