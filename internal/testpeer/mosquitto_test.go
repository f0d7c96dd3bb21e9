package testpeer

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func publish(t *testing.T, url, user, pass, caFile, topic string, n int) {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID("testpeer-pub").
		SetUsername(user).SetPassword(pass).SetConnectTimeout(10 * time.Second)
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		o.SetTLSConfig(&tls.Config{RootCAs: pool})
	}
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", url, tok.Error())
	}
	defer c.Disconnect(250)
	for i := range n {
		tok := c.Publish(topic, 1, false, fmt.Sprint(i))
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
}

// TestMosquittoTLSAndPasswords proves the harness's TLS listener and
// password file work, and that a wrong password is refused.
func TestMosquittoTLSAndPasswords(t *testing.T) {
	m := StartMosquitto(t, MosquittoOptions{TLS: true, Users: map[string]string{"alice": "s3cret"}})
	sub := Subscribe(t, m.URL(), SubscriberOptions{Filter: "t/#", Username: "alice", Password: "s3cret", CAFile: m.CAFile()})
	publish(t, m.URL(), "alice", "s3cret", m.CAFile(), "t/x", 3)
	if !sub.WaitDistinct(3, 30*time.Second) {
		t.Fatalf("got %d distinct messages, want 3", sub.Distinct())
	}
	o := mqtt.NewClientOptions().AddBroker(m.URL()).SetClientID("intruder").
		SetUsername("alice").SetPassword("wrong").SetTLSConfig(&tls.Config{InsecureSkipVerify: true})
	c := mqtt.NewClient(o)
	tok := c.Connect()
	tok.WaitTimeout(30 * time.Second)
	if tok.Error() == nil {
		c.Disconnect(0)
		t.Fatal("a wrong password was accepted")
	}
}

// TestMosquittoRestartKeepsSession proves Stop/Start keep the port and the
// persistent session: messages published while the subscriber is away
// arrive when it comes back.
func TestMosquittoRestartKeepsSession(t *testing.T) {
	m := StartMosquitto(t, MosquittoOptions{Persistence: true})
	sub := Subscribe(t, m.URL(), SubscriberOptions{ClientID: "keeper", Filter: "k/#"})
	sub.Close()
	publish(t, m.URL(), "", "", "", "k/a", 5)
	m.Stop()
	if m.Running() {
		t.Fatal("still running after Stop")
	}
	m.Start()
	sub2 := Subscribe(t, m.URL(), SubscriberOptions{ClientID: "keeper", Filter: "k/#"})
	if !sub2.WaitDistinct(5, 30*time.Second) {
		t.Fatalf("got %d distinct queued messages after restart, want 5", sub2.Distinct())
	}
}

// TestSubscriberKeepsWhatWasQueued: a Subscriber that comes back to its
// persistent session gets every message queued meanwhile, the oldest too.
// The broker sends the session's queue right after CONNACK, while paho
// runs the OnConnect handler that subscribes in a goroutine of its own; a
// message that arrived before the handler registered its route was left
// unseen and unacknowledged. On a loaded machine that lost the first
// readings of TestBootPathLosesNothing; here the handler is made late on
// purpose, as load makes it.
func TestSubscriberKeepsWhatWasQueued(t *testing.T) {
	onConnectPause = 50 * time.Millisecond
	t.Cleanup(func() { onConnectPause = 0 })
	m := StartMosquitto(t, MosquittoOptions{})
	const n = 500
	Subscribe(t, m.URL(), SubscriberOptions{ClientID: "queued", Filter: "q/#"}).Close()
	publish(t, m.URL(), "", "", "", "q/x", n)
	want := make([]string, n)
	for i := range want {
		want[i] = "q/x\x00" + fmt.Sprint(i)
	}
	sub := Subscribe(t, m.URL(), SubscriberOptions{ClientID: "queued", Filter: "q/#"})
	if miss := sub.WaitKeys(want, 30*time.Second); len(miss) > 0 {
		t.Fatalf("%d of %d queued messages never arrived (the first: %q)", len(miss), n, miss[:min(len(miss), 10)])
	}
}
