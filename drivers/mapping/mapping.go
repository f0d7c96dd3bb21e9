package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/strict"
)

// Spec is a mapping as written in a connector's settings (without its
// topic or path, which the driver owns).
type Spec struct {
	// Device is the device name: a template of literal text, {capture},
	// and {json:PATH}. Default "{device}" when the filter captures device.
	Device string `json:"device"`
	// Payload is "json" (default) or "text": the whole payload is one
	// plain value (a number, true/false or a string).
	Payload string `json:"payload"`
	// Time is where the payload carries its timestamp; without it a
	// reading is stamped when it arrives.
	Time *TimeSpec `json:"time"`
	// Channels are the values taken from one message.
	Channels []ChannelSpec `json:"channels" strict:"required"`
}

// ChannelSpec is one channel (or, with Each, a family of channels) of a
// mapping.
type ChannelSpec struct {
	// Name is the channel name, a template like Device's; in a channel with
	// Each it may use {key} and defaults to "{key}".
	Name string `json:"name"`
	// Path to the value in a JSON payload; "" is the whole payload.
	Path string `json:"path"`
	// Each is a path to an object (or array) whose every member (element)
	// becomes a channel; "" is the whole payload. Exclusive with Path.
	Each *string `json:"each"`
	// Type converts the value; default auto.
	Type Type `json:"type"`
	// Unit is the reading's unit; with Each, of every member that Units
	// does not name.
	Unit string `json:"unit"`
	// Units gives the members of an Each their units, by member name (or
	// array index): {"temperature": "°C", "humidity": "%"}. Only with Each.
	Units map[string]string `json:"units"`
}

// Options tune a mapping for its driver.
type Options struct {
	// Device, when set, is the device of every reading; Spec.Device must
	// then be empty (the HTTP poller: the device is the one polled).
	Device string
	// AbsentIsBad makes a channel whose path is not in the payload a Bad
	// reading. Without it the channel is left out: a message may carry
	// only some of a mapping's channels.
	AbsentIsBad bool
	// MaxReadings bounds the readings of one message (default
	// DefaultMaxReadings): more is an error wrapping ErrTooMany.
	MaxReadings int
}

// DefaultMaxReadings is how many readings one message may give by
// default: a channel family ("each") gives one per member.
const DefaultMaxReadings = 10000

// Mapping is a compiled Spec.
type Mapping struct {
	filter    *Filter
	device    template
	text      bool
	time      *timeField
	chans     []channel
	absentBad bool
	max       int
}

type channel struct {
	name  template
	path  Path
	each  bool
	typ   Type
	unit  string
	units map[string]string // per member, with each
}

// unitOf is the unit of member key of an each channel.
func (ch *channel) unitOf(key string) string {
	if u, ok := ch.units[key]; ok {
		return u
	}
	return ch.unit
}

