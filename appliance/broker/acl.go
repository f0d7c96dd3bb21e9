package broker

import (
	"fmt"
	"strings"

	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/topic"
)

// ACL returns the text of the managed broker's acl_file: what each client
// may read and write. The bridge is not subject to it (Mosquitto never
// checks a bridge's traffic against the ACL): it brings in the RPC
// requests and topics_in, and sends up topics_out and the RPC responses.
//
//   - every client, those without a username (loopback only,
//     broker.anonymous_read) included: read telemetry/# and the export's
//     topics; clients without a username nothing else;
//   - osgate-export, the export: write the export's topics and status/#,
//     read the bridge's state (status/{gateway}/bridge);
//   - osgate-rpc, the cloud RPC responder: read rpc/{gateway}/request/+
//     and write rpc/{gateway}/response/+, alone;
//   - broker.username: read what osgate exports (telemetry, status, the
//     bridge's state among them), what the bridge brings in (topics_in);
//     write what the bridge sends up
//     (topics_out) except osgate's own topics; never the RPC topics.
//
// Every other topic is denied to everyone. What every client may read is
// written as "pattern" lines, which Mosquitto applies to every client,
// rather than as the anonymous section (topic lines before the first
// "user"): Mosquitto 2.0 gives a persistent session restored from its
// database the anonymous section only once the client reconnects, and
// until then drops every message for it, while patterns hold at once.
// The patterns have no %c or %u, so Mosquitto warns about them at start.
func ACL(cfg config.Broker, gatewayID string, access Access) ([]byte, error) {
	access = access.withDefaults()
	export := exportFilter(access.ExportTopic, gatewayID)
	rpcTopics := "rpc/" + gatewayID + "/#"
	if overlaps(export, rpcTopics) || overlaps(export, "rpc/#") {
		return nil, fmt.Errorf("broker: export.topic %q overlaps the RPC topics (rpc/%s/...): choose another", access.ExportTopic, gatewayID)
	}
	readable := []string{anonymousRead}
	if !covers(anonymousRead, export) {
		readable = append(readable, export)
	}
	var w confWriter
	w.comment("Written by osgate; changes are overwritten at every start.")
	w.comment("Every client, those without a username (loopback only) included: read telemetry.")
	w.comment("Patterns, not topic lines, so that persistent sessions restored at start get them at once.")
	for _, f := range readable {
		w.line("pattern", "read", f)
	}
	w.b.WriteString("\n")
	w.line("user", config.BrokerExportUser)
	w.line("topic", "write", export)
	w.line("topic", "write", statusTopics)
	// The export republishes the status documents whenever the bridge
	// (re)connects: it watches the bridge's notifications.
	w.line("topic", "read", topic.BridgeStatus(gatewayID))
	w.b.WriteString("\n")
	w.line("user", config.BrokerRPCUser)
	w.line("topic", "read", "rpc/"+gatewayID+"/request/+")
	w.line("topic", "write", "rpc/"+gatewayID+"/response/+")
	if cfg.Username != "" {
		w.b.WriteString("\n")
		w.line("user", cfg.Username)
		w.line("topic", "deny", "rpc/#") // deny lines are checked first
		for _, f := range append(readable, statusTopics) {
			w.line("topic", "read", f)
		}
		own := []string{export, statusTopics, anonymousRead, "rpc/#"}
		if b := cfg.Bridge; b != nil {
			for _, f := range b.TopicsIn {
				w.line("topic", "read", f)
			}
		outs:
			for _, f := range b.TopicsOut {
				for _, o := range own {
					if overlaps(f, o) {
						continue outs // fake telemetry or status, with the bridge's help
					}
				}
				w.line("topic", "write", f)
			}
		}
	}
	if w.err != nil {
		return nil, w.err
	}
	return []byte(w.b.String()), nil
}

// exportFilter is the filter of every topic the export template can give
// for this gateway: the levels before {device}, then "#" (a device name
// may span levels).
func exportFilter(template, gatewayID string) string {
	var levels []string
	for _, l := range strings.Split(template, "/") {
		if strings.Contains(l, "{device}") {
			levels = append(levels, "#")
			break
		}
		levels = append(levels, strings.ReplaceAll(l, "{gateway}", gatewayID))
	}
	return strings.Join(levels, "/")
}

// overlaps reports whether some topic matches both MQTT filters.
func overlaps(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; ; i++ {
		switch {
		case i < len(as) && as[i] == "#", i < len(bs) && bs[i] == "#":
			return true
		case i == len(as) && i == len(bs):
			return true
		case i == len(as) || i == len(bs):
			return false
		case as[i] == "+" || bs[i] == "+" || as[i] == bs[i]:
		default:
			return false
		}
	}
}

// covers reports whether every topic that matches filter f matches wide.
func covers(wide, f string) bool {
	ws, fs := strings.Split(wide, "/"), strings.Split(f, "/")
	for i := 0; ; i++ {
		switch {
		case i < len(ws) && ws[i] == "#":
			return true
		case i == len(ws) && i == len(fs):
			return true
		case i == len(ws) || i == len(fs):
			return false
		case ws[i] == "+" && fs[i] != "#", ws[i] == fs[i]:
		default:
			return false
		}
	}
}
