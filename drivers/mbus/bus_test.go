package mbus

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// testTelegram builds an RSP_UD of a water meter "TST" with the given ID,
// records (raw DIF…data bytes) and, if more, the more-records-follow DIF.
func testTelegram(id string, more bool, records ...[]byte) []byte {
	d := selectData(id + "FFFFFFFF")
	man, _ := manufacturerCode("TST")
	data := []byte{d[0], d[1], d[2], d[3], byte(man), byte(man >> 8), 0x01, 0x07, 0x00, 0x00, 0x00, 0x00}
	for _, r := range records {
		data = append(data, r...)
	}
	if more {
		data = append(data, 0x1F)
	}
	return longFrame(0x08, 0x00, ciVariable, data)
}

func countLines(log, substr string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func TestReadPrimary(t *testing.T) {
	p := startSlave(t, "--slave", "5=testdata/frames/abb_f95.hex")
	b := testBus(t, p)
	tgs, err := b.Read(testCtx(t), Address{Primary: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(tgs) != 1 || tgs[0].Header.ID != "26718590" || tgs[0].Address != 5 || len(tgs[0].Records) != 14 {
		t.Fatalf("got %d telegrams: %+v", len(tgs), tgs)
	}
	if log, ok := p.logWhen(func(log string) bool {
		return countLines(log, "-> 10 40 05 45 16") == 1 && countLines(log, "-> 10 7B 05 80 16") == 1
	}); !ok {
		t.Errorf("want one SND_NKE and one REQ_UD2 with FCB set:\n%s", log)
	}
}

// The slave paces its reply like a 2400 baud line: the reply arrives a
// byte at a time, as from a real level converter.
func TestReadPacedLine(t *testing.T) {
	p := startSlave(t, "--baud", "2400", "--slave", "5=testdata/frames/abb_f95.hex")
	b := NewBus(PortConfig{Path: p.Path, Baud: 2400, Parity: "none", Timeout: 1500 * time.Millisecond}, nil)
	defer b.Close()
	start := time.Now()
	tgs, err := b.Read(testCtx(t), Address{Primary: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(tgs) != 1 || len(tgs[0].Records) != 14 {
		t.Fatalf("got %+v", tgs)
	}
	// 100 bytes of 11 bits at 2400 baud: the reply cannot have come sooner.
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("readout took %s: the slave did not pace its reply", d)
	}
}

func TestReadMultiTelegramTogglesFCB(t *testing.T) {
	t1 := writeFrame(t, "t1.hex", testTelegram("11223344", true, []byte{0x04, 0x03, 0x10, 0x27, 0x00, 0x00}))
	t2 := writeFrame(t, "t2.hex", testTelegram("11223344", false, []byte{0x04, 0x13, 0x20, 0x4E, 0x00, 0x00}))
	p := startSlave(t, "--slave", "7="+t1+","+t2)
	b := testBus(t, p)
	for round := 0; round < 2; round++ {
		tgs, err := b.Read(testCtx(t), Address{Primary: 7})
		if err != nil {
			t.Fatal(err)
		}
		if len(tgs) != 2 || !tgs[0].More || tgs[1].More {
			t.Fatalf("round %d: want 2 telegrams, the first with more records: %+v", round, tgs)
		}
		if v := tgs[0].Records[0].Value; v != 10000.0 {
			t.Errorf("round %d: energy %v, want 10000 Wh", round, v)
		}
		if v := tgs[1].Records[0].Value; v != 20.0 {
			t.Errorf("round %d: volume %v, want 20 m^3", round, v)
		}
	}
	log, ok := p.logWhen(func(log string) bool {
		return countLines(log, "-> 10 7B 07") == 2 && countLines(log, "-> 10 5B 07") == 2
	})
	if !ok {
		t.Errorf("want REQ_UD2 with FCB 1 then 0 in each round:\n%s", log)
	}
	if strings.Contains(log, "repeat last telegram") {
		t.Errorf("slave saw a repeated FCB:\n%s", log)
	}
}

func TestChecksumErrorRepeatsWithSameFCB(t *testing.T) {
	p := startSlave(t, "--corrupt-rsp", "1", "--slave", "5=testdata/frames/abb_f95.hex")
	b := testBus(t, p)
	tgs, err := b.Read(testCtx(t), Address{Primary: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(tgs) != 1 || tgs[0].Header.ID != "26718590" {
		t.Fatalf("got %+v", tgs)
	}
	if log, ok := p.logWhen(func(log string) bool {
		return strings.Contains(log, "damaged on purpose") && countLines(log, "-> 10 7B 05") == 2 && strings.Contains(log, "FCB not toggled")
	}); !ok {
		t.Errorf("want the damaged reply, then the same REQ_UD2 (FCB 1) again, answered as a repeat:\n%s", log)
	}
}

// On a paced line the rest of a damaged reply is still arriving when the
// master notices the damage: it waits for the line to go quiet before it
// repeats the request. (This meter's telegram holds bytes 0x68 and 0xE5
// that would look like the start of a reply.)
func TestChecksumErrorOnPacedLine(t *testing.T) {
	p := startSlave(t, "--baud", "2400", "--break-rsp", "1", "--slave", "5=testdata/frames/electricity-meter-2.hex")
	b := NewBus(PortConfig{Path: p.Path, Baud: 2400, Parity: "none", Timeout: 1500 * time.Millisecond}, nil)
	defer b.Close()
	if _, err := b.Read(testCtx(t), Address{Primary: 5}); err != nil {
		t.Fatal(err)
	}
	if log, ok := p.logWhen(func(log string) bool {
		return countLines(log, "-> 10 7B 05") == 2 && strings.Contains(log, "FCB not toggled")
	}); !ok {
		t.Errorf("want one repeat of REQ_UD2 with the same FCB:\n%s", log)
	}
}

// Bytes before a reply that cannot start one (line noise) are skipped.
func TestNoiseBeforeReply(t *testing.T) {
	p := startSlave(t, "--noise-rsp", "1", "--slave", "5=testdata/frames/abb_f95.hex")
	b := testBus(t, p)
	if _, err := b.Read(testCtx(t), Address{Primary: 5}); err != nil {
		t.Fatal(err)
	}
	if log, ok := p.logWhen(func(log string) bool {
		return countLines(log, "-> 10 7B 05") == 1 && strings.Contains(log, "noise on purpose")
	}); !ok {
		t.Errorf("want one REQ_UD2, answered after noise:\n%s", log)
	}
}

func TestReadNoReply(t *testing.T) {
	p := startSlave(t, "--slave", "5=testdata/frames/abb_f95.hex")
	b := NewBus(PortConfig{Path: p.Path, Baud: 9600, Parity: "none", Timeout: 300 * time.Millisecond, Retries: 1}, nil)
	_, err := b.Read(testCtx(t), Address{Primary: 9})
	b.Close()
	if !errors.Is(err, ErrNoReply) || !strings.Contains(err.Error(), "SND_NKE to 9") {
		t.Fatalf("got %v, want no reply from 9", err)
	}
	if log, ok := p.logWhen(func(log string) bool { return countLines(log, "-> 10 40 09") == 2 }); !ok {
		t.Errorf("want the SND_NKE sent twice (one retry), slave saw %d", countLines(log, "-> 10 40 09"))
	}
	// The line still works after a silent meter.
	if _, err := testBus(t, p).Read(testCtx(t), Address{Primary: 5}); err != nil {
		t.Fatal(err)
	}
}

func TestReadSecondary(t *testing.T) {
	p := startSlave(t,
		"--slave", "0=testdata/frames/abb_f95.hex@11111111",
		"--slave", "0=testdata/frames/abb_f95.hex@22222222")
	b := testBus(t, p)
	ctx := testCtx(t)
	var full string
	for _, id := range []string{"22222222", "11111111", "22222222"} {
		addr, err := ParseAddress(id)
		if err != nil {
			t.Fatal(err)
		}
		tgs, err := b.Read(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		if len(tgs) != 1 || tgs[0].Header.ID != id {
			t.Fatalf("read %s, got %+v", id, tgs)
		}
		full = tgs[0].Header.SecondaryAddress()
	}
	if full != "2222222224232804" {
		t.Fatalf("secondary address %s", full)
	}
	if tgs, err := b.Read(ctx, Address{Secondary: full}); err != nil || tgs[0].Header.SecondaryAddress() != full {
		t.Fatalf("read %s: %v %+v", full, err, tgs)
	}
	_, err := b.Read(ctx, Address{Secondary: "FFFFFFFFFFFFFFFF"})
	if !errors.Is(err, ErrCollision) {
		t.Fatalf("selecting two meters: got %v, want a collision", err)
	}
	_, err = b.Read(ctx, Address{Secondary: "33333333FFFFFFFF"})
	if !errors.Is(err, ErrNoReply) {
		t.Fatalf("selecting nobody: got %v, want no reply", err)
	}
}

// A level converter that echoes the master: with Echo set the echo is
// read back first; without it, selections look like collisions.
func TestEcho(t *testing.T) {
	p := startSlave(t, "--echo",
		"--slave", "5=testdata/frames/abb_f95.hex",
		"--slave", "0=testdata/frames/kamstrup_382_005.hex@12345678")
	b := NewBus(PortConfig{Path: p.Path, Baud: 9600, Parity: "none", Timeout: 1500 * time.Millisecond, Echo: true}, nil)
	defer b.Close()
	ctx := testCtx(t)
	if _, err := b.Read(ctx, Address{Primary: 5}); err != nil {
		t.Fatal(err)
	}
	tgs, err := b.Read(ctx, Address{Secondary: "12345678FFFFFFFF"})
	if err != nil || tgs[0].Header.ID != "12345678" {
		t.Fatalf("read by secondary address with echo: %v", err)
	}
	plain := testBus(t, p)
	if _, err := plain.Read(ctx, Address{Secondary: "12345678FFFFFFFF"}); !errors.Is(err, ErrCollision) {
		t.Fatalf("without echo set: got %v, want a collision", err)
	}
}

// Requests of several devices on one line are serialised by the bus.
func TestBusSerialisesDevices(t *testing.T) {
	p := startSlave(t, "--slave", "5=testdata/frames/abb_f95.hex", "--slave", "6=testdata/frames/kamstrup_382_005.hex")
	b := testBus(t, p)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 10; i++ {
		for _, a := range []int{5, 6} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tgs, err := b.Read(ctx, Address{Primary: a})
				if err == nil && tgs[0].Address != byte(a) {
					err = errors.New("reply from the wrong meter")
				}
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestBusClosed(t *testing.T) {
	b := NewBus(PortConfig{Path: "/nonexistent"}, nil)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Read(context.Background(), Address{Primary: 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v", err)
	}
}

// A caller whose deadline passes while the line is busy gives up.
func TestBusWaitHonoursContext(t *testing.T) {
	b := NewBus(PortConfig{Path: "/nonexistent"}, nil)
	b.line <- struct{}{} // the line is busy
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := b.Read(ctx, Address{Primary: 1})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

// manufacturerCode is the inverse of manufacturerName; ok is false for a
// name that is not three letters A–Z.
func manufacturerCode(s string) (uint16, bool) {
	if len(s) != 3 {
		return 0xFFFF, false
	}
	var v uint16
	for i := 0; i < 3; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c < 'A' || c > 'Z' {
			return 0xFFFF, false
		}
		v = v<<5 | uint16(c-64)
	}
	return v, true
}
