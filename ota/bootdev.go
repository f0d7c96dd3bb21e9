package ota

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// BootDevice finds the boot partition (partition 1) of the disk the root
// file system is mounted from, e.g. /dev/mmcblk0p1, for reading the boot
// write back (Gokrazy.BootDevice).
func BootDevice() (string, error) { return bootDevice("/proc/self/mountinfo", "/sys") }

func bootDevice(mountinfo, sys string) (string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", fmt.Errorf("ota: boot device: %w", err)
	}
	defer f.Close()
	dev := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 22 1 179:2 / / ro,relatime shared:1 - squashfs /dev/root ro
		fs := strings.Fields(sc.Text())
		if len(fs) >= 5 && fs[4] == "/" {
			dev = fs[2] // the last mount on / is the one in effect
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("ota: boot device: %w", err)
	}
	if dev == "" {
		return "", errors.New("ota: boot device: no mount on / in " + mountinfo)
	}
	link, err := os.Readlink(filepath.Join(sys, "dev", "block", dev))
	if err != nil {
		return "", fmt.Errorf("ota: boot device: root is %s: %w", dev, err)
	}
	disk := filepath.Base(filepath.Dir(link)) // .../block/mmcblk0/mmcblk0p2
	parts, err := os.ReadDir(filepath.Join(sys, "block", disk))
	if err != nil {
		return "", fmt.Errorf("ota: boot device: root %s is not a partition of a disk: %w", dev, err)
	}
	for _, p := range parts {
		b, err := os.ReadFile(filepath.Join(sys, "block", disk, p.Name(), "partition"))
		if err == nil && strings.TrimSpace(string(b)) == "1" {
			return "/dev/" + p.Name(), nil
		}
	}
	return "", fmt.Errorf("ota: boot device: disk %s has no partition 1", disk)
}
