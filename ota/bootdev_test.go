package ota

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A /proc and /sys shaped like a Raspberry Pi's under gokrazy.
func TestBootDevice(t *testing.T) {
	dir := t.TempDir()
	mountinfo := filepath.Join(dir, "mountinfo")
	sys := filepath.Join(dir, "sys")
	mk := func(path, content string) {
		p := filepath.Join(sys, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"mmcblk0p1", "mmcblk0p2", "mmcblk0p3", "mmcblk0p4"} {
		mk("block/mmcblk0/"+p+"/partition", p[len(p)-1:]+"\n")
	}
	mk("block/mmcblk0/size", "")
	os.MkdirAll(filepath.Join(sys, "dev", "block"), 0o755)
	os.Symlink("../../devices/platform/emmc2bus/fe340000.mmc/mmc_host/mmc0/mmc0:aaaa/block/mmcblk0/mmcblk0p3", filepath.Join(sys, "dev", "block", "179:3"))
	os.WriteFile(mountinfo, []byte(strings.Join([]string{
		"1 0 0:2 / / rw - rootfs rootfs rw",
		"22 1 179:3 / / ro,relatime shared:1 - squashfs /dev/root ro",
		"23 22 0:5 / /dev rw - devtmpfs devtmpfs rw",
		"30 22 179:4 / /perm rw - ext4 /dev/mmcblk0p4 rw",
	}, "\n")+"\n"), 0o644)
	got, err := bootDevice(mountinfo, sys)
	if err != nil || got != "/dev/mmcblk0p1" {
		t.Fatalf("bootDevice = %q, %v; want /dev/mmcblk0p1", got, err)
	}
	os.WriteFile(mountinfo, []byte("30 22 179:4 / /perm rw - ext4 /dev/mmcblk0p4 rw\n"), 0o644)
	if _, err := bootDevice(mountinfo, sys); err == nil || !strings.Contains(err.Error(), "no mount on /") {
		t.Fatalf("no root mount: err = %v", err)
	}
}

func TestReadBack(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "mmcblk0p1")
	img := bootImage(3)
	// The partition is larger than the image written to its start.
	if err := os.WriteFile(dev, append(append([]byte{}, img...), noise(4, 4096)...), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256Hex(img)
	if err := readBack(dev, int64(len(img)), sum); err != nil {
		t.Fatal(err)
	}
	if err := readBack(dev, int64(len(img))-1, sum); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("short read back: err = %v", err)
	}
	if err := readBack(dev+"x", 1, sum); err == nil {
		t.Fatal("a missing device read back")
	}
}
