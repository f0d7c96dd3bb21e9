package config

import (
	"bytes"
	"encoding/json"
	"path"
	"reflect"
	"strconv"
	"strings"

	"github.com/osgate/osgate/internal/strict"
)

// What a pulled configuration (from the fleet server, or its cached copy)
// may not choose: whatever runs a program, or names a file or a device on
// the gateway. Those come from the local bootstrap file only, so that
// whoever controls the fleet server (or its signing key) controls the
// gateway's readings and connectors, but cannot make osgate, which runs as
// root on the appliance, execute a program, write its state elsewhere, or
// read another file.
//
// The keys, by the audit of the schema:
//
//   - gateway.state_dir: where osgate writes its state and mosquitto.conf
//   - gateway.labels: what the installation is (site, customer,
//     hardware); fleet selectors choose gateways by them, so a pulled
//     document must not move its gateway into or out of the selection
//     it was pushed to
//   - broker.binary: the program osgate runs
//   - broker.password_file: a file osgate reads, and makes if missing
//   - broker.bridge.ca_file, cert_file, key_file; rpc.cert_file, key_file
//   - remote: where the configuration comes from and which key signs it
//   - clock: where the time comes from, and whether osgate sets the
//     system clock (read once at start, from the local file)
//   - in connectors: every key ending in "_file" (TLS files of field
//     brokers, HTTP polls and HTTP ingest), and a serial "port" given as a
//     path other than a serial device (/dev/tty*, /dev/serial/...);
//     board port names ("rs485-0") are fine.
//
// Not local-only: broker.listen, rpc.listen and ingest listen addresses
// (network, checked against each other), the system connector's device
// "path" (only the file system's size is read), JSON paths of mappings.
//
// A pulled document that sets one of these to what the local file says is
// accepted (it may repeat the bootstrap); any other value is refused with
// the key's path. The gateway-wide ones it leaves out are taken from the
// local file.

// corePaths are the local-only keys outside connectors, by their path in
// the document. The bridge's are taken from the local file only when the
// pulled document has a bridge.
var corePaths = [][]string{
	{"gateway", "state_dir"},
	{"gateway", "labels"},
	{"broker", "binary"},
	{"broker", "password_file"},
	{"broker", "bridge", "ca_file"},
	{"broker", "bridge", "cert_file"},
	{"broker", "bridge", "key_file"},
	{"rpc", "cert_file"},
	{"rpc", "key_file"},
	{"remote"},
	{"clock"},
}

// ParsePulled returns the Parse of pulled documents for a gateway whose
// local bootstrap file is local (its bytes, as read at start).
func ParsePulled(local []byte) func(doc []byte) (*Config, error) {
	tree, _ := decodeTree(local) // a local file that does not parse cannot have booted
	boot := localParts(tree)
	return func(doc []byte) (*Config, error) { return parsePulled(boot, doc) }
}

// parsePulled parses a pulled document for the bootstrap file boot (its
// tree, or its localParts).
func parsePulled(boot map[string]any, doc []byte) (*Config, error) {
	pulled, err := decodeTree(doc)
	if err != nil {
		return Parse(doc) // the decoder says what is wrong, with its position
	}
	if es := localOnly(pulled, boot); len(es) > 0 {
		es.Sort()
		return nil, es
	}
	for _, p := range corePaths {
		v, ok := lookup(boot, p)
		if !ok || p[0] == "remote" {
			continue
		}
		if len(p) > 1 && p[1] == "bridge" {
			if _, has := lookup(pulled, p[:2]); !has {
				continue
			}
		}
		if len(p) > 1 && p[1] == "binary" {
			if m, _ := lookup(pulled, []string{"broker", "managed"}); m == false {
				continue
			}
		}
		set(pulled, p, v)
	}
	merged, err := json.Marshal(pulled)
	if err != nil {
		return nil, err
	}
	return Parse(merged)
}

// localParts is what ParsePulled keeps of the bootstrap file for as long as
// the gateway runs: the values of its local-only keys at their paths (the
// core keys, and each named connector's file keys and device ports), not the
// whole tree, which for a plant's file of a thousand channels is half a
// megabyte. localOnly and the merge look up nothing else.
func localParts(boot map[string]any) map[string]any {
	out := map[string]any{}
	for _, p := range corePaths {
		if v, ok := lookup(boot, p); ok {
			set(out, p, v)
		}
	}
	bc, ok := boot["connectors"].([]any)
	if !ok {
		return out
	}
	conns := []any{}
	for _, c := range bc {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		name, ok := m["name"].(string)
		if !ok {
			continue
		}
		kept, _ := localLeaves(m).(map[string]any)
		if kept == nil {
			kept = map[string]any{}
		}
		kept["name"] = name
		conns = append(conns, kept)
	}
	out["connectors"] = conns
	return out
}

