package zwave

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func mustEncode(t testing.TB, f frame) []byte {
	t.Helper()
	b, err := f.encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncode(t *testing.T) {
	// GetSerialApiInitData, GetControllerId and a SendData of Binary
	// Switch Get to node 4; checksums worked out by hand.
	cases := []struct {
		f    frame
		want []byte
	}{
		{frame{Type: typeRequest, Func: 0x02}, []byte{0x01, 0x03, 0x00, 0x02, 0xFE}},
		{frame{Type: typeRequest, Func: 0x20}, []byte{0x01, 0x03, 0x00, 0x20, 0xDC}},
		{frame{Type: typeRequest, Func: 0x13, Data: []byte{0x04, 0x02, 0x25, 0x02, 0x25, 0x01}},
			[]byte{0x01, 0x09, 0x00, 0x13, 0x04, 0x02, 0x25, 0x02, 0x25, 0x01, 0xE0}},
	}
	for _, c := range cases {
		if got := mustEncode(t, c.f); !bytes.Equal(got, c.want) {
			t.Errorf("encode %s = % X, want % X", c.f, got, c.want)
		}
	}
	if _, err := (frame{Data: make([]byte, 253)}).encode(); err == nil {
		t.Error("a frame of 253 data bytes encoded")
	}
}

// parseAll feeds chunks, each at its own time, and returns every event.
func parseAll(p *parser, at time.Time, chunks ...[]byte) []event {
	var evs []event
	for i, c := range chunks {
		p.feed(c, at.Add(time.Duration(i)*time.Millisecond))
		for {
			ev, ok := p.next()
			if !ok {
				break
			}
			evs = append(evs, ev)
		}
	}
	return evs
}

func TestParser(t *testing.T) {
	report := frame{Type: typeRequest, Func: 0x04, Data: []byte{0x00, 0x02, 0x06, 0x31, 0x05, 0x01, 0x22, 0x00, 0xC9}}
	resp := frame{Type: typeResponse, Func: 0x13, Data: []byte{0x01}}
	rb, sb := mustEncode(t, report), mustEncode(t, resp)
	bad := append([]byte(nil), rb...)
	bad[len(bad)-1] ^= 0xFF
	t0 := time.Unix(1000, 0)
	cases := []struct {
		name   string
		chunks [][]byte
		want   []event
	}{
		{"one frame", [][]byte{rb}, []event{{Header: sof, Frame: report}}},
		{"split in three reads", [][]byte{rb[:1], rb[1:5], rb[5:]}, []event{{Header: sof, Frame: report}}},
		{"ACK and frame coalesced", [][]byte{append([]byte{ack}, sb...)}, []event{{Header: ack}, {Header: sof, Frame: resp}}},
		{"two frames in one read", [][]byte{append(append([]byte(nil), sb...), rb...)}, []event{{Header: sof, Frame: resp}, {Header: sof, Frame: report}}},
		{"NAK and CAN", [][]byte{{nak, can}}, []event{{Header: nak}, {Header: can}}},
		{"garbage before SOF", [][]byte{{0x00, 0xFF, 0x42}, sb}, []event{{Header: sof, Frame: resp}}},
		{"stray SOF with a short length", [][]byte{{sof, 0x02}, sb}, []event{{Header: sof, Frame: resp}}},
		{"incomplete frame waits", [][]byte{rb[:6]}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p parser
			got := parseAll(&p, t0, c.chunks...)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v\nwant %+v", got, c.want)
			}
		})
	}
	t.Run("bad checksum", func(t *testing.T) {
		var p parser
		evs := parseAll(&p, t0, bad, sb)
		if len(evs) != 2 || !errors.Is(evs[0].Err, errChecksum) || !reflect.DeepEqual(evs[1], event{Header: sof, Frame: resp}) {
			t.Fatalf("got %+v", evs)
		}
	})
	t.Run("stalled partial frame is dropped", func(t *testing.T) {
		var p parser
		p.feed(rb[:5], t0)
		if _, ok := p.next(); ok {
			t.Fatal("event from a partial frame")
		}
		p.feed(sb, t0.Add(byteTimeout+time.Millisecond))
		ev, ok := p.next()
		if !ok || !reflect.DeepEqual(ev, event{Header: sof, Frame: resp}) {
			t.Fatalf("after a stall got %+v %v, want the new frame", ev, ok)
		}
	})
}

// FuzzFrameParser: any byte stream, split anywhere, never panics; every
// frame it yields re-encodes to bytes that were in the input; and frames
// encoded by us come back whole however the stream is split.
func FuzzFrameParser(f *testing.F) {
	f.Add([]byte{0x01, 0x03, 0x00, 0x02, 0xFE}, uint8(2))
	f.Add([]byte{0x06, 0x01, 0x04, 0x01, 0x13, 0x01, 0xE8}, uint8(1))
	f.Add([]byte{0x15, 0x18, 0x01, 0x02, 0x00, 0x01, 0xFF, 0x01}, uint8(3))
	f.Add([]byte{0x01, 0xFF, 0x00}, uint8(0))
	f.Add([]byte{0x01, 0x0C, 0x00, 0x04, 0x00, 0x02, 0x06, 0x31, 0x05, 0x01, 0x22, 0x00, 0xC9, 0x33}, uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, split uint8) {
		var p parser
		t0 := time.Unix(0, 0)
		s := int(split)
		var chunks [][]byte
		if s > 0 && s < len(in) {
			chunks = [][]byte{in[:s], in[s:]}
		} else {
			chunks = [][]byte{in}
		}
		for _, ev := range parseAll(&p, t0, chunks...) {
			if ev.Header == sof && ev.Err == nil {
				raw, err := ev.Frame.encode()
				if err != nil || !bytes.Contains(in, raw) {
					t.Fatalf("frame %s is not in the input % X", ev.Frame, in)
				}
			}
		}
		// Round trip: the input's bytes as the data of our own frame.
		data := in
		if len(data) > 200 {
			data = data[:200]
		}
		want := frame{Type: typeRequest, Func: 0x04, Data: data}
		raw := mustEncode(t, want)
		var q parser
		evs := parseAll(&q, t0, raw[:min(s, len(raw))], raw[min(s, len(raw)):])
		if len(evs) != 1 || evs[0].Err != nil || !bytes.Equal(evs[0].Frame.Data, data) {
			t.Fatalf("round trip of % X split at %d: %+v", raw, s, evs)
		}
	})
}

func BenchmarkParser(b *testing.B) {
	report := mustEncode(b, frame{Type: typeRequest, Func: 0x04, Data: []byte{0x00, 0x02, 0x06, 0x31, 0x05, 0x01, 0x22, 0x00, 0xC9}})
	stream := bytes.Repeat(append([]byte{ack}, report...), 16)
	var p parser
	now := time.Now()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		p.feed(stream, now)
		for {
			if _, ok := p.next(); !ok {
				break
			}
		}
	}
}
