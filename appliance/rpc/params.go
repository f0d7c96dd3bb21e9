package rpc

import (
	"bytes"
	"encoding/json"
	"reflect"

	"github.com/osgate/osgate/internal/strict"
)

// Params decodes a request's params into v (a pointer, usually to a struct)
// with internal/strict: an unknown member, a wrong type or a missing
// required member (`json:"device" strict:"required"`) is refused, every problem at
// once with its path ("params.device: is required"), as a -32602 *Error a
// Handler can return as it is. Absent or null params decode as {} into a
// struct or map and as [] into a slice, so required members are still
// reported.
func Params(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		raw = emptyFor(v)
		if raw == nil {
			return nil
		}
	}
	if err := strict.Decode(raw, v); err != nil {
		return paramsError(err)
	}
	return nil
}

// emptyFor is the JSON that stands for absent params for v's type.
func emptyFor(v any) []byte {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return []byte("{}")
	case reflect.Slice, reflect.Array:
		return []byte("[]")
	}
	return nil
}
