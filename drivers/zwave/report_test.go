package zwave

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

type reportCase struct {
	Name   string `json:"name"`
	Hex    string `json:"hex"`
	Error  string `json:"error"`
	Values []struct {
		Channel string `json:"channel"`
		Value   string `json:"value"` // TYPE:VALUE
		Unit    string `json:"unit"`
		Bad     bool   `json:"bad"`
	} `json:"values"`
}

func loadReportCases(t testing.TB) []reportCase {
	t.Helper()
	b, err := os.ReadFile("testdata/reports.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []reportCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("testdata/reports.json: %v", err)
	}
	return doc.Cases
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// TestDecodeReport runs the cases of testdata/reports.json.
func TestDecodeReport(t *testing.T) {
	cases := loadReportCases(t)
	if len(cases) < 40 {
		t.Fatalf("only %d report cases loaded", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			vs, err := decodeReport(unhex(t, c.Hex))
			if c.Error != "" {
				if err == nil || !strings.Contains(err.Error(), c.Error) {
					t.Fatalf("error %v, want one containing %q (values %+v)", err, c.Error, vs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) != len(c.Values) {
				t.Fatalf("got %+v, want %d values", vs, len(c.Values))
			}
			for i, w := range c.Values {
				g := vs[i]
				if g.Channel != w.Channel || g.Unit != w.Unit || (g.Err != nil) != w.Bad {
					t.Errorf("value %d: got %+v, want %+v", i, g, w)
				}
				if !w.Bad {
					if got := fmt.Sprintf("%T:%v", g.Value, g.Value); got != w.Value {
						t.Errorf("value %d: got %s, want %s", i, got, w.Value)
					}
				}
			}
		})
	}
}

// Every channel a report can name is one the driver can poll, so any
// reported value can also be configured.
func TestReportedChannelsArePollable(t *testing.T) {
	for _, c := range loadReportCases(t) {
		for _, v := range c.Values {
			name, _, _ := strings.Cut(v.Channel, "_ep")
			if strings.HasPrefix(name, "alarm_") {
				continue // version 1 alarms are reported only
			}
			if _, ok := channelDefs[name]; !ok {
				t.Errorf("%s: channel %q cannot be configured", c.Name, v.Channel)
			}
		}
	}
}

// FuzzReport: the report decoders never panic, and what they return is a
// named channel with a value of an allowed type (or a Bad value).
func FuzzReport(f *testing.F) {
	for _, c := range loadReportCases(f) {
		f.Add(unhex(f, c.Hex))
	}
	f.Fuzz(func(t *testing.T, cmd []byte) {
		vs, err := decodeReport(cmd)
		if err != nil {
			if vs != nil {
				t.Fatalf("values %+v with error %v", vs, err)
			}
			return
		}
		for _, v := range vs {
			if v.Channel == "" {
				t.Fatalf("value without channel from % X", cmd)
			}
			switch v.Value.(type) {
			case float64, int64, bool:
			case nil:
				if v.Err == nil {
					t.Fatalf("nil value without error from % X", cmd)
				}
			default:
				t.Fatalf("value of type %T from % X", v.Value, cmd)
			}
		}
		// The envelope around it decodes the same way.
		if len(cmd) <= 250 {
			f := frame{Type: typeRequest, Func: fnAppCommand, Data: append([]byte{0x00, 0x05, byte(len(cmd))}, cmd...)}
			node, inner, err := parseAppCommand(f)
			if err != nil || node != 5 || string(inner) != string(cmd) {
				t.Fatalf("envelope of % X: node %d, % X, %v", cmd, node, inner, err)
			}
		}
	})
}

func BenchmarkDecodeReport(b *testing.B) {
	cmd := []byte{0x32, 0x02, 0x21, 0x34, 0x00, 0x00, 0x27, 0x15, 0x00, 0x00}
	for b.Loop() {
		if _, err := decodeReport(cmd); err != nil {
			b.Fatal(err)
		}
	}
}
