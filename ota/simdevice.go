//go:build testhook

package ota

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// SimDevice stands in for gokrazy in the fleet simulation (the tests and
// benchmarks of package fleet), where each gateway is a plain osgate
// process on one machine: no gokrazy runs there, so there is no update API
// to write through and no boot to try a root once. It is the fleet-sized
// sibling of the fake device of this package's tests and models the same
// gokrazy (see fake_test.go): A/B roots, a boot partition whose kernel
// command line names the root, the try-once flag swapped at boot, and
// /update/switch pointing root= at the new root. The partitions are files
// in a directory, so the device survives its process; Reboot stops the
// process as gokrazy stops its services, and the next start of the process
// boots (whoever runs the simulation restarts it, as gokrazy would).
//
// A root image is SimRootImage: its first line names the version, an
// optional second line makes that version unhealthy (the bad release of a
// simulated rollout). Only binaries built with the tag testhook have it.
type SimDevice struct {
	dir  string
	stop func() error // stops the process for a reboot (tests replace it)

	mu sync.Mutex
	st simState
}

// simState is the device's state file (device.json): what the running
// kernel booted with, and whether a reboot was asked.
type simState struct {
	BootID  int    `json:"boot_id"`
	Cmdline string `json:"cmdline"`
	Running int    `json:"running"` // 2 or 3
	Reboot  bool   `json:"reboot"`
}

// simCmdline is the kernel command line of the simulated boot image, in
// the MBR form of gokrazy's packer (root partition 2), padded.
const simCmdline = "console=tty1 root=PARTUUID=5a17c0de-02 ro init=/gokrazy/init panic=10 rootwait"

// SimBootImage is the boot partition of a simulated device and of the
// simulation's releases: a padded kernel command line in a sector of its
// own, as findCmdlines expects.
func SimBootImage() []byte {
	b := make([]byte, 4096)
	for i := range b {
		b[i] = 0xa5
	}
	line := simCmdline + strings.Repeat(" ", 64)
	b[1023] = 0
	copy(b[1024:], line)
	b[1024+len(line)] = 0
	return b
}

// SimRootImage is a root partition of the simulation: its first line
// names version; with unhealthy, a gateway booted from it reports itself
// unhealthy with that reason (health.SetTestUnhealthy).
func SimRootImage(version, unhealthy string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "osgate-root %s\n", version)
	if unhealthy != "" {
		fmt.Fprintf(&b, "unhealthy %s\n", unhealthy)
	}
	for b.Len() < 8192 {
		b.WriteString("simulated root file system\n")
	}
	return b.Bytes()
}

