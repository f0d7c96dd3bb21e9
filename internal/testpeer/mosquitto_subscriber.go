package testpeer

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// SubscriberOptions shape a Subscriber.
type SubscriberOptions struct {
	// ClientID is fixed so the broker keeps the session (default
	// "testpeer-sub").
	ClientID string
	// Filter is the topic filter (default "#").
	Filter string
	// Key names a message for counting: messages with the same key are
	// duplicates (default: topic + payload).
	Key func(topic string, payload []byte) string
	// Username and Password authenticate; CAFile enables TLS.
	Username, Password, CAFile string
}

// Message is one message a Subscriber received.
type Message struct {
	Topic   string
	Payload []byte
	// Retained is set on a retained message the broker sent because of
	// the subscription (not on one published while subscribed).
	Retained bool
	// At is when it arrived.
	At time.Time
}

// Subscriber is an MQTT client with a persistent session (clean session
// false) subscribed at QoS 1 that keeps every message it receives and
// counts them by key. It reconnects by itself while the broker is away.
type Subscriber struct {
	t      testing.TB
	client mqtt.Client
	key    func(string, []byte) string

	mu     sync.Mutex
	msgs   []Message
	counts map[string]int
	dups   int
	change chan struct{} // closed and replaced on every message
}

// Subscribe connects to url and subscribes, waiting up to 30 s for the
// subscription to be acknowledged. It disconnects when the test ends.
func Subscribe(t testing.TB, url string, opts SubscriberOptions) *Subscriber {
	t.Helper()
	if opts.ClientID == "" {
		opts.ClientID = "testpeer-sub"
	}
	if opts.Filter == "" {
		opts.Filter = "#"
	}
	s := &Subscriber{t: t, key: opts.Key, counts: map[string]int{}, change: make(chan struct{})}
	if s.key == nil {
		s.key = func(topic string, payload []byte) string { return topic + "\x00" + string(payload) }
	}
	subscribed := make(chan error, 1)
	o := mqtt.NewClientOptions().
		AddBroker(url).
		SetClientID(opts.ClientID).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(200 * time.Millisecond).
		SetMaxReconnectInterval(time.Second).
		SetConnectTimeout(5 * time.Second).
		SetUsername(opts.Username).
		SetPassword(opts.Password)
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			t.Fatalf("testpeer: subscriber CA: %v", err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		o.SetTLSConfig(&tls.Config{RootCAs: pool})
	}
	o.SetOnConnectHandler(func(c mqtt.Client) {
		time.Sleep(onConnectPause)
		tok := c.Subscribe(opts.Filter, 1, nil) // the route is added before Connect
		go func() {
			tok.Wait()
			select {
			case subscribed <- tok.Error():
			default:
			}
		}()
	})
	s.client = mqtt.NewClient(o)
	// The broker sends what the session queued right after CONNACK,
	// before OnConnect has subscribed again: the route must be there
	// already, or paho leaves those messages unseen and unacknowledged.
	s.client.AddRoute(opts.Filter, s.receive)
	s.client.Connect()
	select {
	case err := <-subscribed:
		if err != nil {
			t.Fatalf("testpeer: subscribe %s on %s: %v", opts.Filter, url, err)
		}
	case <-time.After(30 * time.Second):
		s.client.Disconnect(0)
		t.Fatalf("testpeer: subscriber could not subscribe on %s within 30s", url)
	}
	t.Cleanup(s.Close)
	return s
}

// onConnectPause delays the subscription of each connection, as a loaded
// machine may (set by this package's tests only).
var onConnectPause time.Duration

func (s *Subscriber) receive(_ mqtt.Client, m mqtt.Message) {
	k := s.key(m.Topic(), m.Payload())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, Message{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...), Retained: m.Retained(), At: time.Now()})
	s.counts[k]++
	if s.counts[k] > 1 {
		s.dups++
	}
	close(s.change)
	s.change = make(chan struct{})
}

// Close disconnects, leaving the session on the broker.
func (s *Subscriber) Close() {
	if s.client.IsConnected() {
		s.client.Disconnect(250)
	}
}

// Messages is a copy of everything received so far, in arrival order.
func (s *Subscriber) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Distinct is how many different keys were received.
func (s *Subscriber) Distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.counts)
}

// Duplicates is how many messages repeated a key already received (QoS 1
// allows them).
func (s *Subscriber) Duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dups
}

// Has reports whether a message with this key arrived.
func (s *Subscriber) Has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[key] > 0
}

// Missing returns the keys of want that have not arrived, sorted.
func (s *Subscriber) Missing(want []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var miss []string
	for _, k := range want {
		if s.counts[k] == 0 {
			miss = append(miss, k)
		}
	}
	sort.Strings(miss)
	return miss
}

// WaitDistinct waits until at least n distinct keys arrived or within
// passed, and reports whether they did.
func (s *Subscriber) WaitDistinct(n int, within time.Duration) bool {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got, ch := len(s.counts), s.change
		s.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// WaitMessage waits until a message that match accepts has arrived (it
// looks at every message received so far, in order, then at new ones) or
// within passed, and returns the first such message.
func (s *Subscriber) WaitMessage(within time.Duration, match func(Message) bool) (Message, bool) {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	seen := 0
	for {
		s.mu.Lock()
		msgs, ch := s.msgs[seen:], s.change
		s.mu.Unlock()
		for _, m := range msgs {
			if match(m) {
				return m, true
			}
		}
		seen += len(msgs)
		select {
		case <-ch:
		case <-deadline.C:
			return Message{}, false
		}
	}
}

// WaitKeys waits until every key of want arrived or within passed, and
// returns those still missing.
func (s *Subscriber) WaitKeys(want []string, within time.Duration) []string {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch := s.change
		s.mu.Unlock()
		miss := s.Missing(want)
		if len(miss) == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-deadline.C:
			return s.Missing(want)
		}
	}
}