// localLeaves is v with only its local-only keys (localKey) and the objects
// and arrays on their way, or nil if it has none. Arrays keep their length
// so that "[i]" paths still lead to the same element.
func localLeaves(v any) any {
	switch x := v.(type) {
	case map[string]any:
		var out map[string]any
		for k, el := range x {
			kept := el
			if !localKey(k, el) {
				kept = localLeaves(el)
			}
			if kept == nil {
				continue
			}
			if out == nil {
				out = map[string]any{}
			}
			out[k] = kept
		}
		if out == nil {
			return nil
		}
		return out
	case []any:
		var out []any
		for i, el := range x {
			if kept := localLeaves(el); kept != nil {
				if out == nil {
					out = make([]any, len(x))
				}
				out[i] = kept
			}
		}
		if out == nil {
			return nil
		}
		return out
	}
	return nil
}

// localOnly reports the local-only keys pulled sets to something other
// than boot does.
func localOnly(pulled, boot map[string]any) strict.Errors {
	var es strict.Errors
	for _, p := range corePaths {
		v, ok := lookup(pulled, p)
		if !ok || isEmpty(v) {
			continue
		}
		if bv, _ := lookup(boot, p); reflect.DeepEqual(v, bv) {
			continue
		}
		es.Add(strings.Join(p, "."), "%s: only the local bootstrap file may set it, not a pulled configuration", localOnlyWhat(p[len(p)-1]))
	}
	conns, _ := pulled["connectors"].([]any)
	bootConns := map[string]any{}
	if bc, ok := boot["connectors"].([]any); ok {
		for _, c := range bc {
			if m, ok := c.(map[string]any); ok {
				if name, ok := m["name"].(string); ok {
					bootConns[name] = m
				}
			}
		}
	}
	for i, c := range conns {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		name, _ := m["name"].(string)
		bc, _ := bootConns[name].(map[string]any)
		walkLocal(&es, strict.Index("connectors", i), nil, m, bc)
	}
	return es
}

// walkLocal looks through a pulled connector (v, at path) for file keys
// and serial device paths; bootConn is the local file's connector of the
// same name (nil if none), rel the keys from the connector down.
func walkLocal(es *strict.Errors, at string, rel []string, v any, bootConn map[string]any) {
	switch x := v.(type) {
	case map[string]any:
		for k, el := range x {
			p := strict.Join(at, k)
			r := append(rel[:len(rel):len(rel)], k)
			if localKey(k, el) {
				if bv, _ := lookup(bootConn, r); bootConn != nil && reflect.DeepEqual(el, bv) {
					continue
				}
				what := localOnlyWhat(k)
				if k == "port" {
					what = "names a device that is not a serial port"
				}
				es.Add(p, "%s: only the local bootstrap file may set it, not a pulled configuration", what)
				continue
			}
			walkLocal(es, p, r, el, bootConn)
		}
	case []any:
		for i, el := range x {
			walkLocal(es, strict.Index(at, i), append(rel[:len(rel):len(rel)], "["+strconv.Itoa(i)+"]"), el, bootConn)
		}
	}
}

// localKey says whether a connector key with value v is local-only.
func localKey(k string, v any) bool {
	s, isString := v.(string)
	switch {
	case strings.HasSuffix(k, "_file"):
		return !isEmpty(v)
	case k == "port" && isString && strings.HasPrefix(s, "/"):
		return !serialDevice(s)
	}
	return false
}

// serialDevice says whether p is a serial port's device path.
func serialDevice(p string) bool {
	p = path.Clean(p)
	return strings.HasPrefix(p, "/dev/tty") || strings.HasPrefix(p, "/dev/serial/")
}

func localOnlyWhat(k string) string {
	switch {
	case k == "binary":
		return "runs a program on the gateway"
	case k == "state_dir":
		return "is where the gateway writes its state"
	case k == "remote":
		return "says where the configuration comes from and which key signs it"
	case k == "clock":
		return "says where the gateway's time comes from and may let osgate set the system clock"
	case k == "labels":
		return "says what the installation is, which fleet selectors choose gateways by"
	}
	return "names a file on the gateway"
}

func isEmpty(v any) bool {
	if m, ok := v.(map[string]any); ok {
		return len(m) == 0
	}
	return v == nil || v == ""
}

// decodeTree reads a JSON object with numbers kept exact.
func decodeTree(doc []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// lookup follows keys (and "[i]" indexes) from v.
func lookup(v any, p []string) (any, bool) {
	for _, k := range p {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[k]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(strings.Trim(k, "[]"))
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// set puts v at p in m, making the objects on the way that are absent or
// null; a value of another kind on the way is left for Parse to report.
func set(m map[string]any, p []string, v any) {
	for _, k := range p[:len(p)-1] {
		switch next := m[k].(type) {
		case map[string]any:
			m = next
		case nil:
			n := map[string]any{}
			m[k] = n
			m = n
		default:
			return
		}
	}
	m[p[len(p)-1]] = v
}
