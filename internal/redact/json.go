package redact

import (
	"bytes"
	"encoding/json"
	"strings"
)

// JSON returns a copy of a JSON document with the value of every key that
// names a secret (SecretKey) replaced by Mask, at any depth, the values of
// secret headers in a "headers" object masked (SecretHeader), and the query
// values of URLs in strings masked (QueryValues). JSON that does not parse
// is replaced as a whole: it is not shown rather than shown unredacted. The
// configuration redacts driver settings with it, the RPC service the params
// of a call it writes to the log.
func JSON(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		b, _ := json.Marshal(Mask)
		return b
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // a URL's "&" stays readable
	if err := enc.Encode(redactValue(v)); err != nil {
		b, _ := json.Marshal(Mask)
		return b
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func redactValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, el := range x {
			switch {
			case SecretKey(k):
				if s, ok := el.(string); !ok || s != "" {
					x[k] = Mask
				}
			case strings.EqualFold(k, "headers"):
				h, ok := el.(map[string]any)
				if !ok {
					x[k] = redactValue(el)
					continue
				}
				for name, hv := range h {
					if s, isString := hv.(string); SecretHeader(name) && (!isString || s != "") {
						h[name] = Mask
					}
				}
			default:
				x[k] = redactValue(el)
			}
		}
	case []any:
		for i := range x {
			x[i] = redactValue(x[i])
		}
	case string:
		s, _ := QueryValues(x)
		return s
	}
	return v
}
