package mapping

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Path is a path into a JSON document: "a.b[0].c", "values[-1]" (the last
// element), "[\"key.with.dots\"]". The empty path is the whole document.
type Path struct {
	text  string
	steps []step
}

type step struct {
	key     string
	index   int
	isIndex bool
}

// ParsePath checks a path and prepares it for lookups.
func ParsePath(s string) (Path, error) {
	p := Path{text: s}
	i := 0
	for i < len(s) {
		if s[i] == '[' {
			n, err := p.bracket(s, i)
			if err != nil {
				return Path{}, err
			}
			i = n
			continue
		}
		if i > 0 {
			if s[i] != '.' {
				return Path{}, fmt.Errorf("path %q: expected \".\" or \"[\" at byte %d, not %q", s, i, s[i])
			}
			i++
		}
		end := strings.IndexAny(s[i:], ".[]")
		if end < 0 {
			end = len(s) - i
		}
		if end == 0 {
			return Path{}, fmt.Errorf("path %q: a key is expected at byte %d", s, i)
		}
		p.steps = append(p.steps, step{key: s[i : i+end]})
		i += end
	}
	return p, nil
}

// bracket reads "[N]" or "[\"key\"]" at s[i] and returns the offset after it.
func (p *Path) bracket(s string, i int) (int, error) {
	j := i + 1
	if j < len(s) && s[j] == '"' {
		key, n, err := quotedKey(s[j:])
		if err != nil {
			return 0, fmt.Errorf("path %q: %v", s, err)
		}
		j += n
		if j >= len(s) || s[j] != ']' {
			return 0, fmt.Errorf("path %q: expected \"]\" after the quoted key at byte %d", s, j)
		}
		p.steps = append(p.steps, step{key: key})
		return j + 1, nil
	}
	end := strings.IndexByte(s[j:], ']')
	if end < 0 {
		return 0, fmt.Errorf("path %q: \"[\" at byte %d is not closed", s, i)
	}
	n, err := strconv.Atoi(s[j : j+end])
	if err != nil || end > 9 || s[j] == '+' {
		return 0, fmt.Errorf("path %q: %q is not an array index (an integer; negative counts from the end) or a quoted key", s, s[j:j+end])
	}
	p.steps = append(p.steps, step{index: n, isIndex: true})
	return j + end + 1, nil
}

// quotedKey reads a JSON string at the start of s and returns it and its
// length in bytes.
func quotedKey(s string) (string, int, error) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			var key string
			if err := json.Unmarshal([]byte(s[:i+1]), &key); err != nil {
				return "", 0, fmt.Errorf("bad quoted key %s: %v", s[:i+1], err)
			}
			return key, i + 1, nil
		}
	}
	return "", 0, fmt.Errorf("quoted key %s is not closed", s)
}

// String is the path as written.
func (p Path) String() string { return p.text }

// IsRoot reports whether p is the whole document.
func (p Path) IsRoot() bool { return len(p.steps) == 0 }

// Lookup returns the value at p in a document decoded with UseNumber, and
// whether it is there. A JSON null counts as absent.
func (p Path) Lookup(doc any) (any, bool) {
	v := doc
	for _, st := range p.steps {
		switch x := v.(type) {
		case map[string]any:
			if st.isIndex {
				return nil, false
			}
			var ok bool
			if v, ok = x[st.key]; !ok {
				return nil, false
			}
		case []any:
			if !st.isIndex {
				return nil, false
			}
			i := st.index
			if i < 0 {
				i += len(x)
			}
			if i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, v != nil
}
