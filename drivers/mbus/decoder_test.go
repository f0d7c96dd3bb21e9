package mbus

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func goldenFrames(t testing.TB, dirs ...string) map[string][]byte {
	t.Helper()
	frames := map[string][]byte{}
	for _, dir := range dirs {
		paths, _ := filepath.Glob("testdata/" + dir + "/*.hex")
		for _, p := range paths {
			text, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if f, err := parseHex(text); err == nil {
				frames[dir+"/"+filepath.Base(p)] = f
			}
		}
	}
	if len(frames) == 0 {
		t.Fatal("no frames in testdata")
	}
	return frames
}

// records is what a decoder holds, as Records.
func records(fields []Field) []Record {
	rs := make([]Record, len(fields))
	for i := range fields {
		rs[i] = fields[i].Record()
	}
	return rs
}

// A Decoder reused from frame to frame decodes each as Decode does, and
// what it handed out for one frame stays as it was after the next.
func TestDecoderReuse(t *testing.T) {
	frames := goldenFrames(t, "frames", "error-frames", "unsupported-frames")
	var d Decoder
	type kept struct {
		name   string
		header Header
		fields []Field
		want   *Telegram
	}
	var all []kept
	for name, f := range frames {
		want, wantErr := Decode(f)
		err := d.Decode(f)
		if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
			t.Fatalf("%s: Decoder says %v, Decode %v", name, err, wantErr)
		}
		if err != nil {
			continue
		}
		got := d.Telegram()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Decoder gives\n%+v\nDecode gives\n%+v", name, got, want)
		}
		all = append(all, kept{name, d.Header, append([]Field(nil), d.Fields...), want})
	}
	if len(all) < 50 {
		t.Fatalf("only %d frames decoded", len(all))
	}
	for _, k := range all {
		if k.header.ID != k.want.Header.ID || k.header.Manufacturer != k.want.Header.Manufacturer ||
			!reflect.DeepEqual(records(k.fields), k.want.Records) {
			t.Errorf("%s: the strings of the frame changed when later frames were decoded", k.name)
		}
	}
}

// DecodeMore appends the records of the next telegram of a readout.
func TestDecodeMore(t *testing.T) {
	t1 := testTelegram("11223344", true, []byte{0x04, 0x03, 0x10, 0x27, 0x00, 0x00}, []byte{0x04, 0x6D, 0x32, 0x37, 0x1F, 0x15})
	t2 := testTelegram("11223344", false, []byte{0x04, 0x13, 0x20, 0x4E, 0x00, 0x00}, []byte{0x02, 0xFD, 0x3A, 0x05, 0x00})
	want1, err := Decode(t1)
	if err != nil {
		t.Fatal(err)
	}
	want2, err := Decode(t2)
	if err != nil {
		t.Fatal(err)
	}
	var d Decoder
	for round := 0; round < 2; round++ {
		if err := d.Decode(t1); err != nil || !d.More {
			t.Fatalf("first telegram: %v, more %v", err, d.More)
		}
		if err := d.DecodeMore(t2); err != nil || d.More {
			t.Fatalf("second telegram: %v, more %v", err, d.More)
		}
		want := append(append([]Record(nil), want1.Records...), want2.Records...)
		if got := records(d.Fields); !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: fields\n%+v\nwant\n%+v", round, got, want)
		}
		if d.Fields[1].Value.Text != "2008-05-31T23:50:00Z" || d.Fields[3].Value.Num != 20 || d.Fields[4].Value.Num != 5 {
			t.Errorf("round %d: fields %+v", round, d.Fields)
		}
	}
	// A damaged further telegram is an error, as a first one is.
	var de *DecodeError
	if err := d.DecodeMore(t2[:len(t2)-1]); !errors.As(err, &de) {
		t.Errorf("truncated telegram: %v", err)
	}
}

// FuzzDecoder decodes two frames with one Decoder, the second with Decode
// or DecodeMore: what it gives for the second is what Decode gives, so
// nothing of the first frame leaks into it.
func FuzzDecoder(f *testing.F) {
	frames := goldenFrames(f, "frames", "error-frames", "unsupported-frames")
	var prev []byte
	for _, fr := range frames {
		if prev != nil {
			f.Add(prev, fr, false)
			f.Add(prev, fr, true)
		}
		prev = fr
	}
	f.Fuzz(func(t *testing.T, first, second []byte, more bool) {
		var d Decoder
		_ = d.Decode(first)
		n := 0
		if more {
			n = len(d.Fields)
		}
		var err error
		if more {
			err = d.DecodeMore(second)
		} else {
			err = d.Decode(second)
		}
		want, wantErr := Decode(second)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("Decoder says %v, Decode %v", err, wantErr)
		}
		if err != nil {
			return
		}
		if len(d.Fields) < n {
			t.Fatalf("DecodeMore dropped fields: %d, had %d", len(d.Fields), n)
		}
		got := d.Telegram()
		got.Records = records(d.Fields[n:])
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Decoder gives\n%+v\nDecode gives\n%+v", got, want)
		}
	})
}

// A warmed-up Decoder allocates one string a frame (its text) and nothing
// else: no records, no boxed values, no buffers.
func TestDecoderAllocations(t *testing.T) {
	frames := goldenFrames(t, "frames")
	var d Decoder
	for name, f := range frames {
		if err := d.Decode(f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for name, f := range frames {
		n := testing.AllocsPerRun(20, func() {
			if err := d.Decode(f); err != nil {
				t.Fatal(err)
			}
		})
		if n > 1 {
			t.Errorf("%s: %v allocations a frame, want at most 1", name, n)
		}
	}
}
