package mqttrpc

import (
	"context"
	"errors"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/osgate/osgate/internal/backoff"
	"github.com/osgate/osgate/internal/mqttconn"
)

const (
	retryFirst   = 100 * time.Millisecond // connect and subscribe back-off
	retryMax     = 10 * time.Second
	publishWait  = 10 * time.Second // how long a response may wait for the broker's ack
	disconnectMs = 250
)

// Run connects to the local broker (persistent session, QoS 1
// subscription on rpc/{gateway}/request/+), answers requests with
// Options.Workers workers until ctx ends, then disconnects and closes the
// id journal. It owns the MQTT client and every goroutine it starts.
// Requests taken from the broker but not answered when ctx ends (running
// or queued) are not answered: the caller's deadline passes and it asks
// again under a new id. Requests that arrive while the Responder is away
// wait in its session on the broker. Run may be called once.
func (r *Responder) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("mqttrpc: Run called twice")
	}
	queue := make(chan message, queueLen)
	connected := make(chan struct{}, 1)
	var client mqtt.Client
	receive := func(_ mqtt.Client, m mqtt.Message) {
		msg := message{topic: m.Topic(), size: len(m.Payload())}
		if int64(msg.size) <= r.opts.MaxBody {
			msg.payload = append([]byte(nil), m.Payload()...)
		}
		select {
		case queue <- msg:
		default:
			r.busy(client, msg)
		}
	}
	client = mqtt.NewClient(r.clientOptions(receive, connected))

	var wg sync.WaitGroup
	for range r.opts.Workers {
		wg.Go(func() { r.work(ctx, client, queue) })
	}
	wg.Go(func() {
		if r.connectFirst(ctx, client) {
			r.subscribeLoop(ctx, client, connected)
		}
	})
	<-ctx.Done()
	// Disconnect first: requests arriving from now on wait in the session
	// on the broker for the next run instead of being taken and lost.
	client.Disconnect(disconnectMs)
	wg.Wait()
	if n := len(queue); n > 0 {
		r.log.Warn("mqttrpc: stopped with requests still queued; they are not answered", "requests", n)
	}
	return r.ids.close()
}

func (r *Responder) clientOptions(receive mqtt.MessageHandler, connected chan<- struct{}) *mqtt.ClientOptions {
	// The persistent session keeps the subscription and queues requests
	// while the Responder is away.
	return mqttconn.Options(r.opts.URL, r.opts.ClientID, r.opts.Username, r.opts.Password).
		// Requests the broker queued arrive right after CONNACK, before
		// any Subscribe of this run: the default handler takes them.
		SetDefaultPublishHandler(receive).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(retryMax).
		SetOnConnectHandler(func(mqtt.Client) {
			r.log.Info("mqttrpc: connected to the local broker", "broker", r.opts.URL)
			select {
			case connected <- struct{}{}:
			default:
			}
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			r.log.Warn("mqttrpc: connection to the local broker lost; reconnecting", "error", err)
		})
}

// connectFirst connects, retrying with back-off until it works or ctx
// ends. Later outages are the client's auto-reconnect's.
func (r *Responder) connectFirst(ctx context.Context, client mqtt.Client) bool {
	return mqttconn.ConnectFirst(ctx, client, retryFirst, retryMax, func(attempt int, err error) {
		r.log.Warn("mqttrpc: cannot connect to the local broker; retrying", "broker", r.opts.URL, "attempt", attempt, "error", err)
	})
}

// subscribeLoop subscribes after every connect (the session keeps the
// subscription, but a broker that lost its persistence does not).
func (r *Responder) subscribeLoop(ctx context.Context, client mqtt.Client, connected <-chan struct{}) {
	filter := r.reqTopic + "+"
	var once sync.Once
	for {
		select {
		case <-connected:
		case <-ctx.Done():
			return
		}
		for failures := 1; ; failures++ {
			tok := client.Subscribe(filter, 1, nil)
			select {
			case <-tok.Done():
			case <-ctx.Done():
				return
			}
			if tok.Error() == nil {
				once.Do(func() { close(r.ready) })
				r.log.Info("mqttrpc: answering JSON-RPC requests", "topic", filter)
				break
			}
			r.log.Warn("mqttrpc: subscribe failed; retrying", "topic", filter, "error", tok.Error())
			if !sleep(ctx, backoff.Policy{First: retryFirst, Max: retryMax}.Delay(failures)) {
				return
			}
		}
	}
}

// work answers queued requests until ctx ends.
func (r *Responder) work(ctx context.Context, client mqtt.Client, queue <-chan message) {
	for {
		select {
		case m := <-queue:
			id, resp := r.handle(ctx, m)
			if id != "" && resp != nil {
				r.publish(client, id, resp)
			}
		case <-ctx.Done():
			return
		}
	}
}

// busy answers a request that found the queue full, from the MQTT client's
// receive path: it does not wait for the broker's ack.
func (r *Responder) busy(client mqtt.Client, m message) {
	r.count(outBusy)
	id, ok := requestID(m.topic, r.reqTopic)
	if !ok {
		r.report("", outBusy)
		return
	}
	r.refused("mqttrpc: request refused: queue full", "id", id, "queued", queueLen)
	client.Publish(r.resTopic+id, 1, false, errorBody(CodeBusy, "busy: too many requests queued; retry later under a new id"))
	r.report(id, outBusy)
}

// publish sends a response at QoS 1 and waits up to publishWait for the
// broker's ack.
func (r *Responder) publish(client mqtt.Client, id string, resp []byte) {
	tok := client.Publish(r.resTopic+id, 1, false, resp)
	t := time.NewTimer(publishWait)
	defer t.Stop()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			r.log.Warn("mqttrpc: response not sent", "id", id, "error", err)
		}
	case <-t.C:
		r.log.Warn("mqttrpc: response not acknowledged by the local broker in time; the client resends it after reconnecting", "id", id, "waited", publishWait)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
