package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/osgate/osgate/appliance/mqttrpc"
	"github.com/osgate/osgate/appliance/rpc"
	"github.com/osgate/osgate/internal/apikey"
	"github.com/osgate/osgate/internal/scope"
	"github.com/osgate/osgate/internal/testpeer"
)

// TestRPCSignWithMosquittoPub is the README's workflow: osgate rpc keygen
// makes an operator key, osgate rpc sign a request, mosquitto_pub sends
// it, and a gateway's responder that knows the public key answers.
func TestRPCSignWithMosquittoPub(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "ops.key")
	var out bytes.Buffer
	if err := rpcCmd(context.Background(), []string{"keygen", keyFile}, &out); err != nil {
		t.Fatal(err)
	}
	pub, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "public_key: ")
	if !ok {
		t.Fatalf("rpc keygen printed %q", out.String())
	}

	mq := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	srv, err := rpc.New(rpc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Register("device.read", scope.Read, func(ctx context.Context, params json.RawMessage) (any, error) {
		return map[string]any{"params": params, "caller": rpc.Caller(ctx)}, nil
	})
	r, err := mqttrpc.New(mqttrpc.Options{URL: mq.URL(), GatewayID: "gw-cli", Server: srv, StateDir: dir,
		Operators: []apikey.Operator{{Name: "ops", PublicKey: pub}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	answers := make(chan string, 8)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(mq.URL()).SetClientID("cloud-app").
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { answers <- m.Topic() + " " + string(m.Payload()) }))
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Subscribe("rpc/gw-cli/response/+", 1, nil); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	pubCmd := testpeer.LookPath(t, "mosquitto_pub", "mosquitto-clients")
	host, port, _ := strings.Cut(mq.Addr(), ":")
	// The responder subscribes in its own time: sign and send under new
	// ids until the first answer.
	saved := stderr
	defer func() { stderr = saved }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var payload, topic bytes.Buffer
		stderr = &topic
		err := rpcCmd(context.Background(), []string{"sign", "-key", keyFile, "-signer", "ops", "-gateway", "gw-cli", "-expires", "2m",
			"device.read", `{"device":"meter-1"}`}, &payload)
		if err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(topic.String())
		if len(fields) < 3 || !strings.HasPrefix(fields[2], "rpc/gw-cli/request/") {
			t.Fatalf("rpc sign named no topic: %q", topic.String())
		}
		reqTopic := strings.TrimSuffix(fields[2], ";")
		cmd := exec.Command(pubCmd, "-h", host, "-p", port, "-q", "1", "-t", reqTopic, "-s")
		cmd.Stdin = &payload
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub: %v: %s", err, b)
		}
		select {
		case a := <-answers:
			want := strings.Replace(reqTopic, "/request/", "/response/", 1) + " "
			if !strings.HasPrefix(a, want) || !strings.Contains(a, `"result":{"caller":"ops","params":{"device":"meter-1"}}`) {
				t.Fatalf("answer %q, want a result on %s", a, want)
			}
			return
		case <-time.After(2 * time.Second):
		}
		if time.Now().After(deadline) {
			t.Fatal("no answer to a request made by rpc sign within 60 s")
		}
	}
}

func TestRPCSignRefuses(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "ops.key")
	if err := rpcCmd(context.Background(), []string{"keygen", keyFile}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	saved := stderr
	stderr = &bytes.Buffer{}
	defer func() { stderr = saved }()
	for _, args := range [][]string{
		{"sign", "device.read"},
		{"sign", "-key", keyFile, "-signer", "ops", "device.read"},
		{"sign", "-key", keyFile, "-signer", "ops", "-gateway", "gw", "-expires", "2h", "device.read"},
		{"sign", "-key", keyFile, "-signer", "ops", "-gateway", "gw", "device.read", "{not json"},
		{"sign", "-key", keyFile, "-signer", "ops", "-gateway", "gw", "-id", "a/b", "device.read"},
		{"sign", "-key", filepath.Join(dir, "missing.key"), "-signer", "ops", "-gateway", "gw", "device.read"},
		{"keygen"},
	} {
		if err := rpcCmd(context.Background(), args, &bytes.Buffer{}); err == nil {
			t.Errorf("rpc %q succeeded", args)
		}
	}
}