// Compile checks spec against filter (nil when there is no topic: then
// there are no captures) and returns the mapping, or strict.Errors with
// paths relative to the mapping object ("channels[1].path").
func Compile(filter *Filter, spec Spec, opt Options) (*Mapping, error) {
	var es strict.Errors
	var caps []string
	if filter != nil {
		caps = filter.Captures()
	}
	m := &Mapping{filter: filter, absentBad: opt.AbsentIsBad, max: opt.MaxReadings}
	if m.max <= 0 {
		m.max = DefaultMaxReadings
	}
	switch spec.Payload {
	case "", "json":
	case "text":
		m.text = true
	default:
		es.Add("payload", "must be \"json\" or \"text\", not %q%s", spec.Payload, strict.DidYouMean(spec.Payload, []string{"json", "text"}))
	}
	switch {
	case opt.Device != "" && spec.Device != "":
		es.Add("device", "is the polled device here and cannot be set")
	case opt.Device != "":
		m.device = template{text: opt.Device, parts: []tpart{{lit: opt.Device}}}
	case spec.Device == "" && slices.Contains(caps, "device"):
		m.device, _ = parseTemplate("{device}", caps, false)
	case spec.Device == "":
		es.Add("device", "is required: the topic has no {device} capture")
	default:
		t, err := parseTemplate(spec.Device, caps, false)
		if err != nil {
			es.Add("device", "%v", err)
		} else if m.text && t.usesJSON() {
			es.Add("device", "uses {json:...} but the payload is text")
		}
		m.device = t
	}
	if spec.Time != nil {
		tf, err := compileTime(*spec.Time)
		switch {
		case err != nil:
			es.Add("time", "%v", err)
		case m.text:
			es.Add("time", "needs a JSON payload")
		default:
			m.time = tf
		}
	}
	if len(spec.Channels) == 0 {
		es.Add("channels", "must list at least one channel")
	}
	for i, cs := range spec.Channels {
		at := strict.Index("channels", i)
		ch, err := m.compileChannel(cs, caps)
		es.Merge(at, err)
		m.chans = append(m.chans, ch)
	}
	if err := es.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Mapping) compileChannel(cs ChannelSpec, caps []string) (channel, error) {
	var es strict.Errors
	ch := channel{typ: cs.Type, unit: cs.Unit, each: cs.Each != nil}
	if len(cs.Units) > 0 {
		if !ch.each {
			es.Add("units", "needs each: a channel with path has one unit, set it with unit")
		}
		ch.units = cs.Units
	}
	path := cs.Path
	if ch.each {
		if cs.Path != "" {
			es.Add("each", "and path exclude each other: each names the object whose members are channels")
		}
		if m.text {
			es.Add("each", "needs a JSON payload")
		}
		path = *cs.Each
		if cs.Name == "" {
			cs.Name = "{key}"
		}
	} else if cs.Name == "" {
		es.Add("name", "is required")
	}
	if m.text && path != "" {
		es.Add("path", "must be empty: a text payload is one value")
	}
	p, err := ParsePath(path)
	if err != nil {
		key := "path"
		if ch.each {
			key = "each"
		}
		es.Add(key, "%v", err)
	}
	ch.path = p
	t, err := parseTemplate(cs.Name, caps, ch.each)
	if err != nil {
		es.Add("name", "%v", err)
	} else if m.text && t.usesJSON() {
		es.Add("name", "uses {json:...} but the payload is text")
	}
	ch.name = t
	return ch, es.Err()
}

// Match reports whether the mapping's filter matches topic, with the
// captures appended to caps[:0]. A mapping without a filter matches
// everything.
func (m *Mapping) Match(topic string, caps []string) ([]string, bool) {
	if m.filter == nil {
		return caps[:0], true
	}
	return m.filter.Match(topic, caps)
}

// Filter is the mapping's filter (nil if it has none).
func (m *Mapping) Filter() *Filter { return m.filter }

// ErrPayload marks errors about a message's payload (not JSON, a bad
// timestamp, a name that cannot be formed), as opposed to a channel value
// that does not convert (that is a Bad reading).
var ErrPayload = errors.New("payload does not fit the mapping")

// ErrTooMany marks a message that would give more readings than the
// mapping's MaxReadings.
var ErrTooMany = errors.New("too many readings in one message")

// Readings appends the readings of one message to out: caps are the
// filter's captures (from Match), now is the time of arrival. A value that
// does not convert is a Bad reading; a payload that cannot be read at all
// is an error wrapping ErrPayload.
func (m *Mapping) Readings(caps []string, payload []byte, now time.Time, out []core.Reading) ([]core.Reading, error) {
	limit := len(out) + m.max
	var doc any
	var textVal string
	if m.text {
		if !utf8.Valid(payload) {
			return out, fmt.Errorf("%w: text payload is not UTF-8", ErrPayload)
		}
		textVal = string(payload)
	} else {
		var err error
		if doc, err = decodeJSON(payload); err != nil {
			return out, fmt.Errorf("%w: %v", ErrPayload, err)
		}
	}
	t := now
	if m.time != nil {
		ts, ok, err := m.time.parse(doc)
		if err != nil {
			return out, fmt.Errorf("%w: %v", ErrPayload, err)
		}
		if ok {
			t = ts
		}
	}
	dev, err := m.device.render(caps, "", doc)
	if err != nil {
		return out, fmt.Errorf("%w: device name %v", ErrPayload, err)
	}
	if dev == "" {
		return out, fmt.Errorf("%w: device name %q came out empty", ErrPayload, m.device.text)
	}
	for _, ch := range m.chans {
		if ch.each {
			if out, err = m.each(ch, caps, doc, dev, t, out, limit); err != nil {
				return out, err
			}
			continue
		}
		if len(out) >= limit {
			return out, m.tooMany()
		}
		name, err := ch.name.render(caps, "", doc)
		if err != nil {
			return out, fmt.Errorf("%w: channel name %v", ErrPayload, err)
		}
		if name == "" {
			return out, fmt.Errorf("%w: channel name %q came out empty", ErrPayload, ch.name.text)
		}
		var val any
		if m.text {
			val, err = convertText(textVal, ch.typ)
		} else {
			v, ok := ch.path.Lookup(doc)
			if !ok {
				if m.absentBad {
					out = append(out, bad(dev, name, ch.unit, t, fmt.Errorf("field %s is not in the payload", pathName(ch.path))))
				}
				continue
			}
			val, err = convert(v, ch.typ)
		}
		if err != nil {
			out = append(out, bad(dev, name, ch.unit, t, fmt.Errorf("field %s %v", pathName(ch.path), err)))
			continue
		}
		out = append(out, core.Reading{Device: dev, Channel: name, Value: val, Unit: ch.unit, Time: t})
	}
	return out, nil
}

