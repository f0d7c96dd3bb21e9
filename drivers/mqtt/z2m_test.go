package mqtt

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/testpeer"
)

// readmeMappings returns the mappings of the README's "Zigbee2MQTT and
// Tasmota" example, so that the test checks what the README shows.
func readmeMappings(t *testing.T) []json.RawMessage {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "### Zigbee2MQTT and Tasmota")
	if !ok {
		t.Fatal(`README.md has no "### Zigbee2MQTT and Tasmota" section`)
	}
	_, block, ok := strings.Cut(sec, "```json\n")
	if !ok {
		t.Fatal("the Zigbee2MQTT section has no JSON block")
	}
	block, _, _ = strings.Cut(block, "```")
	var doc struct {
		Mappings []json.RawMessage `json:"mappings"`
	}
	if err := json.Unmarshal([]byte("{"+block+"}"), &doc); err != nil {
		t.Fatalf("the Zigbee2MQTT example: %v\n%s", err, block)
	}
	return doc.Mappings
}

// TestZigbee2MQTTAndTasmota runs the README's Zigbee2MQTT and Tasmota
// mappings against a real Mosquitto: a friendly name over two levels is
// captured whole, each member gets its unit, and Tasmota's local time
// without an offset is read in the mapping's zone.
func TestZigbee2MQTTAndTasmota(t *testing.T) {
	br := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	probe := json.RawMessage(`{"topic": "sensors/{device}/{channel}", "payload": "text", "channels": [{"name": "{channel}"}]}`)
	maps, err := json.Marshal(append([]json.RawMessage{probe}, readmeMappings(t)...))
	if err != nil {
		t.Fatal(err)
	}
	settings := `{"brokers": [{"name": "plain", "url": "` + br.URL() + `", "tls": false}], "mappings": ` + string(maps) + `}`
	c := newConnector(t, "z2m", settings, nil)
	col := newCollector()
	listen(t, c, col)
	pub := newPublisher(t, br.URL(), pubOpts{})
	waitSubscribed(t, col, pub, "plain")

	pub.publish("zigbee2mqtt/bridge/state", `{"state":"online"}`)
	pub.publish("zigbee2mqtt/floor1/living_room", `{"temperature":21.5,"humidity":48,"linkquality":120}`)
	pub.publish("tele/plug-1/SENSOR", `{"Time":"2026-11-24T13:41:00","ENERGY":{"Power":42,"Total":12.5}}`)
	want := []string{
		"z2m-bridge/state=online",
		"floor1/living_room/temperature=21.5 °C",
		"floor1/living_room/humidity=48 %",
		"floor1/living_room/linkquality=120",
		"plug-1/power=42 W",
		"plug-1/energy=12.5 kWh",
	}
	col.waitFor(t, 60*time.Second, "every reading", func(rs []core.Reading) bool {
		return len(missing(rs, want)) == 0
	})
	local := time.Date(2026, 11, 24, 12, 41, 0, 0, time.UTC)
	for _, r := range col.readings() {
		if r.Device == "plug-1" && !r.Time.Equal(local) {
			t.Errorf("%s at %v, want 13:41 in Berlin, %v", key(r), r.Time, local)
		}
		if strings.HasPrefix(r.Device, "bridge") {
			t.Errorf("the bridge's topic was read as a device: %s", key(r))
		}
	}
}
