package fleet

import (
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/export"
)

func gw(id, state, version, health, at string, labels map[string]string) Gateway {
	g := Gateway{ID: id, Doc: export.GatewayStatus{ID: id, State: state, Version: version, At: at, Labels: labels}, Bridge: "1"}
	if health != "" {
		g.Doc.Health = &export.HealthStatus{Status: health}
	}
	return g
}

func TestSelector(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	seen := func(ago time.Duration) string { return now.Add(-ago).Format("2006-01-02T15:04:05.000Z") }
	cohort := 7
	fleet := []Gateway{
		gw("gw-1", "online", "v1.4.0", "ok", seen(time.Minute), map[string]string{"site": "berlin", "hw": "pi4"}),
		gw("gw-2", "online", "v1.3.0", "degraded", seen(20*time.Minute), map[string]string{"site": "berlin", "hw": "pi5"}),
		gw("gw-3", "offline", "v1.4.0", "", seen(3*time.Hour), map[string]string{"site": "hamburg"}),
		gw("gw-4", "online", "v1.4.1-rc1", "ok", "", nil),
	}
	fleet[3].Bridge = "0" // its document says online, its bridge is down
	fleet[0].Doc.OTA = &export.OTAStatus{State: "confirmed", Cohort: &cohort}
	for _, c := range []struct{ sel, want string }{
		{"", "gw-1,gw-2,gw-3,gw-4"},
		{"all", "gw-1,gw-2,gw-3,gw-4"},
		{"gw-1", "gw-1"},
		{"gw-1, gw-3", "gw-1,gw-3"},
		{"gw-*", "gw-1,gw-2,gw-3,gw-4"},
		{"gw-1,site=berlin", "gw-1"}, // ids: any; terms: all
		{"site=berlin", "gw-1,gw-2"},
		{"site=berlin,hw=pi5", "gw-2"},
		{"site!=berlin", "gw-3,gw-4"}, // no label is "not berlin"
		{"site=*", "gw-1,gw-2,gw-3"},
		{"version=v1.4.*", "gw-1,gw-3,gw-4"},
		{"version!=v1.4.0", "gw-2,gw-4"},
		{"health=ok", "gw-1,gw-4"},
		{"health!=ok", "gw-2,gw-3"},
		{"state=online", "gw-1,gw-2"},
		{"state=offline", "gw-3,gw-4"},
		{"ota=confirmed", "gw-1"},
		{"cohort=07", "gw-1"},
		{"id=gw-[23]", "gw-2,gw-3"},
		{"seen<10m", "gw-1"},
		{"seen<1h", "gw-1,gw-2"},
		{"seen>1h", "gw-3"}, // never seen: neither
		{"nosuch=x", ""},
	} {
		s, err := ParseSelector(c.sel)
		if err != nil {
			t.Errorf("%q: %v", c.sel, err)
			continue
		}
		var got []string
		for _, g := range s.Select(fleet, now) {
			got = append(got, g.ID)
		}
		if strings.Join(got, ",") != c.want {
			t.Errorf("%q selects %v, want %s", c.sel, got, c.want)
		}
	}
}

func TestSelectorErrors(t *testing.T) {
	for sel, want := range map[string]string{
		"seen<soon":              `"seen<soon": seen< and seen> take a duration such as 10m`,
		"seen>-1m":               `seen< and seen> take a duration`,
		"=berlin":                `"=berlin" has no key before the =`,
		"site=[":                 `"site=[": syntax error in pattern`,
		"gw-[":                   `"gw-[" is not a gateway id or pattern`,
		strings.Repeat("a", 5e3): "longer than 4096 bytes",
	} {
		_, err := ParseSelector(sel)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.20q: %v, want %q", sel, err, want)
		}
	}
}

// FuzzSelector: any text parses or is refused, never panics, and a parsed
// selector matches without panicking.
func FuzzSelector(f *testing.F) {
	for _, s := range []string{"", "all", "gw-1,gw-2", "site=berlin,hw!=pi4", "seen<10m", "seen>1h", "version=v1.*", "gw-[", "=x", "a=b=c", "a!=", ",,,", "cohort=07"} {
		f.Add(s)
	}
	cohort := 3
	g := gw("gw-1", "online", "v1", "ok", "2026-12-06T12:00:00.000Z", map[string]string{"site": "berlin"})
	g.Doc.OTA = &export.OTAStatus{State: "idle", Cohort: &cohort}
	f.Fuzz(func(t *testing.T, text string) {
		s, err := ParseSelector(text)
		if err != nil {
			return
		}
		s.Match(g, time.Now())
		s.Match(Gateway{ID: "x"}, time.Now())
		_ = s.String()
	})
}
