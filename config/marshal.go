package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// MarshalJSON writes the config back in the shape of osgate.json: keys in
// schema order, durations as strings ("5s"), the drivers' own keys inline
// in their device and channel objects, and unset values (nil, "", 0, false)
// left out. Parse of the result gives the same Config. Show secrets only
// through Redacted.
func (c Config) MarshalJSON() ([]byte, error) { return marshal(c) }

// MarshalJSON writes one connector as osgate.json has it.
func (c Connector) MarshalJSON() ([]byte, error) { return marshal(c) }

// MarshalJSON writes one device as osgate.json has it.
func (d Device) MarshalJSON() ([]byte, error) { return marshal(d) }

// MarshalJSON writes one channel as osgate.json has it.
func (ch Channel) MarshalJSON() ([]byte, error) { return marshal(ch) }

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := writeValue(&buf, reflect.ValueOf(v)); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	return buf.Bytes(), nil
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	rawType      = reflect.TypeFor[json.RawMessage]()
)

func writeValue(buf *bytes.Buffer, v reflect.Value) error {
	switch {
	case v.Type() == durationType:
		return writeJSON(buf, time.Duration(v.Int()).String())
	case v.Type() == rawType:
		raw := bytes.TrimSpace(v.Bytes())
		if len(raw) == 0 {
			raw = []byte("null")
		}
		return json.Compact(buf, raw)
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			buf.WriteString("null")
			return nil
		}
		return writeValue(buf, v.Elem())
	case reflect.Struct:
		return writeStruct(buf, v)
	case reflect.Slice:
		if v.IsNil() {
			buf.WriteString("null")
			return nil
		}
		buf.WriteByte('[')
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeValue(buf, v.Index(i)); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	}
	return writeJSON(buf, v.Interface())
}

// writeStruct writes the set fields under their json names, then the keys
// of a strict:"rest" field.
func writeStruct(buf *bytes.Buffer, v reflect.Value) error {
	buf.WriteByte('{')
	n := 0
	key := func(k string) {
		if n > 0 {
			buf.WriteByte(',')
		}
		n++
		writeJSON(buf, k)
		buf.WriteByte(':')
	}
	if err := writeFields(buf, v, key); err != nil {
		return err
	}
	buf.WriteByte('}')
	return nil
}

// writeFields writes the fields of a struct, those of an embedded struct
// without a json tag inline (internal/tlsconf's keys).
func writeFields(buf *bytes.Buffer, v reflect.Value, key func(string)) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f, fv := t.Field(i), v.Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Anonymous && f.Tag.Get("json") == "" && fv.Kind() == reflect.Struct {
			if err := writeFields(buf, fv, key); err != nil {
				return err
			}
			continue
		}
		if f.Tag.Get("strict") == "rest" {
			if err := writeRest(buf, fv.Bytes(), key); err != nil {
				return fmt.Errorf("%s: %w", f.Name, err)
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || unset(fv) {
			continue
		}
		key(name)
		if err := writeValue(buf, fv); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// writeRest writes the keys of a JSON object inline, in sorted order.
func writeRest(buf *bytes.Buffer, raw []byte, key func(string)) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return err
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		key(k)
		if err := json.Compact(buf, obj[k]); err != nil {
			return err
		}
	}
	return nil
}

// unset says whether a field is left out: nil pointers and slices, empty
// raw JSON, and zero strings, numbers and bools. An empty, non-nil slice is
// written ([] can differ from the default).
func unset(v reflect.Value) bool {
	switch {
	case v.Type() == rawType:
		return len(bytes.TrimSpace(v.Bytes())) == 0
	case v.Kind() == reflect.Slice, v.Kind() == reflect.Pointer:
		return v.IsNil()
	case v.Kind() == reflect.Struct:
		return false
	}
	return v.IsZero()
}

func writeJSON(buf *bytes.Buffer, x any) error {
	b, err := json.Marshal(x)
	if err != nil {
		return err
	}
	buf.Write(b)
	return nil
}
