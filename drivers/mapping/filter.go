// Package mapping turns messages into readings for the listener drivers
// (MQTT and HTTP ingest) and JSON responses into readings for the HTTP
// poller. A mapping has a topic filter with MQTT wildcards and named
// captures, a device-name template, an optional timestamp field and a list
// of channels, each taken from a path into the JSON payload (or the whole
// payload when it is a plain number, boolean or string).
package mapping

import (
	"fmt"
	"strings"
)

// Filter is an MQTT topic filter whose levels may also be named captures:
// "site/{site}/meter/{device}/+". A capture matches exactly one level, like
// "+", and keeps what it matched. A capture ending in "..." matches one or
// more levels and keeps them with their "/": "zigbee2mqtt/{device...}"
// captures "floor1/living_room" from "zigbee2mqtt/floor1/living_room". A
// filter has at most one such capture, anywhere ("z2m/{device...}/set"),
// and not together with "#". "#" as the last level matches any number of
// levels, including none.
type Filter struct {
	pattern string
	levels  []level
	names   []string // capture names, in order of appearance
	multi   bool     // the filter ends in "#"
	span    int      // index in levels of the capture spanning levels; -1 if none
}

type levelKind uint8

const (
	literal levelKind = iota
	plus
	capture
	spanCapture // a capture of one or more levels: {name...}
)

type level struct {
	kind levelKind
	lit  string // literal text
	idx  int    // capture index
}

// ParseFilter checks a filter and prepares it for matching.
func ParseFilter(pattern string) (*Filter, error) {
	if pattern == "" {
		return nil, fmt.Errorf("must not be empty")
	}
	if len(pattern) > 65535 {
		return nil, fmt.Errorf("is longer than MQTT allows (65535 bytes)")
	}
	if strings.ContainsRune(pattern, 0) {
		return nil, fmt.Errorf("must not contain a NUL character")
	}
	f := &Filter{pattern: pattern, span: -1}
	parts := strings.Split(pattern, "/")
	for i, p := range parts {
		switch {
		case p == "#":
			if i != len(parts)-1 {
				return nil, fmt.Errorf("%q: \"#\" may only be the last level", pattern)
			}
			if f.span >= 0 {
				return nil, fmt.Errorf("%q: \"#\" after a capture spanning levels ({%s...}) leaves it unclear where the capture ends", pattern, f.names[f.levels[f.span].idx])
			}
			f.multi = true
		case p == "+":
			f.levels = append(f.levels, level{kind: plus})
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") && len(p) > 2:
			name, spans := strings.CutSuffix(p[1:len(p)-1], "...")
			if !isIdent(name) {
				return nil, fmt.Errorf("%q: capture {%s}: a name is letters, digits and \"_\", not starting with a digit (\"...\" at its end spans levels)", pattern, p[1:len(p)-1])
			}
			for _, n := range f.names {
				if n == name {
					return nil, fmt.Errorf("%q: capture {%s} appears twice", pattern, name)
				}
			}
			kind := capture
			if spans {
				if f.span >= 0 {
					return nil, fmt.Errorf("%q: only one capture may span levels: {%s...} and {%s...}", pattern, f.names[f.levels[f.span].idx], name)
				}
				kind, f.span = spanCapture, len(f.levels)
			}
			f.levels = append(f.levels, level{kind: kind, idx: len(f.names)})
			f.names = append(f.names, name)
		case strings.ContainsAny(p, "+#"):
			return nil, fmt.Errorf("%q: level %q: \"+\" and \"#\" must fill a whole level", pattern, p)
		case strings.ContainsAny(p, "{}"):
			return nil, fmt.Errorf("%q: level %q: a capture {name} must fill a whole level", pattern, p)
		default:
			f.levels = append(f.levels, level{kind: literal, lit: p})
		}
	}
	return f, nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// String is the filter as written.
func (f *Filter) String() string { return f.pattern }

// Captures are the names of the filter's captures, in order.
func (f *Filter) Captures() []string { return f.names }

// Subscription is the MQTT filter to subscribe to: captures become "+",
// and a capture spanning levels becomes "#" in place of itself and every
// level after it (Match then checks those levels).
func (f *Filter) Subscription() string {
	if len(f.names) == 0 {
		return f.pattern
	}
	var b strings.Builder
	for i, l := range f.levels {
		if i > 0 {
			b.WriteByte('/')
		}
		switch l.kind {
		case literal:
			b.WriteString(l.lit)
		case spanCapture:
			b.WriteByte('#')
			return b.String()
		default:
			b.WriteByte('+')
		}
	}
	if f.multi {
		if len(f.levels) > 0 {
			b.WriteByte('/')
		}
		b.WriteByte('#')
	}
	return b.String()
}

// Match reports whether topic matches the filter and, if so, returns what
// each capture matched, appended to caps[:0]. As in MQTT, a topic starting
// with "$" is not matched by a wildcard or capture in the first level.
func (f *Filter) Match(topic string, caps []string) ([]string, bool) {
	caps = caps[:0]
	for range f.names {
		caps = append(caps, "")
	}
	if strings.HasPrefix(topic, "$") {
		if (len(f.levels) == 0 && f.multi) || (len(f.levels) > 0 && f.levels[0].kind != literal) {
			return caps, false
		}
	}
	rest, more := topic, true
	for i, l := range f.levels {
		if !more {
			return caps, false
		}
		if l.kind == spanCapture {
			// The levels after the capture are the topic's last ones; the
			// capture takes everything before them (at least one level).
			after := len(f.levels) - i - 1
			end := len(rest)
			for range after {
				end = strings.LastIndexByte(rest[:end], '/')
				if end < 0 {
					return caps, false
				}
			}
			caps[l.idx] = rest[:end]
			if after == 0 {
				rest, more = "", false
			} else {
				rest = rest[end+1:]
			}
			continue
		}
		var part string
		part, rest, more = strings.Cut(rest, "/")
		switch l.kind {
		case literal:
			if part != l.lit {
				return caps, false
			}
		case capture:
			caps[l.idx] = part
		}
	}
	if f.multi {
		return caps, true
	}
	return caps, !more
}
