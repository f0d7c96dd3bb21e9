package mapping

import (
	"encoding/json"
	"fmt"
	"strings"
)

// template is a device or channel name: literal text with references in
// braces. {name} is a capture of the topic filter, {key} the member name
// (or array index) in a channel with "each", {json:PATH} a value of the
// payload.
type template struct {
	text  string
	parts []tpart
}

type tpart struct {
	lit  string
	kind tkind
	idx  int  // capture index
	path Path // payload path
}

type tkind uint8

const (
	tLit tkind = iota
	tCapture
	tKey
	tJSON
)

// parseTemplate compiles s; captures are the filter's capture names, and
// allowKey says whether {key} may be used.
func parseTemplate(s string, captures []string, allowKey bool) (template, error) {
	t := template{text: s}
	rest := s
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			t.parts = append(t.parts, tpart{lit: rest})
			break
		}
		if rest[open] == '}' {
			return template{}, fmt.Errorf("%q: \"}\" without \"{\"", s)
		}
		if open > 0 {
			t.parts = append(t.parts, tpart{lit: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return template{}, fmt.Errorf("%q: \"{\" is not closed", s)
		}
		ref := rest[open+1 : open+end]
		rest = rest[open+end+1:]
		p, err := reference(ref, captures, allowKey)
		if err != nil {
			return template{}, fmt.Errorf("%q: %v", s, err)
		}
		t.parts = append(t.parts, p)
	}
	return t, nil
}

func reference(ref string, captures []string, allowKey bool) (tpart, error) {
	if path, ok := strings.CutPrefix(ref, "json:"); ok {
		p, err := ParsePath(path)
		if err != nil {
			return tpart{}, err
		}
		if p.IsRoot() {
			return tpart{}, fmt.Errorf("{json:} needs a path to a field")
		}
		return tpart{kind: tJSON, path: p}, nil
	}
	if ref == "key" && allowKey {
		return tpart{kind: tKey}, nil
	}
	for i, c := range captures {
		if c == ref {
			return tpart{kind: tCapture, idx: i}, nil
		}
	}
	hint := "none"
	if len(captures) > 0 {
		hint = "{" + strings.Join(captures, "}, {") + "}"
	}
	if ref == "key" {
		return tpart{}, fmt.Errorf("{key} names a member only in a channel with \"each\"")
	}
	return tpart{}, fmt.Errorf("{%s} is not a capture of the topic (captures: %s; or use {json:PATH} for a payload field)", ref, hint)
}

// usesJSON reports whether the template reads the payload.
func (t template) usesJSON() bool {
	for _, p := range t.parts {
		if p.kind == tJSON {
			return true
		}
	}
	return false
}

// render fills the template in.
func (t template) render(caps []string, key string, doc any) (string, error) {
	if len(t.parts) == 1 {
		switch p := t.parts[0]; p.kind {
		case tLit:
			return p.lit, nil
		case tCapture:
			return caps[p.idx], nil
		case tKey:
			return key, nil
		}
	}
	var b strings.Builder
	for _, p := range t.parts {
		switch p.kind {
		case tLit:
			b.WriteString(p.lit)
		case tCapture:
			b.WriteString(caps[p.idx])
		case tKey:
			b.WriteString(key)
		case tJSON:
			v, ok := p.path.Lookup(doc)
			if !ok {
				return "", fmt.Errorf("%s: field %s is not in the payload", t.text, p.path)
			}
			switch x := v.(type) {
			case string:
				b.WriteString(x)
			case json.Number:
				b.WriteString(string(x))
			case bool:
				fmt.Fprint(&b, x)
			default:
				return "", fmt.Errorf("%s: field %s %s, not a name", t.text, p.path, kindOf(v))
			}
		}
	}
	return b.String(), nil
}
