package fleet

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable writes gateways as a table, one line each, and a summary.
func WriteTable(w io.Writer, gws []Gateway, now time.Time) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "GATEWAY\tSTATE\tVERSION\tHEALTH\tCONFIG\tOTA\tDEVICES\tSPOOL\tSEEN\tLABELS")
	for _, g := range gws {
		d := g.Doc
		cfg, ota, spool := "-", "-", "-"
		if d.Config != nil {
			cfg = d.Config.Version + " " + d.Config.Origin
			if d.Config.Trial {
				cfg += " trial"
			}
			if len(d.Config.Bad) > 0 || d.Config.Error != "" {
				cfg += " !"
			}
		}
		if d.OTA != nil {
			ota = d.OTA.State
			if d.OTA.Target != "" {
				ota += " " + d.OTA.Target
			}
		}
		if d.Spool != nil {
			spool = fmt.Sprint(*d.Spool)
		}
		health := g.Health()
		if health == "" {
			health = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.ID, g.State(), orDash(d.Version), health,
			cfg, ota, devices(d.Devices), spool, ago(g.Seen(), now), labels(d.Labels))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, Summary(gws))
	return err
}

// Summary is one line: how many gateways, online, and on which versions.
func Summary(gws []Gateway) string {
	online, versions, health := 0, map[string]int{}, map[string]int{}
	for _, g := range gws {
		if g.Online() {
			online++
			health[orDash(g.Health())]++
		}
		versions[orDash(g.Doc.Version)]++
	}
	return fmt.Sprintf("%d gateways: %d online, %d offline; versions: %s; health of the online: %s",
		len(gws), online, len(gws)-online, counts(versions), counts(health))
}

// counts is "v1.4.0 (10), v1.3.0 (2)", the most common first.
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s (%d)", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// WriteJSON writes gateways as a JSON array: the id, the derived state,
// the last-seen time and the whole status document.
func WriteJSON(w io.Writer, gws []Gateway) error {
	type row struct {
		Gateway
		State string `json:"state"`
		Seen  string `json:"seen,omitempty"`
	}
	rows := make([]row, len(gws))
	for i, g := range gws {
		rows[i] = row{Gateway: g, State: g.State()}
		if s := g.Seen(); !s.IsZero() {
			rows[i].Seen = s.UTC().Format(time.RFC3339)
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// devices is "11/12 online".
func devices(c map[string]int) string {
	total := 0
	for _, n := range c {
		total += n
	}
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d online", c["online"], total)
}

func labels(l map[string]string) string {
	if len(l) == 0 {
		return "-"
	}
	keys := slices.Sorted(maps.Keys(l))
	for i, k := range keys {
		keys[i] = k + "=" + l[k]
	}
	return strings.Join(keys, ",")
}

// ago is "12s ago", "3m ago", "2h ago", "4d ago".
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
