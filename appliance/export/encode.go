// Package export publishes readings to the local MQTT broker: one JSON
// message per device per cycle (Encode, Topic), sent by a Sink at QoS 1
// with a persistent session, spooled to disk while the broker is away.
package export

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/osgate/osgate/drivers/core"
)

// tsLayout is RFC 3339 in UTC with milliseconds.
const tsLayout = "2006-01-02T15:04:05.000Z"

// Encode appends the payload of one device's cycle to dst:
//
//	{"ts":"2026-11-24T13:41:00.123Z","values":{"voltage_l1":230.1,"energy":null},
//	 "units":{"voltage_l1":"V","energy":"kWh"},"quality":{"energy":"bad"},
//	 "errors":{"energy":"timeout"}}
//
// ts is the newest reading's time; units lists only channels with a unit,
// quality only channels that are not good, errors only bad channels (whose
// value is null). Floats use the shortest representation that reads back
// the same; NaN and ±Inf become null. Channel names are expected to be
// unique within one call (a repeated name appears twice in each object).
func Encode(dst []byte, readings []core.Reading) []byte {
	var newest time.Time
	var units, notGood, bad bool // whether each section has anything
	for i := range readings {
		r := &readings[i]
		if r.Time.After(newest) {
			newest = r.Time
		}
		units = units || r.Unit != ""
		notGood = notGood || r.Quality != core.Good
		bad = bad || r.Quality == core.Bad
	}
	dst = append(dst, `{"ts":"`...)
	dst = newest.UTC().AppendFormat(dst, tsLayout)
	dst = append(dst, `","values":{`...)
	for i := range readings {
		r := &readings[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, r.Channel)
		dst = append(dst, ':')
		if r.Quality == core.Bad {
			dst = append(dst, "null"...)
		} else {
			dst = appendValue(dst, r.Value)
		}
	}
	dst = append(dst, '}')
	if units {
		dst = appendSection(dst, `,"units":{`, readings, func(r *core.Reading) (string, bool) {
			return r.Unit, r.Unit != ""
		})
	}
	if notGood {
		dst = appendSection(dst, `,"quality":{`, readings, func(r *core.Reading) (string, bool) {
			return r.Quality.String(), r.Quality != core.Good
		})
	}
	if !bad {
		return append(dst, '}')
	}
	dst = appendSection(dst, `,"errors":{`, readings, func(r *core.Reading) (string, bool) {
		if r.Quality != core.Bad {
			return "", false
		}
		if r.Err == nil {
			return "unknown error", true
		}
		return r.Err.Error(), true
	})
	return append(dst, '}')
}

// appendSection appends `head name:"text",...}` for the readings pick
// selects, or nothing when it selects none.
func appendSection(dst []byte, head string, readings []core.Reading, pick func(*core.Reading) (string, bool)) []byte {
	n := 0
	for i := range readings {
		text, ok := pick(&readings[i])
		if !ok {
			continue
		}
		if n == 0 {
			dst = append(dst, head...)
		} else {
			dst = append(dst, ',')
		}
		n++
		dst = appendString(dst, readings[i].Channel)
		dst = append(dst, ':')
		dst = appendString(dst, text)
	}
	if n > 0 {
		dst = append(dst, '}')
	}
	return dst
}

func appendValue(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case float64:
		return appendFloat(dst, x, 64)
	case float32:
		return appendFloat(dst, float64(x), 32)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case int:
		return strconv.AppendInt(dst, int64(x), 10)
	case int32:
		return strconv.AppendInt(dst, int64(x), 10)
	case uint64:
		return strconv.AppendUint(dst, x, 10)
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10)
	case bool:
		return strconv.AppendBool(dst, x)
	case string:
		return appendString(dst, x)
	default:
		// Outside the Reading contract; keep the message valid JSON.
		return appendString(dst, fmt.Sprint(x))
	}
}

// appendFloat appends f as a JSON number: the shortest decimal that reads
// back as f, in exponent form only for very large or small magnitudes.
func appendFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// 1e-07 → 1e-7: valid either way, shorter this way.
		if n := len(dst); n-start >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// plain marks the bytes a JSON string carries as they are: printable
// ASCII other than '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as a JSON string. Control characters are escaped,
// invalid UTF-8 becomes U+FFFD, and U+2028/U+2029 are escaped so the
// payload is also safe inside JavaScript.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Topic fills a topic template: {gateway} and {device} are replaced by the
// gateway id and the device name. MQTT wildcards ('+', '#') and NUL in the
// names are replaced by '_', since a broker disconnects a client that
// publishes to a wildcard topic.
func Topic(template, gateway, device string) string {
	var b strings.Builder
	b.Grow(len(template) + len(gateway) + len(device))
	for {
		i := strings.IndexByte(template, '{')
		if i < 0 {
			b.WriteString(template)
			return b.String()
		}
		b.WriteString(template[:i])
		rest := template[i:]
		switch {
		case strings.HasPrefix(rest, "{gateway}"):
			writeTopicName(&b, gateway)
			template = rest[len("{gateway}"):]
		case strings.HasPrefix(rest, "{device}"):
			writeTopicName(&b, device)
			template = rest[len("{device}"):]
		default:
			b.WriteByte('{')
			template = rest[1:]
		}
	}
}

func writeTopicName(b *strings.Builder, name string) {
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '+', '#', 0:
			b.WriteByte('_')
		default:
			b.WriteByte(c)
		}
	}
}

// checkTopic reports why a topic cannot be published to, or nil.
func checkTopic(topic string) error {
	switch {
	case topic == "":
		return fmt.Errorf("empty topic")
	case len(topic) > 65535:
		return fmt.Errorf("topic longer than 65535 bytes")
	case strings.ContainsAny(topic, "+#\x00"):
		return fmt.Errorf("topic %q contains a wildcard or NUL", topic)
	case !utf8.ValidString(topic):
		return fmt.Errorf("topic %q is not valid UTF-8", topic)
	}
	return nil
}
