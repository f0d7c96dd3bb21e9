package mapping

import (
	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/strict"
)

// Catalog applies the configured devices and channels of a listener
// connector to the readings its mappings produce. A configured device is
// matched by its "source" setting (the name the mapping produces; default
// its own name) and its readings are renamed to the configured name; a
// configured channel likewise, taking its configured unit. Everything else
// passes under its discovered name, unless the connector asks for
// configured devices only.
type Catalog struct {
	devices map[string]*catDevice
	only    bool
}

type catDevice struct {
	name     string
	channels map[string]catChannel // by source name; nil when none configured
}

type catChannel struct {
	name, unit string
}

type sourceSettings struct {
	// Source is the name the mapping produces for this device or channel.
	Source string `json:"source"`
}

// NewCatalog decodes the devices' and channels' settings ({"source": ...}
// only) strictly. only drops readings of devices (and of channels of
// devices with channels) that are not configured. Errors carry paths like
// "devices[1].channels[0].source".
func NewCatalog(devs []*core.Device, only bool) (*Catalog, error) {
	var es strict.Errors
	c := &Catalog{devices: map[string]*catDevice{}, only: only}
	for i, d := range devs {
		at := strict.Index("devices", i)
		var ds sourceSettings
		es.Merge(at, strict.Decode(settingsOrEmpty(d.Settings), &ds))
		src := ds.Source
		if src == "" {
			src = d.Name
		}
		if prev, dup := c.devices[src]; dup {
			es.Add(at, "device %q has the same source %q as device %q", d.Name, src, prev.name)
			continue
		}
		cd := &catDevice{name: d.Name}
		c.devices[src] = cd
		for j, ch := range d.Channels {
			cat := strict.Index(at+".channels", j)
			var cs sourceSettings
			es.Merge(cat, strict.Decode(settingsOrEmpty(ch.Settings), &cs))
			csrc := cs.Source
			if csrc == "" {
				csrc = ch.Name
			}
			if cd.channels == nil {
				cd.channels = map[string]catChannel{}
			}
			if prev, dup := cd.channels[csrc]; dup {
				es.Add(cat, "channel %q has the same source %q as channel %q", ch.Name, csrc, prev.name)
				continue
			}
			cd.channels[csrc] = catChannel{name: ch.Name, unit: ch.Unit}
		}
	}
	if err := es.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

func settingsOrEmpty(b []byte) []byte {
	if len(b) == 0 {
		return []byte("{}")
	}
	return b
}

// Apply renames r after the configuration and reports whether it is to be
// emitted (false: not configured and the connector takes configured
// devices only).
func (c *Catalog) Apply(r *core.Reading) bool {
	d, ok := c.devices[r.Device]
	if !ok {
		return !c.only
	}
	r.Device = d.name
	if d.channels == nil {
		return true
	}
	ch, ok := d.channels[r.Channel]
	if !ok {
		return !c.only
	}
	r.Channel = ch.name
	if ch.unit != "" {
		r.Unit = ch.unit
	}
	return true
}
