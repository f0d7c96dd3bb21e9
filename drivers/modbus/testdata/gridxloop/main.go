// Command gridxloop is the baseline of the process benchmarks of
// drivers/modbus: a bare grid-x loop that reads holding registers 0..n-1 of
// one unit in reads of 125 at a fixed rate and does nothing with them.
// It runs until it is killed; it exits 1 on the first failed read.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"time"

	gridx "github.com/grid-x/modbus"
)

func main() {
	addr := flag.String("addr", "", "Modbus TCP host:port")
	unit := flag.Int("unit", 2, "unit id")
	n := flag.Int("n", 1000, "holding registers to read")
	every := flag.Duration("every", 100*time.Millisecond, "poll interval")
	flag.Parse()
	h := gridx.NewTCPClientHandler(*addr)
	h.Timeout = 2 * time.Second
	h.SetSlave(byte(*unit))
	cl := gridx.NewClient(h)
	ctx := context.Background()
	vals := make([]int64, *n)
	tick := time.NewTicker(*every)
	for range tick.C {
		for s := 0; s < *n; s += 125 {
			c := min(125, *n-s)
			regs, err := cl.ReadHoldingRegisters(ctx, uint16(s), uint16(c))
			if err != nil {
				fmt.Fprintf(os.Stderr, "gridxloop: read %d+%d: %v\n", s, c, err)
				os.Exit(1)
			}
			for i := range c {
				vals[s+i] = int64(binary.BigEndian.Uint16(regs[2*i:]))
			}
		}
	}
}
