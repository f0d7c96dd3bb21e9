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
	"time"
)

// TestRPiImage checks the Raspberry Pi image file (OSGATE_RPI_IMAGE, built
// by `make image-test`) without hardware: gokrazy's partition table, a
// root file system holding static aarch64 osgate, osgated and mosquitto,
// osgate stamped with the version of the build (OSGATE_VERSION) and its
// build time, and without the test-only connector, a boot partition with
// the UART config and room for the bootstrap config, and a formatted
// /perm. TestRPiBoot boots it.
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
	// The version make image stamped, as make build does; the build time
	// the clock is never restored before; no test-only connector.
	osgate := filepath.Join(root, "user/osgate")
	want := os.Getenv("OSGATE_VERSION")
	if want == "" {
		t.Fatal("OSGATE_VERSION is not set: run `make image-test`, which sets the version make image stamps")
	}
	if v, err := elfString(osgate, "github.com/osgate/osgate/appliance.Version"); err != nil || v != want {
		t.Errorf("the image's osgate carries version %q (%v), want %q", v, err, want)
	}
	bt, err := elfString(osgate, "github.com/osgate/osgate/appliance.BuildTime")
	if built, perr := time.Parse(time.RFC3339, bt); err != nil || perr != nil || built.After(time.Now()) || built.Before(time.Now().AddDate(0, 0, -30)) {
		t.Errorf("the image's osgate carries build time %q (%v, %v): want the time make image ran", bt, err, perr)
	}
	if has, err := elfHasSymbolPrefix(osgate, "github.com/osgate/osgate/drivers/testhook."); err != nil || has {
		t.Errorf("the image's osgate contains the test-only testhook connector (%v): the Raspberry Pi image must be built without the tag testhook", err)
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
	// Below gateway.disk_warn_bytes (default 128 MiB) free, the gateway
	// is degraded from its first boot, and OTA updates (confirmed on
	// health ok) are never kept.
	if free := int64(binary.LittleEndian.Uint32(sb[12:])) << (10 + binary.LittleEndian.Uint32(sb[24:])); free < 256<<20 {
		t.Errorf("/perm has %d MiB free, want at least 256 MiB: the state dir must stay well above gateway.disk_warn_bytes (128 MiB)", free>>20)
	}
}

// elfString reads the value of a Go string variable set at link time
// (-X) from an executable's symbol table, whatever its architecture.
func elfString(path, sym string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return "", fmt.Errorf("%s: %w (stripped?)", path, err)
	}
	read := func(addr, n uint64) ([]byte, error) {
		for _, s := range f.Sections {
			if s.Type != elf.SHT_NOBITS && addr >= s.Addr && addr+n <= s.Addr+s.Size {
				b := make([]byte, n)
				_, err := s.ReadAt(b, int64(addr-s.Addr))
				return b, err
			}
		}
		return nil, fmt.Errorf("%s: no section holds %#x+%d", path, addr, n)
	}
	for _, s := range syms {
		if s.Name != sym {
			continue
		}
		hdr, err := read(s.Value, 16) // a string header: pointer, length
		if err != nil {
			return "", err
		}
		ptr, n := binary.LittleEndian.Uint64(hdr), binary.LittleEndian.Uint64(hdr[8:])
		if n == 0 {
			return "", nil
		}
		if n > 1<<16 {
			return "", fmt.Errorf("%s: %s: implausible length %d", path, sym, n)
		}
		b, err := read(ptr, n)
		return string(b), err
	}
	return "", fmt.Errorf("%s: no symbol %s", path, sym)
}

// elfHasSymbolPrefix reports whether an executable has a symbol starting
// with prefix (a package linked in).
func elfHasSymbolPrefix(path, prefix string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return false, err
	}
	for _, s := range syms {
		if strings.HasPrefix(s.Name, prefix) {
			return true, nil
		}
	}
	return false, nil
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
