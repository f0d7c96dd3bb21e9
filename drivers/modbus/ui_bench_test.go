package modbus

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance"
	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/testpeer"
)

// BenchmarkTechnicianPages: the technician's pages of a gateway with 100
// Modbus devices (3 channels each, polled from the pymodbus peer), each op
// one page as a browser fetches it (signed in, rendered on the gateway,
// read to the end). Baseline: the devices.values JSON-RPC call that the
// devices page makes, over HTTP from the same client.
func BenchmarkTechnicianPages(b *testing.B) {
	const n, key = 100, "ui-bench-key-0123456789"
	p := startPeer(b, peerOpts{tcp: true})
	br := testpeer.StartMosquitto(b, testpeer.MosquittoOptions{})
	rpcAddr := testpeer.Addr(testpeer.FreePort(b))
	var devs []string
	for i := range n {
		devs = append(devs, fmt.Sprintf(`{"name":"meter-%03d","unit_id":2,"interval":"5s","timeout":"2s","channels":[
			{"name":"hr5","register":"holding","address":5,"unit":"kWh"},{"name":"ir7","register":"input","address":7,"unit":"V"},
			{"name":"co3","register":"coil","address":3}]}`, i))
	}
	doc := fmt.Sprintf(`{"gateway":{"id":"gw-bench","state_dir":%q},"broker":{"managed":false,"url":%q},
		"rpc":{"listen":%q,"api_keys":[{"name":"bench","sha256":%q,"scope":"write"}]},
		"connectors":[{"name":"line","type":"modbus","settings":{"address":%q,"timeout":"2s"},"devices":[%s]}]}`,
		b.TempDir(), br.URL(), rpcAddr, apikey.Hash(key), p.tcp, strings.Join(devs, ","))
	cfg, err := config.Parse([]byte(doc))
	if err != nil {
		b.Fatal(err)
	}
	g, err := appliance.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	testpeer.WaitTCP(b, rpcAddr, 30*time.Second)
	base := "http://" + rpcAddr
	client := rpc.NewClient(base, key, nil)
	b.Cleanup(client.Close)
	testpeer.WaitFor(b, 60*time.Second, "every device online", func() bool {
		var ds []struct{ State string }
		if err := client.Call(context.Background(), "devices.list", nil, &ds); err != nil {
			b.Fatal(err)
		}
		for _, d := range ds {
			if d.State != "online" {
				return false
			}
		}
		return len(ds) == n
	})
	jar, _ := cookiejar.New(nil)
	web := &http.Client{Jar: jar}
	resp, err := web.PostForm(base+"/ui/login", url.Values{"key": {key}})
	if err != nil || resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/ui/" {
		b.Fatalf("sign-in: %v %v", err, resp)
	}
	resp.Body.Close()
	page := func(b *testing.B, path, want string) {
		for b.Loop() {
			resp, err := web.Get(base + path)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
				b.Fatalf("%s: %s", path, resp.Status)
			}
		}
	}
	b.Run("baseline-devices.values-rpc", func(b *testing.B) {
		for b.Loop() {
			var v []struct{ Device string }
			if err := client.Call(context.Background(), "devices.values", nil, &v); err != nil || len(v) != n {
				b.Fatalf("devices.values: %v (%d devices)", err, len(v))
			}
		}
	})
	b.Run("devices", func(b *testing.B) { page(b, "/ui/devices", "meter-099") })
	b.Run("overview", func(b *testing.B) { page(b, "/ui/", "100 online") })
	b.Run("device", func(b *testing.B) { page(b, "/ui/devices/meter-050", "ir7") })
}
