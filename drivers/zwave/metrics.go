package zwave

import (
	"time"

	"github.com/osgate/osgate/internal/lograte"
	"github.com/osgate/osgate/internal/prom"
)

// framesDropped counts frames from nodes the driver could not use, by
// reason: "decrypt" (failed authentication: a wrong key, or nonces out of
// step), "no_nonce" (no nonce agreed: resynchronised), "duplicate" (a
// repeated S2 frame), "insecure" (below the node's security), "crc"
// (CRC-16 mismatch), "transport" (a Transport Service segment that could
// not be used), "malformed", "no_keys" (a secure frame before any key was
// made), "s2" (other S2 protocol faults) and "reply_queue" (an answer
// owed to a node that found the queue full).
var framesDropped = prom.NewCounterVec("osgate_zwave_frames_dropped_total",
	"Z-Wave frames from nodes that could not be used (decryption failures, replays, bad CRC, ...), by reason.",
	"connector", "reason")

// The gateway serves framesDropped once a connector registers it
// (core.Stats.Register, in New).

// dropLog bounds the log lines of dropped frames (a flood of bad frames
// must not fill the SD card); the counter has them all.
var dropLogLimit = func() *lograte.Limit { return &lograte.Limit{Burst: 20, Window: time.Minute} }

// drop counts a frame that could not be used and logs it (rate limited).
func (c *Connector) drop(reason string, node byte, err error) {
	framesDropped.WithLabelValues(c.name, reason).Inc()
	if ok, suppressed := c.dropLog.Allow(time.Now()); ok {
		c.log.Warn("zwave: frame from a node not used", "node", node, "reason", reason, "err", err, "suppressed_since_last", suppressed)
	}
}
