//go:build vmtest

package vmtest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

const sector = 512

// partition is one entry of a disk image's partition table, in bytes.
type partition struct {
	Start, Size int64
}

// partitions reads the GPT of a disk image (gokrazy writes GPT plus a
// hybrid MBR), or its MBR when there is no GPT.
func partitions(img string) ([]partition, error) {
	f, err := os.Open(img)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hdr := make([]byte, sector)
	if _, err := f.ReadAt(hdr, sector); err != nil {
		return nil, fmt.Errorf("%s: read GPT header: %w", img, err)
	}
	if !bytes.Equal(hdr[:8], []byte("EFI PART")) {
		return mbrPartitions(f, img)
	}
	entriesLBA := int64(binary.LittleEndian.Uint64(hdr[72:]))
	n := binary.LittleEndian.Uint32(hdr[80:])
	size := binary.LittleEndian.Uint32(hdr[84:])
	if size < 128 || n > 1024 {
		return nil, fmt.Errorf("%s: implausible GPT: %d entries of %d bytes", img, n, size)
	}
	buf := make([]byte, int64(n)*int64(size))
	if _, err := f.ReadAt(buf, entriesLBA*sector); err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: read GPT entries: %w", img, err)
	}
	var ps []partition
	for i := uint32(0); i < n; i++ {
		e := buf[i*size:]
		if bytes.Equal(e[:16], make([]byte, 16)) {
			continue // unused entry
		}
		first := int64(binary.LittleEndian.Uint64(e[32:]))
		last := int64(binary.LittleEndian.Uint64(e[40:]))
		ps = append(ps, partition{Start: first * sector, Size: (last - first + 1) * sector})
	}
	return ps, nil
}

func mbrPartitions(f *os.File, img string) ([]partition, error) {
	mbr := make([]byte, sector)
	if _, err := f.ReadAt(mbr, 0); err != nil {
		return nil, fmt.Errorf("%s: read MBR: %w", img, err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return nil, fmt.Errorf("%s: no partition table (neither GPT nor MBR)", img)
	}
	var ps []partition
	for i := 0; i < 4; i++ {
		e := mbr[446+16*i:]
		if e[4] == 0 {
			continue
		}
		ps = append(ps, partition{
			Start: int64(binary.LittleEndian.Uint32(e[8:])) * sector,
			Size:  int64(binary.LittleEndian.Uint32(e[12:])) * sector,
		})
	}
	return ps, nil
}
