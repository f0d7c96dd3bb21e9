//go:build vmtest

package vmtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/osgate/osgate/internal/sign"
)

// rpcCall calls the gateway's JSON-RPC service with key; it returns the
// HTTP status and, on 200, the result (or the JSON-RPC error as err).
func rpcCall(port int, key, method string, params any) (int, json.RawMessage, error) {
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/rpc", port), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	var r struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("decode %s: %w", b, err)
	}
	if r.Error != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s: error %d: %s", method, r.Error.Code, r.Error.Message)
	}
	return resp.StatusCode, r.Result, nil
}

// status is the part of gateway.status the test reads.
type status struct {
	ID      string `json:"id"`
	Started string `json:"started"`
	Health  struct {
		Status string `json:"status"`
		Live   bool   `json:"live"`
	} `json:"health"`
}

func gatewayStatus(port int, key string) (status, error) {
	var s status
	_, res, err := rpcCall(port, key, "gateway.status", nil)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(res, &s)
}

// configStatus is the part of gateway.config.status the test reads.
type configStatus struct {
	Source  string `json:"source"`
	Version string `json:"version"`
}

func gatewayConfigStatus(port int, key string) (configStatus, error) {
	var s configStatus
	_, res, err := rpcCall(port, key, "gateway.config.status", nil)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(res, &s)
}

// telemetry is one export message.
type telemetry struct {
	Topic   string            `json:"-"`
	TS      time.Time         `json:"ts"`
	Values  map[string]any    `json:"values"`
	Quality map[string]string `json:"quality"`
	Units   map[string]string `json:"units"`
	arrived time.Time
}

// subscriber collects the telemetry a client receives.
type subscriber struct {
	client mqtt.Client
	mu     sync.Mutex
	got    []telemetry
}

// mqttConnect connects a client to the VM's broker. With clean false the
// broker keeps the client's session (subscriptions and queued QoS 1
// messages) while it is away, across broker restarts too. With follow set
// the client reconnects whenever the broker restarts (it is osgate's child
// and restarts with it) and subscribes to follow on every connect.
func mqttConnect(t *testing.T, port int, user, password, id string, clean bool, follow string) (*subscriber, error) {
	s := &subscriber{}
	opts := mqtt.NewClientOptions().
		AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", port)).
		SetClientID(id).SetUsername(user).SetPassword(password).
		SetCleanSession(clean).SetAutoReconnect(follow != "").SetConnectRetry(false).
		SetMaxReconnectInterval(2 * time.Second).
		SetConnectTimeout(20 * time.Second).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { s.add(t, m) })
	if follow != "" {
		opts.SetOnConnectHandler(func(c mqtt.Client) {
			go c.Subscribe(follow, 1, nil)
		})
	}
	s.client = mqtt.NewClient(opts)
	tok := s.client.Connect()
	if !tok.WaitTimeout(30 * time.Second) {
		return nil, fmt.Errorf("mqtt connect %s: timed out", id)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("mqtt connect %s: %w", id, err)
	}
	return s, nil
}

func (s *subscriber) subscribe(filter string) error {
	tok := s.client.Subscribe(filter, 1, nil)
	if !tok.WaitTimeout(30 * time.Second) {
		return fmt.Errorf("subscribe %s: timed out", filter)
	}
	return tok.Error()
}

func (s *subscriber) add(t *testing.T, m mqtt.Message) {
	var tm telemetry
	if err := json.Unmarshal(m.Payload(), &tm); err != nil {
		t.Errorf("telemetry on %s is not the export payload: %v: %s", m.Topic(), err, m.Payload())
		return
	}
	tm.Topic = m.Topic()
	tm.arrived = time.Now()
	s.mu.Lock()
	s.got = append(s.got, tm)
	s.mu.Unlock()
}

// find returns the first message that match accepts.
func (s *subscriber) find(match func(telemetry) bool) (telemetry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.got {
		if match(m) {
			return m, true
		}
	}
	return telemetry{}, false
}

// count returns how many distinct messages match accepts.
func (s *subscriber) count(match func(telemetry) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[time.Time]bool{}
	for _, m := range s.got {
		if match(m) {
			seen[m.TS] = true
		}
	}
	return len(seen)
}

// all returns the messages of one topic in the order they arrived.
func (s *subscriber) all(topic string) []telemetry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []telemetry
	for _, m := range s.got {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

func (s *subscriber) close() { s.client.Disconnect(250) }

// fleet is a fleet server on the host that the gateway pulls its
// configuration from (signed with ed25519, as an http:// URL requires).
type fleet struct {
	srv     *http.Server
	port    int
	mu      sync.Mutex
	doc     []byte
	sig     []byte
	down    bool
	fetched int
	pub     string
	key     ed25519.PrivateKey
}

func startFleet(t *testing.T) *fleet {
	pub, priv, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := sign.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{port: l.Addr().(*net.TCPAddr).Port, pub: pub, key: key}
	f.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		switch {
		case f.down:
			http.Error(w, "fleet server down for the test", http.StatusServiceUnavailable)
		case r.URL.Path == "/osgate.json":
			f.fetched++
			w.Write(f.doc)
		case r.URL.Path == "/osgate.json.sig":
			w.Write(f.sig)
		default:
			http.NotFound(w, r)
		}
	})}
	go f.srv.Serve(l)
	t.Cleanup(func() { f.srv.Close() })
	return f
}

// publish makes doc (signed) the gateway's configuration on the server.
func (f *fleet) publish(doc []byte) {
	f.mu.Lock()
	f.doc, f.sig = doc, sign.Sign(f.key, doc)
	f.mu.Unlock()
}

func (f *fleet) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func randomKey(t *testing.T) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
