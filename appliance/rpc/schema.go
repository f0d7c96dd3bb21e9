package rpc

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
	"time"
)

// ContentDescriptor is an OpenRPC content descriptor: one named param, or
// a result, with its JSON Schema.
type ContentDescriptor struct {
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Required    bool           `json:"required,omitempty"`
	Schema      map[string]any `json:"schema"`
}

// ParamsOf describes the params of a method that decodes them into a
// struct like v (a struct value or pointer; nil: no params): one
// descriptor per JSON field, in field order, required as the strict tag
// says, described by the field's `doc:"..."` tag.
func ParamsOf(v any) []ContentDescriptor {
	out := []ContentDescriptor{}
	if v == nil {
		return out
	}
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return out
	}
	for _, f := range fieldsOf(t) {
		out = append(out, ContentDescriptor{Name: f.name, Description: f.doc, Required: f.required, Schema: schemaOf(f.typ, 0)})
	}
	return out
}

// SchemaOf is the JSON Schema of the JSON that v's type encodes to and
// decodes from (nil: any JSON value).
func SchemaOf(v any) map[string]any {
	if v == nil {
		return map[string]any{}
	}
	return schemaOf(reflect.TypeOf(v), 0)
}

type schemaField struct {
	name     string
	doc      string
	required bool
	typ      reflect.Type
}

// fieldsOf lists a struct's JSON fields as encoding/json and
// internal/strict see them, embedded structs flattened.
func fieldsOf(t reflect.Type) []schemaField {
	var out []schemaField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || f.Tag.Get("strict") == "rest" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, fieldsOf(ft)...)
				continue
			}
		}
		if !f.IsExported() || f.Type.Kind() == reflect.Func || f.Type.Kind() == reflect.Chan {
			continue
		}
		if name == "" {
			name = f.Name
		}
		required := f.Tag.Get("strict") == "required" || strings.Contains(","+opts+",", ",required,")
		out = append(out, schemaField{name: name, doc: f.Tag.Get("doc"), required: required, typ: f.Type})
	}
	return out
}

var (
	schemaDuration = reflect.TypeFor[time.Duration]()
	schemaTime     = reflect.TypeFor[time.Time]()
	schemaRaw      = reflect.TypeFor[json.RawMessage]()
	schemaText     = reflect.TypeFor[encoding.TextUnmarshaler]()
	schemaMarshal  = reflect.TypeFor[json.Marshaler]()
)

// maxSchemaDepth stops a recursive type.
const maxSchemaDepth = 12

func schemaOf(t reflect.Type, depth int) map[string]any {
	if depth > maxSchemaDepth {
		return map[string]any{}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == schemaDuration:
		return map[string]any{"type": "string", "description": `a duration such as "60s", "1m30s" or "250ms"`}
	case t == schemaTime:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == schemaRaw:
		return map[string]any{}
	case t.Kind() != reflect.String && (reflect.PointerTo(t).Implements(schemaText) || t.Implements(schemaMarshal)):
		// Written as text, or in a form only its own code knows.
		if reflect.PointerTo(t).Implements(schemaText) {
			return map[string]any{"type": "string"}
		}
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Int8, reflect.Int16, reflect.Int32:
		bits := t.Bits()
		return map[string]any{"type": "integer", "minimum": -(int64(1) << (bits - 1)), "maximum": int64(1)<<(bits-1) - 1}
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return map[string]any{"type": "integer", "minimum": 0, "maximum": uint64(1)<<t.Bits() - 1}
	case reflect.Int, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Uint, reflect.Uint64, reflect.Uintptr:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), depth+1)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), depth+1)}
	case reflect.Struct:
		props := map[string]any{}
		required := []string{}
		for _, f := range fieldsOf(t) {
			s := schemaOf(f.typ, depth+1)
			if f.doc != "" {
				s["description"] = f.doc
			}
			props[f.name] = s
			if f.required {
				required = append(required, f.name)
			}
		}
		s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			s["required"] = required
		}
		return s
	}
	return map[string]any{} // an interface: any JSON value
}
