// Package strict decodes JSON configuration into Go structs and reports every
// problem at once, each with its JSON path: an unknown field (with a
// suggestion), a wrong type, a missing required value, a number out of range.
// Struct fields are matched by their json tag name. Tag options:
//
//	strict:"required"  the key must be present and not null
//	strict:"rest"      on a json.RawMessage field: receives the object's
//	                   unknown keys as a JSON object instead of errors
//	strict:"was=NAME"  the key was called NAME before: NAME is refused with
//	                   an error that gives the new name
//
// (The older spelling json:"name,required" is accepted too; vet tools
// flag it, so new code uses the strict tag.)
//
// time.Duration fields take strings ("5s", "250ms"). Types implementing
// encoding.TextUnmarshaler take strings. A json.RawMessage receives the raw
// JSON of its value. Keys starting with "_" (e.g. "_comment") are accepted
// and ignored everywhere, so examples can be annotated in strict JSON.
package strict

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Error is one problem at one JSON path.
type Error struct {
	Path string // e.g. "connectors[2].devices[0].channels[3].scale"; "" for the root
	Msg  string
	// known is set on an "unknown field" error: the keys the object
	// accepts, one per line, so that Resuggest can add keys another
	// reader of the object accepts.
	known string
}

func (e Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errors is every problem found, in document order of paths.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns es as an error, or nil when it is empty.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// Add appends a problem at path.
func (es *Errors) Add(path, format string, args ...any) {
	*es = append(*es, Error{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Merge appends err under prefix: an Errors keeps its paths (prefixed), any
// other error becomes one problem at prefix.
func (es *Errors) Merge(prefix string, err error) {
	if err == nil {
		return
	}
	var sub Errors
	if errors.As(err, &sub) {
		for _, e := range sub {
			e.Path = Join(prefix, e.Path)
			*es = append(*es, e)
		}
		return
	}
	*es = append(*es, Error{Path: prefix, Msg: err.Error()})
}

// Join joins two path parts: Join("a", "b") is "a.b", Join("a", "[1].b")
// is "a[1].b", and an empty part disappears.
func Join(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "":
		return prefix
	case path[0] == '[':
		return prefix + path
	}
	return prefix + "." + path
}

// Index is the path of element i of the array at path.
func Index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// Decode decodes data into v (a pointer to a struct, usually) and returns
// Errors describing every problem, or nil. Fields absent from data keep the
// values v already holds, so defaults can be set before decoding.
func Decode(data []byte, v any) error {
	tree, dups, err := parse(data)
	if err != nil {
		return Errors{{Msg: err.Error()}}
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic("strict: Decode needs a non-nil pointer")
	}
	es := dups
	decodeValue(&es, "", tree, rv.Elem())
	es.Sort()
	return es.Err()
}

// parse reads exactly one JSON value, with numbers kept as json.Number, and
// names the line and column of a syntax error. A key repeated in one object
// is reported (the last one would silently win otherwise).
func parse(data []byte) (any, Errors, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var dups Errors
	tree, err := parseValue(dec, "", &dups, 0)
	if err != nil {
		return nil, nil, syntaxError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("invalid JSON at %s: more than one value", position(data, dec.InputOffset()))
	}
	return tree, dups, nil
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 200

func parseValue(dec *json.Decoder, path string, dups *Errors, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nesting deeper than %d", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		obj := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string)
			v, err := parseValue(dec, Join(path, quoteKey(k)), dups, depth+1)
			if err != nil {
				return nil, err
			}
			if _, dup := obj[k]; dup {
				dups.Add(Join(path, quoteKey(k)), "duplicate key")
			}
			obj[k] = v
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return obj, nil
	case json.Delim('['):
		arr := []any{}
		for i := 0; dec.More(); i++ {
			v, err := parseValue(dec, Index(path, i), dups, depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return arr, nil
	}
	return tok, nil
}

func syntaxError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at %s: %s", position(data, se.Offset), strings.TrimPrefix(se.Error(), "json: "))
	}
	if errors.Is(err, io.EOF) || err.Error() == "unexpected EOF" {
		if len(bytes.TrimSpace(data)) == 0 {
			return errors.New("invalid JSON: empty document")
		}
		return fmt.Errorf("invalid JSON at %s: unexpected end of input", position(data, int64(len(data))))
	}
	return fmt.Errorf("invalid JSON: %v", err)
}

// position renders a byte offset as "line L, column C (byte N)".
func position(data []byte, off int64) string {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line, col := 1, 1
	for _, b := range data[:off] {
		if b == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("line %d, column %d (byte %d)", line, col, off)
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	rawType       = reflect.TypeFor[json.RawMessage]()
	textUnmarshal = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func kindName(x any) string {
	switch x.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", x)
}

func decodeValue(es *Errors, path string, x any, v reflect.Value) {
	t := v.Type()
	if t == rawType {
		b, _ := json.Marshal(x)
		v.SetBytes(b)
		return
	}
	if x == nil {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
			v.SetZero()
		default:
			es.Add(path, "must not be null")
		}
		return
	}
	if t.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		decodeValue(es, path, x, v.Elem())
		return
	}
	if t == durationType {
		s, ok := x.(string)
		if !ok {
			es.Add(path, "must be a duration string like \"5s\" or \"250ms\", not %s", kindName(x))
			return
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			es.Add(path, "must be a duration like \"5s\" or \"250ms\": %q is not one", s)
			return
		}
		v.SetInt(int64(d))
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshal) {
		s, ok := x.(string)
		if !ok {
			es.Add(path, "must be a string, not %s", kindName(x))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			es.Add(path, "%v", err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Interface:
		v.Set(reflect.ValueOf(plain(x)))
	case reflect.Bool:
		b, ok := x.(bool)
		if !ok {
			es.Add(path, "must be true or false, not %s", kindName(x))
			return
		}
		v.SetBool(b)
	case reflect.String:
		s, ok := x.(string)
		if !ok {
			es.Add(path, "must be a string, not %s", kindName(x))
			return
		}
		v.SetString(s)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := x.(json.Number)
		if !ok {
			es.Add(path, "must be an integer, not %s", kindName(x))
			return
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if f, ferr := strconv.ParseFloat(string(n), 64); err != nil && ferr == nil && f != math.Trunc(f) {
			es.Add(path, "must be a whole number, not %s", n)
			return
		}
		if err != nil || v.OverflowInt(i) {
			lo, hi := intRange(t)
			es.Add(path, "must be an integer from %d to %d, not %s", lo, hi, n)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := x.(json.Number)
		if !ok {
			es.Add(path, "must be an integer, not %s", kindName(x))
			return
		}
		u, err := strconv.ParseUint(string(n), 10, 64)
		if f, ferr := strconv.ParseFloat(string(n), 64); err != nil && ferr == nil && f != math.Trunc(f) {
			es.Add(path, "must be a whole number, not %s", n)
			return
		}
		if err != nil || v.OverflowUint(u) {
			es.Add(path, "must be an integer from 0 to %d, not %s", uint64(1)<<(t.Bits()-1)*2-1, n)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		n, ok := x.(json.Number)
		if !ok {
			es.Add(path, "must be a number, not %s", kindName(x))
			return
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.IsInf(f, 0) || v.OverflowFloat(f) {
			es.Add(path, "must be a finite number, not %s", n)
			return
		}
		v.SetFloat(f)
	case reflect.Slice:
		arr, ok := x.([]any)
		if !ok {
			es.Add(path, "must be an array, not %s", kindName(x))
			return
		}
		s := reflect.MakeSlice(t, len(arr), len(arr))
		for i, el := range arr {
			decodeValue(es, Index(path, i), el, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		obj, ok := x.(map[string]any)
		if !ok {
			es.Add(path, "must be an object, not %s", kindName(x))
			return
		}
		if t.Key().Kind() != reflect.String {
			panic("strict: map keys must be strings")
		}
		m := reflect.MakeMapWithSize(t, len(obj))
		for _, k := range sortedKeys(obj) {
			el := reflect.New(t.Elem()).Elem()
			decodeValue(es, Join(path, quoteKey(k)), obj[k], el)
			m.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), el)
		}
		v.Set(m)
	case reflect.Struct:
		obj, ok := x.(map[string]any)
		if !ok {
			es.Add(path, "must be an object, not %s", kindName(x))
			return
		}
		decodeStruct(es, path, obj, v)
	default:
		panic("strict: unsupported type " + t.String())
	}
}

type field struct {
	name     string
	index    []int // for reflect.Value.FieldByIndex
	required bool
	was      string // the key's former name
}

// structFields lists the keys of a struct type. The fields of an embedded
// struct without a json tag are its own, as encoding/json has it (a field
// of the outer struct of the same name wins): that is how a shape shared
// by several objects (internal/tlsconf's keys) is written once.
func structFields(t reflect.Type) (fields []field, rest int) {
	rest = -1
	direct := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		sopts := strings.Split(f.Tag.Get("strict"), ",")
		if slices.Contains(sopts, "rest") {
			rest = i
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
			inner, _ := structFields(f.Type)
			for _, in := range inner {
				in.index = append([]int{i}, in.index...)
				fields = append(fields, in)
			}
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		fl := field{name: name, index: []int{i}, required: slices.Contains(sopts, "required") || hasOpt(opts, "required")}
		for _, o := range sopts {
			if was, ok := strings.CutPrefix(o, "was="); ok {
				fl.was = was
			}
		}
		fields = append(fields, fl)
		direct[name] = true
	}
	fields = slices.DeleteFunc(fields, func(f field) bool { return len(f.index) > 1 && direct[f.name] })
	return fields, rest
}

// Keys returns the JSON keys the struct v (or *v) takes, in field order.
func Keys(v any) []string {
	t := reflect.TypeOf(v)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	fields, _ := structFields(t)
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return names
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

func decodeStruct(es *Errors, path string, obj map[string]any, v reflect.Value) {
	fields, rest := structFields(v.Type())
	byName := make(map[string]field, len(fields))
	for _, f := range fields {
		byName[f.name] = f
	}
	var unknown map[string]any
	for _, k := range sortedKeys(obj) {
		f, ok := byName[k]
		if !ok {
			if strings.HasPrefix(k, "_") {
				continue
			}
			if i := slices.IndexFunc(fields, func(f field) bool { return f.was == k }); i >= 0 {
				es.Add(Join(path, quoteKey(k)), "is now called %q", fields[i].name)
				continue
			}
			if rest >= 0 {
				if unknown == nil {
					unknown = map[string]any{}
				}
				unknown[k] = obj[k]
				continue
			}
			names := make([]string, len(fields))
			for i, f := range fields {
				names[i] = f.name
			}
			*es = append(*es, unknownField(Join(path, quoteKey(k)), k, names))
			continue
		}
		if obj[k] == nil && f.required {
			es.Add(Join(path, k), "is required")
			continue
		}
		decodeValue(es, Join(path, k), obj[k], v.FieldByIndex(f.index))
	}
	for _, f := range fields {
		if _, ok := obj[f.name]; !ok && f.required {
			es.Add(Join(path, f.name), "is required")
		}
	}
	if rest >= 0 {
		if unknown == nil {
			unknown = map[string]any{}
		}
		b, _ := json.Marshal(unknown)
		v.Field(rest).SetBytes(b)
	}
}

// plain turns a parsed tree into plain Go values (json.Number to float64).
func plain(x any) any {
	switch x := x.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return string(x)
		}
		return f
	case []any:
		for i := range x {
			x[i] = plain(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = plain(x[k])
		}
	}
	return x
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// quoteKey writes a key that is not a plain identifier as ["key"].
func quoteKey(k string) string {
	for i, r := range k {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return "[" + strconv.Quote(k) + "]"
		}
	}
	if k == "" {
		return `[""]`
	}
	return k
}

func intRange(t reflect.Type) (int64, int64) {
	bits := t.Bits()
	return -1 << (bits - 1), 1<<(bits-1) - 1
}

// unknownField is the error of an unknown key k at path, in an object
// that accepts the keys known.
func unknownField(path, k string, known []string) Error {
	return Error{Path: path, Msg: "unknown field" + DidYouMean(k, known), known: strings.Join(known, "\n")}
}

// Resuggest redoes the "did you mean" of every unknown-field error whose
// object another reader decodes too: more(parent) names the keys that
// reader accepts in the object at path parent (nil: none). Config uses it
// for devices and channels, whose keys are shared between the core and
// the driver: a driver that reports "intervall" as unknown knows nothing
// of the core's "interval".
func (es Errors) Resuggest(more func(parent string) []string) {
	for i := range es {
		e := &es[i]
		if e.known == "" && !strings.HasPrefix(e.Msg, "unknown field") {
			continue
		}
		parent, key := splitLast(e.Path)
		extra := more(parent)
		if len(extra) == 0 || key == "" {
			continue
		}
		known := extra
		if e.known != "" {
			known = append(strings.Split(e.known, "\n"), extra...)
		}
		*e = unknownField(e.Path, key, known)
	}
}

// WithKeys is err with the "did you mean" of its unknown fields at the
// root redone to include keys: for a struct's "rest" decoded into a second
// struct, whose unknown keys may be typos of the first one's.
func WithKeys(err error, keys ...string) error {
	var es Errors
	if !errors.As(err, &es) {
		return err
	}
	es = append(Errors(nil), es...)
	es.Resuggest(func(parent string) []string {
		if parent == "" {
			return keys
		}
		return nil
	})
	return es
}

// splitLast splits a path into its parent and its last key: "a[1].b" is
// "a[1]" and "b"; a quoted key ["x.y"] is unquoted. The last key is ""
// when the path ends in an index.
func splitLast(path string) (parent, key string) {
	if strings.HasSuffix(path, `"]`) {
		if i := strings.LastIndex(path, `["`); i >= 0 {
			if k, err := strconv.Unquote(path[i+1 : len(path)-1]); err == nil {
				return path[:i], k
			}
		}
	}
	if strings.HasSuffix(path, "]") {
		return path, ""
	}
	i := strings.LastIndexAny(path, ".]")
	if i < 0 {
		return "", path
	}
	if path[i] == ']' {
		return path[:i+1], path[i+1:]
	}
	return path[:i], path[i+1:]
}

// Suggest returns the candidate closest to s when it is close enough to
// be a likely typo of it (case aside: a swapped, missing, extra or wrong
// letter or two), else "". Ties go to the earlier candidate.
func Suggest(s string, candidates []string) string {
	if near := Nearest(s, candidates, 1); len(near) > 0 {
		return near[0]
	}
	return ""
}

// Nearest returns up to n of the candidates that are likely typos of s,
// the closest first (ties in the candidates' order). A word of up to 4
// letters may be 1 edit away, of 5 to 7 letters 2; an exact match but for
// case comes first.
func Nearest(s string, candidates []string, n int) []string {
	ls := strings.ToLower(s)
	type cand struct {
		c string
		d int
	}
	var near []cand
	for _, c := range candidates {
		lc := strings.ToLower(c)
		d := distance(ls, lc)
		// Two edits turn any two-letter word into any other: the shorter
		// the words, the fewer edits count as a typo.
		if lc == ls || d <= 2 && d <= (max(len(ls), len(lc))+1)/3 {
			near = append(near, cand{c, d})
		}
	}
	sort.SliceStable(near, func(i, j int) bool { return near[i].d < near[j].d })
	out := make([]string, 0, min(n, len(near)))
	for i := 0; i < len(near) && i < n; i++ {
		out = append(out, near[i].c)
	}
	return out
}

// DidYouMean is ` (did you mean "x"?)` with Suggest's candidate for s, or
// "" when there is none, to end an error message with.
func DidYouMean(s string, candidates []string) string {
	if c := Suggest(s, candidates); c != "" && c != s {
		return fmt.Sprintf(" (did you mean %q?)", c)
	}
	return ""
}

// OneOf is the message for a value that is not one of the choices:
// `must be one of a, b, c, not "x" (did you mean "b"?)`.
func OneOf(value string, choices []string) string {
	return fmt.Sprintf("must be one of %s, not %q%s", strings.Join(choices, ", "), value, DidYouMean(value, choices))
}

// distance is the optimal string alignment distance of a and b: the
// Levenshtein distance, with the swap of two neighbouring letters one edit
// ("untis" is two edits from "unit").
func distance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			d[i][j] = min(d[i-1][j-1]+c, d[i-1][j]+1, d[i][j-1]+1)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// Sort orders errors by path, array indices by number ("devices[2]"
// before "devices[10]"), keeping the order of problems found at one path:
// every package that collects strict.Errors sorts them this way.
func (es Errors) Sort() {
	sort.SliceStable(es, func(i, j int) bool { return pathLess(es[i].Path, es[j].Path) })
}

// pathLess compares paths with runs of digits compared as numbers.
func pathLess(a, b string) bool {
	for a != "" && b != "" {
		if isDigit(a[0]) && isDigit(b[0]) {
			na, ra := leadingDigits(a)
			nb, rb := leadingDigits(b)
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// leadingDigits splits s after its leading digits, dropping leading zeros
// but one, so that a number of any length compares by its digits.
func leadingDigits(s string) (string, string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	j := 0
	for j < i-1 && s[j] == '0' {
		j++
	}
	return s[j:i], s[i:]
}
