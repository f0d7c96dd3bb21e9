package export

import (
	"fmt"
	"strings"
	"strconv"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/osgate/osgate/internal/testpeer"
)

// Throwaway: the boot scenario with plain paho + ConnectRetry.
func TestNegPahoBoot(t *testing.T) {
	for round := range 5 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			b := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{Persistence: true})
			sub := testpeer.Subscribe(t, b.URL(), testpeer.SubscriberOptions{ClientID: "cloud-sub", Filter: "telemetry/#", Key: seqKey})
			b.Stop()
			c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("paho-boot").SetCleanSession(false).
				SetConnectRetry(true).SetConnectRetryInterval(500 * time.Millisecond).SetAutoReconnect(true).
				SetStore(mqtt.NewFileStore(t.TempDir())))
			c.Connect()
			var toks []mqtt.Token
			for i := range 200 {
				toks = append(toks, c.Publish("telemetry/gw/boot", 1, false, "seq="+strconv.Itoa(i)))
			}
			time.Sleep(3 * time.Second)
			b.Start()
			for _, tk := range toks {
				tk.Wait()
			}
			miss := sub.WaitKeys(seqKeys(0, 200), 15*time.Second)
			t.Logf("paho+ConnectRetry: %d of 200 missing; broker log has out of memory: %v", len(miss), contains(b.Log(), "out of memory"))
			c.Disconnect(250)
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
