//go:build vmtest

package vmtest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRPiImage checks the Raspberry Pi image file (OSGATE_RPI_IMAGE, built
// by `make image-test`) without hardware: gokrazy's partition table, a
// root file system holding static aarch64 osgate, osgated and mosquitto,
// a boot partition with the UART config and room for the bootstrap
// config, and a formatted /perm.
func TestRPiImage(t *testing.T) {
	img := os.Getenv("OSGATE_RPI_IMAGE")
	if img == "" {
		t.Fatal("OSGATE_RPI_IMAGE is not set: run `make image-test`, which builds the image and sets it")
	}
	for _, tool := range []string{"unsquashfs", "mtype", "mdir"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run image/deps.sh (squashfs-tools, mtools): %v", tool, err)
		}
	}
	ps, err := partitions(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 4 {
		t.Fatalf("%d partitions, want gokrazy's 4 (boot, root A, root B, /perm): %+v", len(ps), ps)
	}
	st, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		if p.Start%(1<<20) != 0 || p.Size <= 0 || p.Start+p.Size > st.Size() {
			t.Errorf("partition %d at %d, %d bytes: not 1 MiB aligned or beyond the %d-byte image", i+1, p.Start, p.Size, st.Size())
		}
		if i > 0 && p.Start < ps[i-1].Start+ps[i-1].Size {
			t.Errorf("partition %d overlaps partition %d", i+1, i)
		}
	}
	if ps[1].Size != ps[2].Size {
		t.Errorf("root A (%d bytes) and root B (%d bytes) differ in size", ps[1].Size, ps[2].Size)
	}

	// Boot: the UART lines for RS-485 HATs, and free space for osgate.json.
	boot := fmt.Sprintf("%s@@%d", img, ps[0].Start)
	cfg, err := exec.Command("mtype", "-i", boot, "::config.txt").CombinedOutput()
	if err != nil {
		t.Fatalf("config.txt on the boot partition: %v: %s", err, cfg)
	}
	for _, line := range []string{"enable_uart=1", "dtoverlay=disable-bt"} {
		if !bytes.Contains(cfg, []byte(line)) {
			t.Errorf("config.txt lacks %q:\n%s", line, cfg)
		}
	}
	dir, err := exec.Command("mdir", "-i", boot, "::/").CombinedOutput()
	if err != nil {
		t.Fatalf("mdir boot: %v: %s", err, dir)
	}
	if !bytes.Contains(dir, []byte("kernel8")) && !bytes.Contains(dir, []byte("vmlinuz")) {
		t.Errorf("no kernel on the boot partition:\n%s", dir)
	}
	if bytes.Contains(dir, []byte(" 0 bytes free")) {
		t.Errorf("no room for the bootstrap config on the boot partition:\n%s", dir)
	}

	// Root A: squashfs with the programs.
	out := t.TempDir()
	root := filepath.Join(out, "root")
	files := []string{"user/osgate", "user/osgated", "usr/local/bin/mosquitto"}
	args := append([]string{"-q", "-n", "-d", root, "-o", fmt.Sprint(ps[1].Start), img}, files...)
	if b, err := exec.Command("unsquashfs", args...).CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs root A: %v: %s", err, b)
	}
	for _, f := range files {
		checkStaticARM64(t, filepath.Join(root, f))
	}

	// /perm: ext4, labelled perm by image/build.sh.
	sb := make([]byte, 1024)
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.ReadAt(sb, ps[3].Start+1024); err != nil {
		t.Fatal(err)
	}
	if magic := binary.LittleEndian.Uint16(sb[56:]); magic != 0xef53 {
		t.Fatalf("/perm partition: no ext4 superblock (magic %#x): the build must format it", magic)
	}
	if label := strings.TrimRight(string(sb[120:136]), "\x00"); label != "perm" {
		t.Errorf("/perm label %q, want perm", label)
	}
	blocks := int64(binary.LittleEndian.Uint32(sb[4:])) << (10 + binary.LittleEndian.Uint32(sb[24:]))
	if blocks > ps[3].Size {
		t.Errorf("/perm file system (%d bytes) is larger than its partition (%d bytes)", blocks, ps[3].Size)
	}
}

func checkStaticARM64(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("%s: machine %v, want aarch64", path, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s: dynamically linked; gokrazy's root has no shared libraries", path)
		}
	}
}
