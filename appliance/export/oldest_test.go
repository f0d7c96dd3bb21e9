package export

import (
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
)

// TestPayloadTime: the time Oldest reports is the "ts" Encode wrote, to
// the millisecond; anything else (a status document, a cut payload) has
// none.
func TestPayloadTime(t *testing.T) {
	at := time.Date(2026, 12, 6, 19, 15, 42, 123456789, time.UTC)
	p := Encode(nil, []core.Reading{{Device: "m", Channel: "c", Value: 1.5, Time: at}})
	got, ok := payloadTime(p)
	if !ok || !got.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("payloadTime(%s) = %v, %v; want %v", p, got, ok, at.Truncate(time.Millisecond))
	}
	for _, bad := range []string{"", `{"state":"online"}`, `{"ts":"2026-12-06T19:1`, `{"ts":"not a time at all, no!!"}`} {
		if got, ok := payloadTime([]byte(bad)); ok {
			t.Errorf("payloadTime(%q) = %v, want none", bad, got)
		}
	}
}

func FuzzPayloadTime(f *testing.F) {
	f.Add([]byte(`{"ts":"2026-12-06T19:15:42.123Z","values":{}}`))
	f.Add([]byte(`{"ts":"`))
	f.Add([]byte(`{"state":"online"}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		if got, ok := payloadTime(p); ok && got.IsZero() {
			t.Errorf("payloadTime(%q): a zero time", p)
		}
	})
}
