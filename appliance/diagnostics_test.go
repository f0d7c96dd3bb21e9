package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/testpeer"
)

// TestTechnicianMethods: the methods behind the technician's pages on a
// running gateway. devices.values has each channel's last value, unit and
// trend; gateway.logs filters by level; config.validate names each
// problem's JSON path; gateway.diagnostics holds the redacted
// configuration for an admin key only, and no key hash in any part.
func TestTechnicianMethods(t *testing.T) {
	const readerKey = "diag-reader-key-7a8b9c"
	doc := strings.Replace(fmt.Sprintf(envelope, `{"name":"c1","type":"test-counter","devices":[{"name":"meter-1","interval":"200ms","channels":[
		{"name":"seq","unit":"kWh"},{"name":"broken"}]}]}`),
		`"scope": "admin"}]`, `"scope": "admin"}, {"name": "dashboard", "sha256": "`+apikey.Hash(readerKey)+`", "scope": "read"}]`, 1)
	tg := startGateway(t, doc)

	var vals []struct {
		Device   string
		Channels []struct {
			Channel, Unit, Quality, Error string
			Value                         any
			Errors                        int
			Trend                         [][2]float64
		}
	}
	defer func() {
		if t.Failed() {
			var st, dl any
			tg.call(t, "gateway.status", nil, &st)
			tg.call(t, "devices.list", nil, &dl)
			t.Logf("values %+v\nstatus %+v\ndevices %+v", vals, st, dl)
		}
	}()
	testpeer.WaitFor(t, 30*time.Second, "values of meter-1", func() bool {
		tg.call(t, "devices.values", map[string]any{"device": "meter-1", "points": 120}, &vals)
		return len(vals) == 1 && len(vals[0].Channels) >= 2 && len(vals[0].Channels[0].Trend) >= 1 && vals[0].Channels[1].Errors > 1
	})
	seq, broken := vals[0].Channels[0], vals[0].Channels[1]
	if seq.Channel != "seq" || seq.Unit != "kWh" || seq.Quality != "good" || seq.Value == nil {
		t.Errorf("seq: %+v", seq)
	}
	if broken.Quality != "bad" || !strings.Contains(broken.Error, "illegal data address") {
		t.Errorf("broken: %+v", broken)
	}

	var logs struct{ Lines []string }
	tg.call(t, "gateway.logs", map[string]any{"level": "warn"}, &logs)
	for _, l := range logs.Lines {
		if strings.Contains(l, "level=INFO") {
			t.Errorf("gateway.logs level warn has %q", l)
		}
	}

	var v struct {
		Valid  bool
		Errors []struct{ Path, Message string }
	}
	tg.call(t, "config.validate", map[string]any{"config": `{"gateway":{"id":"x"},"connectors":[{"name":"a","type":"test-counter","devices":[{"name":"d","interval":"fast"}]}]}`}, &v)
	if v.Valid || len(v.Errors) != 1 || v.Errors[0].Path != "connectors[0].devices[0].interval" {
		t.Errorf("config.validate: %+v", v)
	}

	var admin map[string]json.RawMessage
	tg.call(t, "gateway.diagnostics", nil, &admin)
	if !strings.Contains(string(admin["config"]), `"sha256":"***"`) || admin["config_note"] != nil {
		t.Errorf("admin diagnostics config: %s (note %s)", admin["config"], admin["config_note"])
	}
	for _, part := range []string{"versions", "status", "config_status", "connectors", "devices", "values", "logs", "metrics"} {
		if len(admin[part]) < 3 {
			t.Errorf("admin diagnostics: no %s", part)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reader := rpc.NewClient(tg.rpcURL, readerKey, nil)
	defer reader.Close()
	var read map[string]json.RawMessage
	if err := reader.Call(ctx, "gateway.diagnostics", nil, &read); err != nil {
		t.Fatal(err)
	}
	if read["config"] != nil || !strings.Contains(string(read["config_note"]), "needs a key with scope admin") {
		t.Errorf("read key's diagnostics: config %s, note %s", read["config"], read["config_note"])
	}
	for _, d := range []map[string]json.RawMessage{admin, read} {
		for part, raw := range d {
			for _, secret := range []string{apikey.Hash(testKey), apikey.Hash(readerKey), testKey, readerKey} {
				if strings.Contains(string(raw), secret) {
					t.Errorf("diagnostics %s holds a key or its hash", part)
				}
			}
		}
	}
}
