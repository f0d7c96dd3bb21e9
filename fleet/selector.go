package fleet

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// Selector chooses gateways. Its text is terms separated by commas:
//
//	all                  every gateway (also the empty selector)
//	gw-0001              a gateway id (several: any of them; * ? [] globs)
//	site=berlin          a label, or a field of the status document:
//	version=v1.4.*       id, state (online/offline), version, health
//	health!=ok           (ok/degraded/unhealthy), ota (its state),
//	                     config (its version), cohort; "!=" negates
//	seen<10m             last document newer than 10 minutes
//	seen>1h              last document older than an hour
//
// Terms with an operator must all hold; of the bare ids, one must.
type Selector struct {
	text  string
	ids   []string
	terms []term
}

type term struct {
	key, op, value string
	age            time.Duration
}

// maxSelector bounds a selector's text.
const maxSelector = 4096

// ParseSelector reads a selector; errors say which term is wrong.
func ParseSelector(text string) (Selector, error) {
	s := Selector{text: text}
	if len(text) > maxSelector {
		return s, fmt.Errorf("selector: longer than %d bytes", maxSelector)
	}
	for t := range strings.SplitSeq(text, ",") {
		t = strings.TrimSpace(t)
		switch {
		case t == "" || t == "all":
			continue
		case strings.HasPrefix(t, "seen<") || strings.HasPrefix(t, "seen>"):
			d, err := time.ParseDuration(t[5:])
			if err != nil || d <= 0 {
				return s, fmt.Errorf("selector: %q: seen< and seen> take a duration such as 10m", t)
			}
			s.terms = append(s.terms, term{key: "seen", op: t[4:5], age: d})
			continue
		}
		k, v, neg := "", "", false
		if i := strings.Index(t, "!="); i >= 0 {
			k, v, neg = t[:i], t[i+2:], true
		} else if i := strings.Index(t, "="); i >= 0 {
			k, v = t[:i], t[i+1:]
		} else {
			if _, err := path.Match(t, ""); err != nil {
				return s, fmt.Errorf("selector: %q is not a gateway id or pattern: %v", t, err)
			}
			s.ids = append(s.ids, t)
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "" {
			return s, fmt.Errorf("selector: %q has no key before the =", t)
		}
		if _, err := path.Match(v, ""); err != nil {
			return s, fmt.Errorf("selector: %q: %v", t, err)
		}
		op := "="
		if neg {
			op = "!="
		}
		s.terms = append(s.terms, term{key: k, op: op, value: v})
	}
	return s, nil
}

// String is the selector's text.
func (s Selector) String() string {
	if strings.TrimSpace(s.text) == "" {
		return "all"
	}
	return s.text
}

// Match reports whether g is selected, now being the time.
func (s Selector) Match(g Gateway, now time.Time) bool {
	if len(s.ids) > 0 && !slices.ContainsFunc(s.ids, func(p string) bool { ok, _ := path.Match(p, g.ID); return ok }) {
		return false
	}
	for _, t := range s.terms {
		if t.key == "seen" {
			seen := g.Seen()
			if seen.IsZero() {
				return false
			}
			if (t.op == "<") != (now.Sub(seen) < t.age) {
				return false
			}
			continue
		}
		v, has := field(g, t.key)
		ok, _ := path.Match(t.value, v)
		ok = ok && has
		if ok == (t.op == "!=") {
			return false
		}
	}
	return true
}

// field is the value a selector key names: a field of the status document
// or a label.
func field(g Gateway, key string) (string, bool) {
	d := g.Doc
	switch key {
	case "id":
		return g.ID, true
	case "state":
		if g.Online() {
			return "online", true
		}
		return "offline", true
	case "version":
		return d.Version, d.Version != ""
	case "health":
		return g.Health(), g.Health() != ""
	case "ota":
		if d.OTA == nil {
			return "", false
		}
		return d.OTA.State, true
	case "config":
		if d.Config == nil {
			return "", false
		}
		return d.Config.Version, true
	case "cohort":
		if d.OTA == nil || d.OTA.Cohort == nil {
			return "", false
		}
		return fmt.Sprintf("%02d", *d.OTA.Cohort), true
	}
	v, ok := d.Labels[key]
	return v, ok
}

// Select returns the gateways s chooses.
func (s Selector) Select(gws []Gateway, now time.Time) []Gateway {
	var out []Gateway
	for _, g := range gws {
		if s.Match(g, now) {
			out = append(out, g)
		}
	}
	return out
}
