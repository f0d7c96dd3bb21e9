package appliance

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/osgate/osgate/drivers/http"
	"github.com/osgate/osgate/drivers/mapping"
	_ "github.com/osgate/osgate/drivers/mqtt"
	"github.com/osgate/osgate/internal/testpeer"
)

// The flood tests below send what an attacker on the plant network would
// to a running gateway (managed Mosquitto, export, RPC) and check that the
// heap stays under a ceiling and that a legitimate reading still gets
// through.

// retainedCeiling is how much the heap may keep after a flood: the
// bounded caches at their capacity, not the input.
const retainedCeiling = 32 << 20

// TestFloodIngestDeviceNames: a holder of an ingest key sends readings of
// 90,000 distinct devices with long names. Each is exported (discovered
// devices pass), but the per-device state the gateway keeps (export topic
// cache) is bounded, so the heap does not keep the names.
func TestFloodIngestDeviceNames(t *testing.T) {
	port := testpeer.FreePort(t)
	tg := startGateway(t, fmt.Sprintf(envelope, fmt.Sprintf(`{"name":"ingest","type":"http","settings":{"ingest":{"listen":"127.0.0.1:%d","api_keys":[{"name":"plant","sha256":"KEYHASH"}]}}}`, port)))
	addr := testpeer.Addr(port)
	testpeer.WaitTCP(t, addr, 30*time.Second)
	sub := testpeer.Subscribe(t, tg.broker, testpeer.SubscriberOptions{ClientID: "t-flood-legit", Filter: "telemetry/gw-test/legit-meter"})

	const devices, conns, nameLen = 90000, 4, 1000
	before := testpeer.Heap()
	pad := strings.Repeat("d", nameLen)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			br := bufio.NewReader(conn)
			for i := c; i < devices; i += conns {
				conn.SetDeadline(time.Now().Add(60 * time.Second))
				body := `{"v":1}`
				if _, err := fmt.Fprintf(conn, "POST /ingest/%d-%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", i, pad, testKey, len(body), body); err != nil {
					errs <- fmt.Errorf("device %d: %v", i, err)
					return
				}
				status, err := testpeer.ReadHTTPStatus(br)
				if err != nil || status != 202 {
					errs <- fmt.Errorf("device %d: status %d, %v", i, status, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	postLegit(t, addr)
	if !sub.WaitDistinct(1, 60*time.Second) {
		t.Fatal("a legitimate reading after the flood did not reach the broker")
	}
	tg.waitExported(t)
	after := testpeer.Heap()
	t.Logf("heap %d MB before, %d MB after readings of %d devices with %d-byte names", before>>20, after>>20, devices, nameLen)
	if after-before > retainedCeiling {
		t.Errorf("heap grew by %d MB and stayed (ceiling %d MB): per-device state is not bounded", (after-before)>>20, retainedCeiling>>20)
	}
}

// waitExported waits until the broker acknowledged every queued message:
// what is in flight is not what the flood left behind.
func (tg *testGateway) waitExported(t *testing.T) {
	t.Helper()
	testpeer.WaitFor(t, 60*time.Second, "the export queue to drain", func() bool {
		return tg.g.health.Report().Export.Queued == 0
	})
}

// postLegit posts one reading of device legit-meter with the test key.
func postLegit(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	body := `{"v":42}`
	fmt.Fprintf(conn, "POST /ingest/legit-meter HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", testKey, len(body), body)
	if status, err := testpeer.ReadHTTPStatus(bufio.NewReader(conn)); err != nil || status != 202 {
		t.Fatalf("legitimate reading: status %d, %v", status, err)
	}
}

// TestFloodFieldBroker: a field broker delivers three 32 MB payloads and
// 30,000 messages of distinct devices with long names. The oversized ones
// are refused (too_large), the heap does not keep the names, and a
// legitimate reading still reaches the local broker.
func TestFloodFieldBroker(t *testing.T) {
	field := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	tg := startGateway(t, fmt.Sprintf(envelope, fmt.Sprintf(`{"name":"field","type":"mqtt","settings":{
		"brokers":[{"url":%q,"tls":false}],
		"mappings":[{"topic":"plant/{device}","channels":[{"each":""}]},
			{"topic":"bulk","device":"{json:id}","channels":[{"each":"values"}]}]}}`, field.URL())))
	sub := testpeer.Subscribe(t, tg.broker, testpeer.SubscriberOptions{ClientID: "t-flood-field", Filter: "telemetry/gw-test/legit-meter"})
	pub := testpeer.LookPath(t, "mosquitto_pub", "mosquitto-clients")
	mosquittoPub := func(stdin string, args ...string) {
		t.Helper()
		cmd := exec.Command(pub, append([]string{"-h", "127.0.0.1", "-p", fmt.Sprint(field.Port()), "-q", "1"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub: %v: %s", err, out)
		}
	}
	// The connector's session is in place once a reading comes through.
	testpeer.WaitFor(t, 60*time.Second, "the field connector to subscribe", func() bool {
		mosquittoPub("", "-t", "plant/legit-meter", "-m", `{"v":1}`)
		return sub.WaitDistinct(1, time.Second)
	})

	const devices, nameLen = 30000, 1000
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, []byte(`{"v":"`+strings.Repeat("7", 32<<20)+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	before := testpeer.Heap()
	tooLarge := mapping.Rejected("field", mapping.ReasonTooLarge)
	for range 3 {
		mosquittoPub("", "-t", "plant/big", "-f", big)
	}
	var lines strings.Builder
	pad := strings.Repeat("d", nameLen)
	for i := range devices {
		fmt.Fprintf(&lines, `{"id":"%d-%s","values":{"v":1}}`+"\n", i, pad)
	}
	mosquittoPub(lines.String(), "-t", "bulk", "-l")
	mosquittoPub("", "-t", "plant/legit-meter", "-m", `{"v":42}`)
	testpeer.WaitFor(t, 120*time.Second, "the legitimate reading after the flood", func() bool {
		for _, m := range sub.Messages() {
			if strings.Contains(string(m.Payload), `"v":42`) {
				return true
			}
		}
		return false
	})
	tg.waitExported(t)
	after := testpeer.Heap()
	t.Logf("heap %d MB before, %d MB after 3 payloads of 32 MB and %d devices with %d-byte names", before>>20, after>>20, devices, nameLen)
	if after-before > retainedCeiling {
		t.Errorf("heap grew by %d MB and stayed (ceiling %d MB)", (after-before)>>20, retainedCeiling>>20)
	}
	if got := mapping.Rejected("field", mapping.ReasonTooLarge) - tooLarge; got != 3 {
		t.Errorf("%v oversized messages counted, want 3", got)
	}
}
