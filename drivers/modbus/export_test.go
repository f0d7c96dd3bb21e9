package modbus

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/testpeer"
)

// TestFloat32ExportsAsMeant: a meter's float32 register holding 230.1
// (0x4366199A, whose exact value is 230.10000610351562) travels from the
// pymodbus peer through the whole gateway (driver, transforms, export) into
// Mosquitto and arrives as 230.1, scaled by 0.001 as 0.2301, and computed
// upon and rounded with decimals as 690.3.
func TestFloat32ExportsAsMeant(t *testing.T) {
	p := startPeer(t, peerOpts{tcp: true})
	br := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	sub := testpeer.Subscribe(t, br.URL(), testpeer.SubscriberOptions{ClientID: "float32-sub", Filter: "telemetry/#"})
	doc := fmt.Sprintf(`{"gateway":{"id":"gw-f32","state_dir":%q},"broker":{"managed":false,"url":%q},"rpc":{"listen":"off"},
		"connectors":[{"name":"rs485","type":"modbus","settings":{"transport":"tcp","address":%q},
		"devices":[{"name":"meter","unit_id":1,"interval":"200ms","channels":[
			{"name":"u1","register":"input","address":10,"type":"float32","unit":"V"},
			{"name":"u1_kv","register":"input","address":10,"type":"float32","scale":0.001,"unit":"kV"},
			{"name":"u1_x3","register":"input","address":10,"type":"float32","expr":"value * 3","decimals":1}]}]}]}`,
		t.TempDir(), br.URL(), p.tcp)
	cfg, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	g, err := appliance.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	var payload string
	testpeer.WaitFor(t, 30*time.Second, "a telemetry message of the meter", func() bool {
		for _, m := range sub.Messages() {
			if m.Topic == "telemetry/gw-f32/meter" {
				payload = string(m.Payload)
				return true
			}
		}
		return false
	})
	for _, want := range []string{`"u1":230.1,`, `"u1_kv":0.2301,`, `"u1_x3":690.3}`} {
		if !strings.Contains(payload, want) {
			t.Errorf("payload %s\nlacks %s", payload, want)
		}
	}
}
