package mqtt

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/osgate/osgate/internal/lru"
	"github.com/osgate/osgate/internal/mqttwire"
)

// paho reads every packet whole into memory, however large the broker
// says it is (MQTT allows 256 MB). A limitConn sits between the broker's
// connection and paho and reads the packets' headers as they pass: the
// payload of a PUBLISH larger than max_payload is skipped as it arrives,
// never held, and paho gets the same PUBLISH with an empty payload, which
// the session then refuses (reason too_large) and acknowledges, so the
// broker does not send it again. Any other packet larger than a PUBLISH
// could be ends the connection: a broker does not send those.

const (
	packetPublish = 3
	// readBuffer is what limitConn reads from the broker at a time.
	readBuffer = 32 << 10
	// maxTruncated bounds the oversized messages remembered between the
	// connection and the handler.
	maxTruncated = 64
	// maxOther bounds packets other than PUBLISH (a SUBACK is a few bytes).
	maxOther = 64 << 10
)

// truncKey names one PUBLISH: its topic and packet id (0 at QoS 0).
type truncKey struct {
	topic string
	id    uint16
}

// truncated are the PUBLISH packets a session's connections passed on
// without their payload, with the payload's size, until the handler takes
// them. Shared by the connections of one session (paho reconnects).
type truncated = lru.Cache[truncKey, int]

// dial opens the connection to a broker as paho would (tcp, tls, ws, wss)
// and wraps it in a limitConn.
func (s *session) dial(u *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d := &net.Dialer{Timeout: o.ConnectTimeout}
	var conn net.Conn
	var err error
	switch u.Scheme {
	case "tcp", "mqtt":
		conn, err = d.Dial("tcp", u.Host)
	case "ssl", "tls", "mqtts":
		conn, err = tls.DialWithDialer(d, "tcp", u.Host, o.TLSConfig)
	case "ws", "wss":
		var tc *tls.Config
		if u.Scheme == "wss" {
			tc = o.TLSConfig
		}
		conn, err = paho.NewWebsocket(u.String(), tc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	default:
		err = fmt.Errorf("scheme %q", u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return newLimitConn(conn, s.c.maxPayload, s.truncated), nil
}

// limitConn is a broker connection whose PUBLISH payloads are bounded.
type limitConn struct {
	net.Conn
	br        *bufio.Reader
	max       int
	truncated *truncated

	pending []byte // header bytes rewritten or read ahead, for paho
	pass    int    // bytes of the current packet to hand on as they are
	skip    int    // bytes of the current payload to drop
	err     error  // sticky: the stream is no longer in step
}

func newLimitConn(c net.Conn, max int, t *truncated) *limitConn {
	return &limitConn{Conn: c, br: bufio.NewReaderSize(c, readBuffer), max: max, truncated: t}
}

// Read hands paho the broker's packets, with oversized payloads left out.
func (c *limitConn) Read(p []byte) (int, error) {
	for {
		if c.err != nil {
			return 0, c.err
		}
		switch {
		case len(c.pending) > 0:
			n := copy(p, c.pending)
			c.pending = c.pending[n:]
			return n, nil
		case c.pass > 0:
			n, err := c.br.Read(p[:min(len(p), c.pass)])
			c.pass -= n
			return n, err
		case c.skip > 0:
			n, err := c.br.Discard(min(c.skip, readBuffer))
			c.skip -= n
			if err != nil {
				return 0, err
			}
			continue
		}
		if err := c.header(); err != nil {
			c.err = err
			return 0, err
		}
	}
}

// header reads the next packet's fixed header (and, for a PUBLISH over
// the limit, its variable header) and decides what passes.
func (c *limitConn) header() error {
	first, err := c.br.ReadByte()
	if err != nil {
		return err
	}
	head := []byte{first}
	remaining := 0
	for {
		b, err := c.br.ReadByte()
		if err != nil {
			return unexpected(err)
		}
		head = append(head, b)
		n, _, done, err := mqttwire.Length(head[1:])
		if err != nil {
			return errors.New("mqtt: malformed packet from the broker: remaining length over 4 bytes")
		}
		if done {
			remaining = n
			break
		}
	}
	switch {
	case remaining <= c.max:
		c.pending, c.pass = head, remaining
		return nil
	case first>>4 != packetPublish && remaining <= maxOther:
		c.pending, c.pass = head, remaining
		return nil
	case first>>4 != packetPublish:
		return fmt.Errorf("mqtt: the broker sent a packet of type %d and %d bytes: that is no MQTT broker", first>>4, remaining)
	}
	qos := first >> 1 & 3
	var tl [2]byte
	if _, err := io.ReadFull(c.br, tl[:]); err != nil {
		return unexpected(err)
	}
	topicLen := int(tl[0])<<8 | int(tl[1])
	varLen := 2 + topicLen
	if qos > 0 {
		varLen += 2
	}
	if varLen > remaining {
		return errors.New("mqtt: malformed PUBLISH from the broker: topic longer than the packet")
	}
	vh := make([]byte, varLen)
	copy(vh, tl[:])
	if _, err := io.ReadFull(c.br, vh[2:]); err != nil {
		return unexpected(err)
	}
	payload := remaining - varLen
	if payload <= c.max {
		c.pending = append(head, vh...)
		c.pass = payload
		return nil
	}
	k := truncKey{topic: string(vh[2 : 2+topicLen])}
	if qos > 0 {
		k.id = uint16(vh[varLen-2])<<8 | uint16(vh[varLen-1])
	}
	c.truncated.Add(k, payload)
	c.pending = append(mqttwire.AppendLength([]byte{first}, varLen), vh...)
	c.skip = payload
	return nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