// each appends a reading for every member of the object (or element of the
// array) at ch.path.
func (m *Mapping) each(ch channel, caps []string, doc any, dev string, t time.Time, out []core.Reading, limit int) ([]core.Reading, error) {
	v, ok := ch.path.Lookup(doc)
	if !ok {
		if m.absentBad {
			return out, fmt.Errorf("%w: field %s is not in the payload", ErrPayload, pathName(ch.path))
		}
		return out, nil
	}
	switch x := v.(type) {
	case map[string]any:
		if len(out)+len(x) > limit+1 { // +1: the time member may be left out
			return out, m.tooMany()
		}
	case []any:
		if len(out)+len(x) > limit {
			return out, m.tooMany()
		}
	}
	add := func(key string, v any) error {
		name, err := ch.name.render(caps, key, doc)
		if err != nil {
			return fmt.Errorf("%w: channel name %v", ErrPayload, err)
		}
		if name == "" {
			return fmt.Errorf("%w: channel name %q came out empty", ErrPayload, ch.name.text)
		}
		if v == nil {
			return nil // null: no value this time
		}
		unit := ch.unitOf(key)
		if len(out) >= limit {
			return m.tooMany()
		}
		val, err := convert(v, ch.typ)
		if err != nil {
			out = append(out, bad(dev, name, unit, t, fmt.Errorf("member %q %v", key, err)))
			return nil
		}
		out = append(out, core.Reading{Device: dev, Channel: name, Value: val, Unit: unit, Time: t})
		return nil
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			if m.time != nil && m.time.isMember(ch.path, k) {
				continue
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if err := add(k, x[k]); err != nil {
				return out, err
			}
		}
	case []any:
		for i, el := range x {
			if err := add(fmt.Sprint(i), el); err != nil {
				return out, err
			}
		}
	default:
		return out, fmt.Errorf("%w: field %s %s, not an object or array for \"each\"", ErrPayload, pathName(ch.path), kindOf(v))
	}
	return out, nil
}

func (m *Mapping) tooMany() error {
	return fmt.Errorf("%w: more than %d (max_channels)", ErrTooMany, m.max)
}

// bad is a Bad reading that keeps its channel's unit.
func bad(dev, name, unit string, t time.Time, err error) core.Reading {
	r := core.BadReading(dev, name, t, err)
	r.Unit = unit
	return r
}

func pathName(p Path) string {
	if p.IsRoot() {
		return "(the whole payload)"
	}
	return p.text
}

// isMember reports whether the timestamp is member k of the object at p,
// so "each" over that object leaves it out.
func (tf *timeField) isMember(p Path, k string) bool {
	if len(tf.path.steps) != len(p.steps)+1 {
		return false
	}
	for i, st := range p.steps {
		if tf.path.steps[i] != st {
			return false
		}
	}
	last := tf.path.steps[len(p.steps)]
	return !last.isIndex && last.key == k
}

// decodeJSON reads exactly one JSON value with numbers kept exact.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("not JSON: %s (at byte %d)", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
		case errors.Is(err, io.EOF) && len(bytes.TrimSpace(b)) == 0:
			return nil, errors.New("not JSON: the payload is empty")
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			return nil, fmt.Errorf("not JSON: unexpected end after %d bytes", len(b))
		}
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not JSON: more than one value (second one at byte %d)", dec.InputOffset())
	}
	return doc, nil
}
