package appliance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/config/source"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/sign"
	"github.com/osgate/osgate/internal/testpeer"
)

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSecretsNeverLeave plants a distinct canary in every secret-bearing
// key of a configuration (broker and bridge passwords, the fleet's token
// and presigned query, HTTP poll auth, a Cookie and a key header, a token
// in a polled URL's query, field broker passwords) and runs it through the
// whole supervisor: a local bootstrap, a fleet (nginx) that serves a
// document with a broken password, then one that fails at start and is
// rolled back, a polled server that echoes what it is sent in its error
// answers, a field broker that refuses a wrong password. Then no canary
// may be in the log (debug level), /metrics, any RPC answer, the state
// dir's files other than those that must hold secrets (config.db, whose
// bad versions are checked by reading them back, and mosquitto.conf).
func TestSecretsNeverLeave(t *testing.T) {
	var canaries []string
	canary := func(what string) string {
		b := make([]byte, 6)
		rand.Read(b)
		c := "canary" + what + hex.EncodeToString(b)
		canaries = append(canaries, c)
		return c
	}
	dir := t.TempDir()
	state, www := filepath.Join(dir, "state"), filepath.Join(dir, "www")
	if err := os.MkdirAll(filepath.Join(www, "gateways"), 0o755); err != nil {
		t.Fatal(err)
	}
	field := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{Users: map[string]string{"field": canary("FieldPw")}})
	cloud := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{Users: map[string]string{"bridge": canary("BridgePw")}})
	nginx := testpeer.StartNginx(t, testpeer.NginxOptions{Root: www, Server: `
		location = /data { return 401 "denied: args=$args key=$http_x_api_key cookie=$http_cookie auth=$http_authorization"; }
		location = /basic { return 403 "who is $http_authorization?"; }`})
	pub, privText, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := sign.ParsePrivateKey(privText)
	bport, rport, iport := testpeer.FreePort(t), testpeer.FreePort(t), testpeer.FreePort(t)
	const key = "canary-test-rpc-key"
	fieldPw, bridgePw := canaries[0], canaries[1]
	brokerPw, fleetToken, fleetSig := canary("BrokerPw"), canary("FleetToken"), canary("FleetSig")
	cookie, headerKey, queryToken, bearer, basicPw, wrongPw := canary("Cookie"), canary("Header"), canary("Query"), canary("Bearer"), canary("Basic"), canary("WrongPw")

	// doc is the configuration; bridgePassword lets a fleet document
	// break it, rpcAddr lets one make the start fail.
	doc := func(bridgePassword, rpcAddr string) string {
		return fmt.Sprintf(`{
  "gateway": {"id": "gw-canary", "state_dir": %q},
  "broker": {"listen": %q, "username": "gw", "password": %q,
    "bridge": {"address": %q, "tls": false, "username": "bridge", "password": %q}},
  "rpc": {"listen": %q, "api_keys": [{"name": "t", "sha256": %q, "scope": "admin"}]},
  "connectors": [
    {"name": "web", "type": "http", "settings": {"headers": {"Cookie": "session=%s", "X-Api-Key": %q}},
     "devices": [
       {"name": "api", "interval": "1s", "url": "http://%s/data?token=%s", "auth": {"type": "bearer", "token": %q},
        "channels": [{"name": "v", "path": "v"}]},
       {"name": "basic", "interval": "1s", "url": "http://%s/basic", "auth": {"type": "basic", "username": "u", "password": %q},
        "channels": [{"name": "v", "path": "v"}]}]},
    {"name": "field", "type": "mqtt", "settings": {
      "brokers": [{"name": "ok", "url": %q, "tls": false, "username": "field", "password": %q},
                  {"name": "wrong", "url": %q, "tls": false, "username": "field", "password": %q}],
      "mappings": [{"topic": "m/{device}", "channels": [{"each": ""}]}]}},
    {"name": "in", "type": "http", "settings": {"ingest": {"listen": %q, "api_keys": [{"name": "k", "sha256": %q}]}}}
  ]%%s}`, state, testpeer.Addr(bport), brokerPw, cloud.Addr(), bridgePassword, rpcAddr, apikey.Hash(key),
			cookie, headerKey, nginx.Addr(), queryToken, bearer, nginx.Addr(), basicPw,
			field.URL(), fieldPw, field.URL(), wrongPw, testpeer.Addr(iport), apikey.Hash("ingest-key"))
	}
	remote := fmt.Sprintf(`, "remote": {"url": "http://%s/gateways/{gateway}.json?sig=%s", "signature_url": "http://%s/gateways/{gateway}.json.sig?sig=%s",
		"bearer_token": %q, "public_key": %q, "interval": "1s"}`, nginx.Addr(), fleetSig, nginx.Addr(), fleetSig, fleetToken, pub)
	local := fmt.Sprintf(doc(bridgePw, testpeer.Addr(rport)), remote)
	publish := func(d string) {
		t.Helper()
		p := filepath.Join(www, "gateways", "gw-canary.json")
		if err := os.WriteFile(p+".sig", sign.Sign(priv, []byte(d)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	broken := canary("Broken")

	cfgFile := filepath.Join(dir, "osgate.json")
	if err := os.WriteFile(cfgFile, []byte(local), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			l := logs.String()
			t.Logf("log tail:\n%s", l[max(0, len(l)-6000):])
		}
	})
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	boot, err := config.Parse([]byte(local))
	if err != nil {
		t.Fatal(err)
	}
	src, err := source.New(source.Options[*config.Config]{
		LocalPath: cfgFile, StateDir: state, Gateway: boot.Gateway.ID, Remote: boot.Remote,
		Validate: config.Parse, ValidatePulled: config.ParsePulled([]byte(local)), Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewSupervisor(src, log).Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("supervisor did not stop within 60 s")
		}
		src.Close()
	}
	t.Cleanup(stop)
	testpeer.WaitTCP(t, testpeer.Addr(rport), 60*time.Second)
	client := rpc.NewClient("http://"+testpeer.Addr(rport), key, nil)
	defer client.Close()
	call := func(method string, params any) json.RawMessage {
		t.Helper()
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		var res json.RawMessage
		if err := client.Call(cctx, method, params, &res); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		return res
	}
	status := func() source.Status {
		var st source.Status
		json.Unmarshal(call("gateway.config.status", nil), &st)
		return st
	}
	// The fleet has nothing yet: the local file runs. Then it serves a
	// document whose bridge password spans lines: refused (or, if it were
	// taken, rolled back when it does not start).
	testpeer.WaitFor(t, 60*time.Second, "the local file to run", func() bool { return status().Source == source.Local })
	publish(fmt.Sprintf(doc(broken+"\naddress evil:1", testpeer.Addr(rport)), ""))
	testpeer.WaitFor(t, 60*time.Second, "the broken fleet document to be refused", func() bool {
		st, err := statusOrNil(client)
		return err == nil && (st.LastOutcome == "refused" || len(st.BadVersions) > 0)
	})
	// Then one that fails at start (its RPC port is taken): rolled back
	// and marked bad.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	publish(fmt.Sprintf(doc(bridgePw, taken.Addr().String()), ""))
	testpeer.WaitFor(t, 90*time.Second, "the failing fleet document to be marked bad", func() bool {
		select {
		case err := <-done:
			t.Fatalf("the supervisor stopped: %v", err)
		default:
		}
		st, err := statusOrNil(client)
		return err == nil && len(st.BadVersions) > 0 && strings.Contains(st.BadVersions[len(st.BadVersions)-1].Reason, "address already in use")
	})
	// Poll errors with the echoed credentials have been seen by now.
	testpeer.WaitFor(t, 60*time.Second, "the polled server's refusals", func() bool {
		return strings.Contains(logs.String(), "who is") && strings.Contains(logs.String(), "denied: args=")
	})
	testpeer.WaitFor(t, 60*time.Second, "the wrong field password to be refused", func() bool {
		return strings.Contains(logs.String(), "cannot connect to field broker")
	})

	var answers []string
	for _, m := range []string{"gateway.status", "gateway.config", "gateway.config.status", "devices.list", "connectors.list"} {
		answers = append(answers, m+": "+string(call(m, nil)))
	}
	for _, dev := range []string{"api", "basic"} {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		var res json.RawMessage
		err := client.Call(cctx, "device.read", map[string]any{"device": dev}, &res)
		ccancel()
		answers = append(answers, fmt.Sprintf("device.read %s: %s %v", dev, res, err))
	}
	resp, err := http.Get("http://" + testpeer.Addr(rport) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	stop()

	// The bad versions as config.db keeps them, read back by a new source.
	again, err := source.New(source.Options[*config.Config]{LocalPath: cfgFile, StateDir: state, Validate: config.Parse})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := json.Marshal(again.Status().BadVersions)
	again.Close()
	if !strings.Contains(string(stored), "reason") {
		t.Errorf("config.db keeps no bad version: %s", stored)
	}

	where := map[string]string{
		"the log":                  logs.String(),
		"/metrics":                 string(metrics),
		"the RPC answers":          strings.Join(answers, "\n"),
		"config.db's bad versions": string(stored),
	}
	err = filepath.WalkDir(state, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Base(p) {
		case source.CacheFile, "mosquitto.conf":
			return nil // hold the configuration and the bridge password by design
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		where[strings.TrimPrefix(p, state+"/")] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range where {
		for _, c := range canaries {
			if i := strings.Index(text, c); i >= 0 {
				t.Errorf("%s shows the secret %s: …%s…", name, c, text[max(0, i-150):min(len(text), i+len(c)+50)])
			}
		}
	}
	if len(where) < 6 {
		t.Errorf("looked at only %d places: %v", len(where), keysOf(where))
	}
	t.Logf("looked for %d canaries in %v", len(canaries), keysOf(where))
}

func statusOrNil(c *rpc.Client) (source.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var st source.Status
	err := c.Call(ctx, "gateway.config.status", nil, &st)
	return st, err
}

func keysOf(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