// OpenSimDevice opens the simulated device in dir, making it on first use
// with version installed in root partition 2, and boots it when a reboot
// was asked.
func OpenSimDevice(dir, version string) (*SimDevice, error) {
	d := &SimDevice{dir: dir, stop: func() error { return syscall.Kill(os.Getpid(), syscall.SIGTERM) }}
	b, err := os.ReadFile(d.path("device.json"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		for name, data := range map[string][]byte{"boot.img": SimBootImage(), "root2.img": SimRootImage(version, ""), "mbr.img": make([]byte, 512)} {
			if err := writeFile(d.path(name), data); err != nil {
				return nil, err
			}
		}
		d.st.Reboot = true
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(b, &d.st); err != nil {
			return nil, fmt.Errorf("simulated device: %s: %w", d.path("device.json"), err)
		}
	}
	if d.st.Reboot {
		if err := d.powerOn(); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d *SimDevice) path(name string) string { return filepath.Join(d.dir, name) }

func (d *SimDevice) save() error {
	b, _ := json.Marshal(d.st)
	return writeFile(d.path("device.json"), b)
}

// powerOn boots as gokrazy does: the root that root= names, or the other
// one once when the try flag is there (which init then swaps for the
// switch flag, in place).
func (d *SimDevice) powerOn() error {
	boot, err := os.ReadFile(d.path("boot.img"))
	if err != nil {
		return err
	}
	ex := findCmdlines(boot)
	if len(ex) == 0 {
		return errors.New("simulated device: the boot partition has no kernel command line")
	}
	line := string(boot[ex[0].Offset : ex[0].Offset+ex[0].Length])
	root, err := simPartition(line)
	if err != nil {
		return err
	}
	d.st.Cmdline, d.st.Running = strings.TrimSpace(line), root
	if strings.Contains(line, tryFlag) {
		for _, e := range ex {
			old := string(boot[e.Offset : e.Offset+e.Length])
			copy(boot[e.Offset:], strings.Replace(old, tryFlag, afterFlag+strings.Repeat(" ", minPad), 1))
		}
		if err := writeFile(d.path("boot.img"), boot); err != nil {
			return err
		}
		d.st.Running = 5 - root
	}
	if _, _, err := d.rootInfo(d.st.Running); err != nil {
		return fmt.Errorf("simulated device: root partition %d does not boot: %w", d.st.Running, err)
	}
	d.st.BootID++
	d.st.Reboot = false
	return d.save()
}

// simPartition reads the root partition from root=PARTUUID=...-0N.
func simPartition(cmdline string) (int, error) {
	r, err := rootArg(cmdline)
	if err != nil {
		return 0, err
	}
	switch {
	case strings.HasSuffix(r, "-02"):
		return 2, nil
	case strings.HasSuffix(r, "-03"):
		return 3, nil
	}
	return 0, fmt.Errorf("root=%s is neither partition 2 nor 3", r)
}

// rootInfo reads the version and health knob of a root partition.
func (d *SimDevice) rootInfo(part int) (version, unhealthy string, err error) {
	b, err := os.ReadFile(d.path("root" + strconv.Itoa(part) + ".img"))
	if err != nil {
		return "", "", err
	}
	lines := strings.SplitN(string(b[:min(len(b), 1024)]), "\n", 3)
	v, ok := strings.CutPrefix(lines[0], "osgate-root ")
	if !ok || len(lines) < 2 {
		return "", "", errors.New("not an osgate root")
	}
	why, _ := strings.CutPrefix(lines[1], "unhealthy ")
	if why == lines[1] {
		why = ""
	}
	return v, why, nil
}

// Version is the version of the running root.
func (d *SimDevice) Version() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, _, _ := d.rootInfo(d.st.Running)
	return v
}

// Unhealthy is the running root's health knob: "" for a good release.
func (d *SimDevice) Unhealthy() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, why, _ := d.rootInfo(d.st.Running)
	return why
}

// Put implements Updater: root goes to the partition root= does not name
// (during an unconfirmed try that is the running one, as on gokrazy).
func (d *SimDevice) Put(ctx context.Context, part string, r io.Reader) (string, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var name string
	switch part {
	case Root:
		cur, err := simPartition(d.st.Cmdline)
		if err != nil {
			return "", err
		}
		name = "root" + strconv.Itoa(5-cur) + ".img"
	case Boot:
		name = "boot.img"
	case MBR:
		name = "mbr.img"
	default:
		return "", fmt.Errorf("no such part %q", part)
	}
	if err := writeFile(d.path(name), data); err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// Switch implements Updater: root= names the running root from now on.
func (d *SimDevice) Switch(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	boot, err := os.ReadFile(d.path("boot.img"))
	if err != nil {
		return err
	}
	cur, err := simPartition(d.st.Cmdline)
	if err != nil {
		return err
	}
	from, to := fmt.Sprintf("-0%d ", cur), fmt.Sprintf("-0%d ", 5-cur)
	for _, e := range findCmdlines(boot) {
		old := string(boot[e.Offset : e.Offset+e.Length])
		copy(boot[e.Offset:], strings.Replace(old, from, to, 1))
	}
	return writeFile(d.path("boot.img"), boot)
}

// Reboot implements Updater: the next start of the process boots, and the
// process is stopped now (SIGTERM, as gokrazy stops its services).
func (d *SimDevice) Reboot(ctx context.Context) error {
	d.mu.Lock()
	d.st.Reboot = true
	err := d.save()
	d.mu.Unlock()
	if err != nil {
		return err
	}
	return d.stop()
}

// Features implements Updater.
func (d *SimDevice) Features(context.Context) (string, error) { return "partuuid,updatehash,", nil }

// Cmdline implements Updater.
func (d *SimDevice) Cmdline() (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.Cmdline, nil
}

// BootID implements Updater.
func (d *SimDevice) BootID() (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strconv.Itoa(d.st.BootID), nil
}
