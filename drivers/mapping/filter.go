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
// "+", and keeps what it matched. "#" as the last level matches any number
// of levels, including none.
type Filter struct {
	pattern string
	levels  []level
	names   []string // capture names, in order of appearance
	multi   bool     // the filter ends in "#"
}

type levelKind uint8

const (
	literal levelKind = iota
	plus
	capture
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
	f := &Filter{pattern: pattern}
	parts := strings.Split(pattern, "/")
	for i, p := range parts {
		switch {
		case p == "#":
			if i != len(parts)-1 {
				return nil, fmt.Errorf("%q: \"#\" may only be the last level", pattern)
			}
			f.multi = true
		case p == "+":
			f.levels = append(f.levels, level{kind: plus})
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") && len(p) > 2:
			name := p[1 : len(p)-1]
			if !isIdent(name) {
				return nil, fmt.Errorf("%q: capture {%s}: a name is letters, digits and \"_\", not starting with a digit", pattern, name)
			}
			for _, n := range f.names {
				if n == name {
					return nil, fmt.Errorf("%q: capture {%s} appears twice", pattern, name)
				}
			}
			f.levels = append(f.levels, level{kind: capture, idx: len(f.names)})
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

// Subscription is the MQTT filter to subscribe to: captures become "+".
func (f *Filter) Subscription() string {
	if len(f.names) == 0 {
		return f.pattern
	}
	var b strings.Builder
	for i, l := range f.levels {
		if i > 0 {
			b.WriteByte('/')
		}
		if l.kind == literal {
			b.WriteString(l.lit)
		} else {
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
	for _, l := range f.levels {
		if !more {
			return caps, false
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
