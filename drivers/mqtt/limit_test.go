package mqtt

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/drivers/mapping"
	"github.com/osgate/osgate/internal/testpeer"
)

// allocCeiling is how much the connector may allocate while a field
// broker sends it 96 MB of oversized payloads: a bounded read buffer,
// never the payloads.
const allocCeiling = 16 << 20

// TestPayloadLimit: a field broker delivers three 32 MB messages (QoS 1)
// and one at QoS 0, over max_payload. Each is skipped as it arrives
// (nothing near its size is allocated), counted as too_large, logged and
// acknowledged; a message with a long topic but a small payload passes,
// and so does the legitimate message after them.
func TestPayloadLimit(t *testing.T) {
	broker := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	c := newConnector(t, "limit", fmt.Sprintf(`{
		"brokers": [{"name": "plant", "url": %q, "tls": false}],
		"max_payload": 16384,
		"mappings": [{"topic": "sensors/{device}/{channel}", "payload": "text", "channels": [{"name": "{channel}"}]}]
	}`, broker.URL()), nil)
	col := newCollector()
	listen(t, c, col)
	p := newPublisher(t, broker.URL(), pubOpts{})
	waitSubscribed(t, col, p, "v")

	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, []byte(strings.Repeat("7", 32<<20)), 0o600); err != nil {
		t.Fatal(err)
	}
	pub := testpeer.LookPath(t, "mosquitto_pub", "mosquitto-clients")
	before := mapping.Rejected("limit", mapping.ReasonTooLarge)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	allocBefore := ms.TotalAlloc
	for i, qos := range []string{"1", "1", "1", "0"} {
		out, err := exec.Command(pub, "-h", "127.0.0.1", "-p", fmt.Sprint(broker.Port()), "-q", qos,
			"-t", fmt.Sprintf("sensors/big/v%d", i), "-f", big).CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto_pub: %v: %s", err, out)
		}
	}
	longDevice := strings.Repeat("d", 60<<10) // a topic longer than max_payload, a small payload
	p.publish("sensors/"+longDevice+"/v", "1")
	p.publish("sensors/ok/v", "21.5")
	col.waitFor(t, 120*time.Second, "the reading after the oversized messages", func(rs []core.Reading) bool {
		for _, r := range rs {
			if r.Device == "ok" && r.Value == 21.5 {
				return true
			}
		}
		return false
	})
	runtime.ReadMemStats(&ms)
	alloc := ms.TotalAlloc - allocBefore
	t.Logf("allocated %d KB while 4 messages of 32 MB were refused", alloc>>10)
	if alloc > allocCeiling {
		t.Errorf("allocated %d MB during the flood (ceiling %d MB): payloads over max_payload were read into memory", alloc>>20, allocCeiling>>20)
	}
	if got := mapping.Rejected("limit", mapping.ReasonTooLarge) - before; got != 4 {
		t.Errorf("%v messages counted too_large, want 4", got)
	}
	found := false
	for _, r := range col.readings() {
		if r.Device == "big" {
			t.Errorf("a reading from an oversized message: %s", key(r)[:40])
		}
		if r.Device == longDevice {
			found = true
		}
	}
	if !found {
		t.Error("the message with a long topic and a small payload was lost")
	}
}
