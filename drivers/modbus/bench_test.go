package modbus

import (
	"context"
	"encoding/binary"
	"fmt"
	"syscall"
	"testing"
	"time"

	gridx "github.com/grid-x/modbus"

	"github.com/osgate/osgate/drivers/core"
)

// The two benchmarks read the same 1,000 holding registers (unit 2, HR
// 0..999, 8 reads of up to 125) from the same pymodbus peer: one through the
// driver's Poll, one with a bare grid-x loop. Compare their
// cpu-s/1000readings (CPU time of this process: the server's is the same
// for both) to see what the driver costs on top of grid-x:
//
//	go test -run '^$' -bench 'Poll1000|PollAppend1000|GridxBaseline' -benchtime 200x ./drivers/modbus/
//
// peak-RSS-MB is the test process's peak: for that figure, run each
// benchmark in its own invocation (-bench '^BenchmarkPoll1000$').

func BenchmarkPoll1000(b *testing.B) {
	p := startPeer(b, peerOpts{tcp: true})
	var chans []*core.Channel
	for a := range 1000 {
		chans = append(chans, ch(fmt.Sprintf("r%d", a), fmt.Sprintf(`{"register":"holding","address":%d}`, a)))
	}
	d := dev("bench", 2, chans...)
	c := newConn(b, fmt.Sprintf(`{"transport":"tcp","address":%q,"timeout":"5s"}`, p.tcp), d)
	ctx := context.Background()
	pollOK(b, c, d) // connect
	b.ReportAllocs()
	cpu := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		rs, err := c.Poll(ctx, d)
		if err != nil || rs[999].Value != int64((7*999+3)&0xFFFF) {
			b.Fatalf("poll: %v %v", err, rs[999])
		}
	}
	b.StopTimer()
	b.ReportMetric((cpuTime()-cpu).Seconds()/float64(b.N), "cpu-s/1000readings")
	b.ReportMetric(peakRSSMB(), "peak-RSS-MB")
}

// BenchmarkPollAppend1000 is BenchmarkPoll1000 as the scheduler polls:
// into the slice of the previous poll (core.AppendPoller).
func BenchmarkPollAppend1000(b *testing.B) {
	p := startPeer(b, peerOpts{tcp: true})
	var chans []*core.Channel
	for a := range 1000 {
		chans = append(chans, ch(fmt.Sprintf("r%d", a), fmt.Sprintf(`{"register":"holding","address":%d}`, a)))
	}
	d := dev("bench", 2, chans...)
	c := newConn(b, fmt.Sprintf(`{"transport":"tcp","address":%q,"timeout":"5s"}`, p.tcp), d)
	ctx := context.Background()
	pollOK(b, c, d) // connect
	var buf []core.Reading
	b.ReportAllocs()
	cpu := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		rs, err := c.PollAppend(ctx, d, buf[:0])
		if err != nil || rs[999].Value != int64((7*999+3)&0xFFFF) {
			b.Fatalf("poll: %v %v", err, rs[999])
		}
		buf = rs
	}
	b.StopTimer()
	b.ReportMetric((cpuTime()-cpu).Seconds()/float64(b.N), "cpu-s/1000readings")
	b.ReportMetric(peakRSSMB(), "peak-RSS-MB")
}

func BenchmarkGridxBaseline(b *testing.B) {
	p := startPeer(b, peerOpts{tcp: true})
	h := gridx.NewTCPClientHandler(p.tcp)
	h.Timeout = 5 * time.Second
	h.SetSlave(2)
	defer h.Close()
	cl := gridx.NewClient(h)
	ctx := context.Background()
	vals := make([]int64, 1000)
	b.ReportAllocs()
	cpu := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		for start := 0; start < 1000; start += 125 {
			regs, err := cl.ReadHoldingRegisters(ctx, uint16(start), 125)
			if err != nil {
				b.Fatalf("read %d: %v", start, err)
			}
			for i := range 125 {
				vals[start+i] = int64(binary.BigEndian.Uint16(regs[2*i:]))
			}
		}
		if vals[999] != int64((7*999+3)&0xFFFF) {
			b.Fatalf("read %d", vals[999])
		}
	}
	b.StopTimer()
	b.ReportMetric((cpuTime()-cpu).Seconds()/float64(b.N), "cpu-s/1000readings")
	b.ReportMetric(peakRSSMB(), "peak-RSS-MB")
}

// peakRSSMB is this process's peak resident set size. It covers the whole
// test binary: run one benchmark per invocation to compare it.
func peakRSSMB() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Maxrss) / 1024 // kilobytes on Linux
}

// cpuTime is the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
