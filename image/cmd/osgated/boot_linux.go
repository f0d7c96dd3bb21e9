package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// readBootstrap reads the bootstrap config from the FAT boot partition,
// which gokrazy does not mount: it is mounted read-only for the read.
func readBootstrap() ([]byte, error) {
	dev, err := bootPartition()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "osgated-boot")
	if err != nil {
		return nil, err
	}
	defer os.Remove(dir)
	if err := syscall.Mount(dev, dir, "vfat", syscall.MS_RDONLY|syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return nil, fmt.Errorf("mount boot partition %s: %w", dev, err)
	}
	defer syscall.Unmount(dir, 0)
	return os.ReadFile(filepath.Join(dir, bootstrapName))
}

// bootPartition is partition 1 of the disk the root file system is on
// (gokrazy's layout: 1 boot, 2 and 3 root A/B, 4 /perm).
func bootPartition() (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		return "", err
	}
	part, err := filepath.EvalSymlinks(fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)))
	if err != nil {
		return "", fmt.Errorf("find the root disk: %w", err)
	}
	disk := filepath.Dir(part)
	entries, err := os.ReadDir(disk)
	if err != nil {
		return "", fmt.Errorf("find the boot partition: %w", err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(disk, e.Name(), "partition"))
		if err == nil && strings.TrimSpace(string(b)) == "1" {
			return "/dev/" + e.Name(), nil
		}
	}
	return "", fmt.Errorf("find the boot partition: %s has no partition 1", disk)
}
