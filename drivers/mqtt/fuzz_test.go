package mqtt

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/lru"
	"github.com/osgate/osgate/internal/mqttwire"
)

// FuzzSettings: any settings document gives a connector or an error, never
// a panic.
func FuzzSettings(f *testing.F) {
	f.Add(`{"brokers":[{"url":"tcp://h:1","tls":false}],"mappings":[{"topic":"a/{device}","channels":[{"name":"v"}]}]}`)
	f.Add(`{"brokers":[{"url":"ssl://h:1","ca_file":"x","qos":2,"keep_alive":"1s"}],"mappings":[{"topic":"#","device":"{json:id}","time":{"path":"t","format":"unix"},"channels":[{"each":""}]}]}`)
	f.Add(`{"brokers":[{"url":"ws://[::1]:1/p","tls":false,"persistent_session":false}],"mappings":[{"topic":"s/{device}/{c}","payload":"text","channels":[{"name":"{c}","type":"bool"}]}],"only_configured":true}`)
	f.Add(`{"brokers":[{}],"mappings":[{}]}`)
	f.Add(`{`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, settings string) {
		c, err := New(core.ConnectorConfig{Name: "fz", Settings: []byte(settings),
			Devices: []*core.Device{{Name: "d", Settings: []byte(`{"source":"x"}`)}}})
		if err == nil {
			if len(c.(*Connector).subs) == 0 {
				t.Fatal("a connector without subscriptions")
			}
			c.Close()
		} else if err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}

// byteConn is a net.Conn whose reads come from a byte slice: the broker's
// side of a connection, for the framing of limitConn alone.
type byteConn struct {
	net.Conn
	r *bytes.Reader
}

func (c byteConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// publishPacket is an MQTT 3.1.1 PUBLISH.
func publishPacket(qos byte, id uint16, topic string, payload []byte) []byte {
	body := []byte{byte(len(topic) >> 8), byte(len(topic))}
	body = append(body, topic...)
	if qos > 0 {
		body = append(body, byte(id>>8), byte(id))
	}
	body = append(body, payload...)
	return append(mqttwire.AppendLength([]byte{packetPublish<<4 | qos<<1}, len(body)), body...)
}

// FuzzLimitConn: any byte stream from a broker is passed on, cut short, or
// ends the connection with an error; never a panic. A stream of packets
// all within the limit is passed on unchanged, and an oversized PUBLISH
// reaches paho as the same PUBLISH without its payload.
func FuzzLimitConn(f *testing.F) {
	f.Add(publishPacket(1, 7, "a/b", []byte("21.5")), 16)
	f.Add(append(publishPacket(0, 0, "a", bytes.Repeat([]byte("x"), 100)), 0x40, 0x02, 0x00, 0x07), 16) // PUBLISH, PUBACK
	f.Add([]byte{0x20, 0x02, 0x00, 0x00}, 16)                                                           // CONNACK
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, 16)                                               // length over 4 bytes
	f.Add([]byte{0x32, 0x05, 0xff, 0xff, 0x00}, 1)                                                      // topic longer than the packet
	f.Add([]byte{0x90, 0xff, 0xff, 0x7f}, 16)                                                           // a huge SUBACK
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		max = max%4096 + 1
		if max < 1 {
			max += 4096
		}
		tr := lru.New[truncKey, int](maxTruncated, lru.Metrics{})
		c := newLimitConn(byteConn{r: bytes.NewReader(in)}, max, tr)
		out, _ := io.ReadAll(io.LimitReader(c, int64(len(in))+1))
		if len(out) > len(in) {
			t.Fatalf("%d bytes out of %d in", len(out), len(in))
		}
	})
}

func TestLimitConnFraming(t *testing.T) {
	small := append(publishPacket(1, 1, "a/b", []byte("21.5")), publishPacket(2, 2, "c", nil)...)
	small = append(small, 0x40, 0x02, 0x00, 0x01) // PUBACK
	big := publishPacket(1, 9, "big/v", bytes.Repeat([]byte("7"), 5000))
	in := append(append(append([]byte{}, small...), big...), small...)
	tr := lru.New[truncKey, int](maxTruncated, lru.Metrics{})
	out, err := io.ReadAll(newLimitConn(byteConn{r: bytes.NewReader(in)}, 1000, tr))
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]byte{}, small...), publishPacket(1, 9, "big/v", nil)...), small...)
	if !bytes.Equal(out, want) {
		t.Fatalf("out\n%q\nwant\n%q", out, want)
	}
	if size, ok := tr.Get(truncKey{"big/v", 9}); !ok || size != 5000 {
		t.Errorf("truncated: %v %v", size, ok)
	}
	// A packet cut off in its header is an error, not a short packet.
	_, err = io.ReadAll(newLimitConn(byteConn{r: bytes.NewReader(big[:3])}, 1000, tr))
	if err == nil {
		t.Error("no error for a PUBLISH cut off in its header")
	}
}
