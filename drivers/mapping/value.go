package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/osgate/osgate/internal/redact"
	"github.com/osgate/osgate/internal/strict"
)

// Type is what a channel's value becomes in a Reading.
type Type uint8

const (
	// Auto keeps the JSON kind: a number becomes float64, a boolean bool, a
	// string string. In a text payload, a number or "true"/"false" is
	// recognised, anything else is a string.
	Auto Type = iota
	// Float is float64; numeric strings ("21.5") are accepted.
	Float
	// Int is int64; the number must be whole.
	Int
	// Bool is bool; also 0/1 and "true"/"false"/"on"/"off"/"1"/"0".
	Bool
	// String is the value's text.
	String
)

var typeNames = [...]string{"auto", "float", "int", "bool", "string"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// UnmarshalText reads "auto", "float", "int", "bool" or "string".
func (t *Type) UnmarshalText(b []byte) error {
	for i, n := range typeNames {
		if string(b) == n {
			*t = Type(i)
			return nil
		}
	}
	return errors.New(strict.OneOf(string(b), typeNames[:]))
}

// convert turns a JSON value (decoded with UseNumber) into a reading value
// of type t.
func convert(v any, t Type) (any, error) {
	switch x := v.(type) {
	case json.Number:
		return fromNumber(string(x), t)
	case bool:
		switch t {
		case Auto, Bool:
			return x, nil
		case String:
			return strconv.FormatBool(x), nil
		}
		return nil, fmt.Errorf("is a boolean, not %s", t)
	case string:
		return fromString(x, t, false)
	case map[string]any:
		return nil, fmt.Errorf("is an object, not a value")
	case []any:
		return nil, fmt.Errorf("is an array, not a value")
	}
	return nil, fmt.Errorf("is %T, not a value", v)
}

// convertText turns a whole text payload into a value of type t.
func convertText(s string, t Type) (any, error) {
	return fromString(strings.TrimSpace(s), t, true)
}

func fromNumber(s string, t Type) (any, error) {
	switch t {
	case Auto, Float:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("number %s is out of range", s)
		}
		return f, nil
	case Int:
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
			return nil, fmt.Errorf("number %s is not a whole number that fits in 64 bits", s)
		}
		return int64(f), nil
	case Bool:
		switch s {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
		return nil, fmt.Errorf("number %s is not a boolean (0 or 1)", s)
	case String:
		return s, nil
	}
	return nil, fmt.Errorf("unknown type %s", t)
}

// fromString converts a JSON string (or a text payload, when text is set:
// then Auto guesses the kind).
func fromString(s string, t Type, text bool) (any, error) {
	switch t {
	case String:
		return s, nil
	case Auto:
		if !text {
			return s, nil
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f, nil
		}
		if b, ok := parseBool(s); ok && (s == "true" || s == "false") {
			return b, nil
		}
		return s, nil
	case Float:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("%q is not a number", clip(s))
		}
		return f, nil
	case Int:
		s = strings.TrimSpace(s)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		return nil, fmt.Errorf("%q is not a whole number", clip(s))
	case Bool:
		if b, ok := parseBool(strings.TrimSpace(s)); ok {
			return b, nil
		}
		return nil, fmt.Errorf("%q is not a boolean (true/false, on/off, 1/0)", clip(s))
	}
	return nil, fmt.Errorf("unknown type %s", t)
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "on", "1":
		return true, true
	case "false", "off", "0":
		return false, true
	}
	return false, false
}

// clip shortens untrusted text for error messages and logs.
func clip(s string) string { return redact.Clip(s, 64) }
