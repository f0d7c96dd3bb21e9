package ota

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
)

// fakeDevice stands in for gokrazy's update API and boot process. This is
// the one place in osgate where a fake is right (the project's rule: real
// peers, and a fake only where no real peer can run in a test): the agent's
// state machine must be driven through a power cut at every step, which a
// unit test cannot do to a real device. The VM test in image/ runs the
// agent against gokrazy's real API.
//
// It models gokrazy as checked on the appliance images: root is A/B (partitions 2 and 3), boot
// is not; PUT /update/root writes the partition that is inactive per the
// kernel command line's root= (during an unconfirmed try boot that is the
// running one); /update/switch points root= at that partition; at boot,
// init swaps gokrazy.try_boot_inactive=1 for gokrazy.switch_on_boot=1 in
// the boot partition and runs the inactive root once.
type fakeDevice struct {
	mu       sync.Mutex
	boot     []byte
	roots    [4][]byte // 2 and 3
	mbr      []byte
	cmdline  string // what the running kernel booted with
	running  int
	bootID   int
	hook     func(step string)
	features string // what /update/features answers
	putErr   error  // what every Put fails with, if set
	puts     []string
	// wroteRunning is set when a root write hit the running partition:
	// the agent started a second update during an unconfirmed try.
	wroteRunning bool
}

func newFakeDevice() *fakeDevice {
	d := &fakeDevice{boot: bootImage(1), mbr: mbrImage(1), hook: func(string) {}, features: "partuuid,updatehash,"}
	d.roots[2] = rootImage("v1.0.0")
	if err := d.powerOn(); err != nil {
		panic(err)
	}
	return d
}

func (d *fakeDevice) step(s string) {
	d.mu.Lock()
	h := d.hook
	d.mu.Unlock()
	h(s)
}

// powerOn boots the device the way gokrazy does.
func (d *fakeDevice) powerOn() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.bootID++
	ex := findCmdlines(d.boot)
	if len(ex) == 0 {
		return fmt.Errorf("boot partition has no kernel command line")
	}
	line := string(d.boot[ex[0].Offset : ex[0].Offset+ex[0].Length])
	root, err := partitionOf(line)
	if err != nil {
		return err
	}
	d.cmdline = strings.TrimSpace(line)
	d.running = root
	if strings.Contains(line, tryFlag) {
		d.editCmdlines(func(s string) string { return strings.Replace(s, tryFlag, afterFlag+"   ", 1) })
		d.running = 5 - root
	}
	if d.versionOf(d.running) == "" {
		return fmt.Errorf("root partition %d holds no system", d.running)
	}
	return nil
}

// partitionOf reads the root partition from root= in either of gokrazy's
// forms: PARTUUID=<disk>-02 (MBR) or PARTUUID=<uuid>/PARTNROFF=1 (GPT, an
// offset from the boot partition).
func partitionOf(cmdline string) (int, error) {
	r, err := rootArg(cmdline)
	if err != nil {
		return 0, err
	}
	for p, suffixes := range map[int][]string{2: {"-02", "/PARTNROFF=1"}, 3: {"-03", "/PARTNROFF=2"}} {
		for _, s := range suffixes {
			if strings.HasSuffix(r, s) {
				return p, nil
			}
		}
	}
	return 0, fmt.Errorf("root=%s is neither partition 2 nor 3", r)
}

// rootOf is root= for partition p in the form of root.
func rootOf(root string, p int) string {
	if i := strings.LastIndex(root, "/PARTNROFF="); i >= 0 {
		return fmt.Sprintf("%s/PARTNROFF=%d", root[:i], p-1)
	}
	return fmt.Sprintf("%s-0%d", root[:len(root)-3], p)
}

// editCmdlines rewrites every command line in the boot partition in place.
func (d *fakeDevice) editCmdlines(edit func(string) string) {
	for _, e := range findCmdlines(d.boot) {
		old := string(d.boot[e.Offset : e.Offset+e.Length])
		n := edit(old)
		if len(n) != len(old) {
			panic("fake: command line length changed")
		}
		copy(d.boot[e.Offset:], n)
	}
}

func (d *fakeDevice) versionOf(part int) string {
	b := d.roots[part]
	v, ok := strings.CutPrefix(string(b[:min(len(b), 40)]), "osgate-root ")
	if !ok {
		return ""
	}
	v, _, ok = strings.Cut(v, "\n")
	if !ok {
		return ""
	}
	return v
}

func (d *fakeDevice) version() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.versionOf(d.running)
}

// bootRoot is the partition the boot partition's root= names.
func (d *fakeDevice) bootRoot() (int, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ex := findCmdlines(d.boot)
	line := string(d.boot[ex[0].Offset : ex[0].Offset+ex[0].Length])
	p, _ := partitionOf(line)
	return p, line
}

func (d *fakeDevice) Put(ctx context.Context, part string, r io.Reader) (string, error) {
	d.step("put " + part)
	d.mu.Lock()
	perr := d.putErr
	d.mu.Unlock()
	if perr != nil {
		return "", perr
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	d.puts = append(d.puts, part)
	var dst *[]byte
	switch part {
	case Root:
		cur, err := partitionOf(d.cmdline)
		if err != nil {
			d.mu.Unlock()
			return "", err
		}
		if 5-cur == d.running {
			d.wroteRunning = true
		}
		dst = &d.roots[5-cur]
	case Boot:
		dst = &d.boot
	case MBR:
		dst = &d.mbr
	default:
		d.mu.Unlock()
		return "", fmt.Errorf("no such part %q", part)
	}
	img := make([]byte, max(len(*dst), len(data)))
	copy(img, *dst)
	*dst = img
	half := len(data) / 2
	copy(img, data[:half])
	d.mu.Unlock()
	d.step("put " + part + " half") // a power cut here tears the partition
	d.mu.Lock()
	copy(img[half:], data[half:])
	*dst = img[:len(data)]
	d.mu.Unlock()
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

func (d *fakeDevice) Switch(ctx context.Context) error {
	d.step("switch")
	d.mu.Lock()
	cur, err := partitionOf(d.cmdline)
	if err != nil {
		d.mu.Unlock()
		return err
	}
	root, _ := rootArg(d.cmdline)
	d.editCmdlines(func(s string) string {
		return strings.Replace(s, "root="+root+" ", "root="+rootOf(root, 5-cur)+" ", 1)
	})
	d.mu.Unlock()
	d.step("switch done")
	return nil
}

// Reboot stops the agent as gokrazy would (the test harness ends it at the
// "down" step) and leaves powering on to the test.
func (d *fakeDevice) Reboot(ctx context.Context) error {
	d.step("reboot")
	d.step("down")
	return nil
}

func (d *fakeDevice) Features(context.Context) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.features, nil
}

func (d *fakeDevice) Cmdline() (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmdline, nil
}

func (d *fakeDevice) BootID() (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strconv.Itoa(d.bootID), nil
}

func (d *fakeDevice) putCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.puts)
}

func (d *fakeDevice) bootBytes() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return bytes.Clone(d.boot)
}
