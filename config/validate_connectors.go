package config

import (
	"bytes"
	"strings"

	"github.com/osgate/osgate/drivers/transform"
	"github.com/osgate/osgate/internal/strict"
)

// validateConnectors checks connectors, devices and channels: names, the
// timing of polls and each channel's transforms.
func (c *Config) validateConnectors(es *strict.Errors) {
	connNames := map[string]string{}
	devNames := map[string]string{} // device name -> path where defined
	for i := range c.Connectors {
		cn := &c.Connectors[i]
		p := strict.Index("connectors", i)
		switch {
		case cn.Name == "":
			es.Add(p+".name", "must not be empty")
		case connNames[cn.Name] != "":
			es.Add(p+".name", "%q is also the name of %s; connector names must be unique", cn.Name, connNames[cn.Name])
		default:
			connNames[cn.Name] = p
		}
		if cn.Type == "" {
			es.Add(p+".type", "must not be empty")
		}
		if s := bytes.TrimSpace(cn.Settings); len(s) > 0 && s[0] != '{' && !bytes.Equal(s, []byte("null")) {
			es.Add(p+".settings", "must be an object")
		}
		for j := range cn.Devices {
			validateDevice(es, strict.Index(p+".devices", j), &cn.Devices[j], devNames)
		}
	}
}

func validateDevice(es *strict.Errors, p string, d *Device, devNames map[string]string) {
	checkTopicLevel(es, p+".name", d.Name)
	if d.Name != "" {
		if where, dup := devNames[d.Name]; dup {
			es.Add(p+".name", "device %q is also defined at %s; device names are topic levels and must be unique in the whole config", d.Name, where)
		} else {
			devNames[d.Name] = p
		}
	}
	if d.Interval <= 0 {
		es.Add(p+".interval", "must be a positive duration like \"10s\", not %s", d.Interval)
	} else {
		switch {
		case d.Timeout <= 0:
			es.Add(p+".timeout", "must be a positive duration like \"5s\", not %s", d.Timeout)
		case d.Timeout > d.Interval:
			es.Add(p+".timeout", "%s is longer than the interval %s: a poll must end before the next one is due", d.Timeout, d.Interval)
		}
	}
	names := map[string]int{}
	exported := map[string]int{}
	for k := range d.Channels {
		ch := &d.Channels[k]
		cp := strict.Index(p+".channels", k)
		nameDup := false
		if ch.Name == "" {
			es.Add(cp+".name", "must not be empty")
		} else if j, dup := names[ch.Name]; dup {
			es.Add(cp+".name", "%q is also the name of channels[%d] of this device", ch.Name, j)
			nameDup = true
		} else {
			names[ch.Name] = k
		}
		if exp := ch.exportName(); exp != "" && !(nameDup && ch.Rename == "") {
			where := cp + ".name"
			if ch.Rename != "" {
				where = cp + ".rename"
			}
			if j, dup := exported[exp]; dup {
				es.Add(where, "exports %q, as channels[%d] of this device does; exported channel names must be unique per device", exp, j)
			} else {
				exported[exp] = k
			}
		}
		validateTransforms(es, cp, ch)
	}
}

// exportName is the name a channel is exported under.
func (ch *Channel) exportName() string {
	if ch.Rename != "" {
		return ch.Rename
	}
	return ch.Name
}

// validateTransforms checks one channel's transforms, each problem at the
// key that causes it.
func validateTransforms(es *strict.Errors, p string, ch *Channel) {
	if ch.Decimals != nil && (*ch.Decimals < 0 || *ch.Decimals > transform.MaxDecimals) {
		es.Add(p+".decimals", "must be from 0 to %d decimal places, not %d", transform.MaxDecimals, *ch.Decimals)
	}
	if ch.Min != nil && ch.Max != nil && *ch.Min > *ch.Max {
		es.Add(p+".min", "%g is greater than max %g: every reading would be dropped", *ch.Min, *ch.Max)
	}
	if db := ch.Deadband; db != nil {
		if db.Absolute < 0 {
			es.Add(p+".deadband.absolute", "must not be negative")
		}
		if db.Percent < 0 {
			es.Add(p+".deadband.percent", "must not be negative")
		}
		if db.Absolute > 0 && db.Percent > 0 {
			es.Add(p+".deadband", "set absolute or percent, not both")
		}
		if db.MaxSilence != nil && *db.MaxSilence < 0 {
			es.Add(p+".deadband.max_silence", "must not be negative (\"0s\": report only on change)")
		}
	}
	if ch.Expr != "" {
		if err := transform.Check(transform.Spec{Expr: ch.Expr}); err != nil {
			es.Add(p+".expr", "does not compile: %s", firstLine(strings.TrimPrefix(err.Error(), "expr: ")))
		}
	}
	if ch.Inverse != "" {
		if ch.Expr == "" {
			es.Add(p+".inverse", "is only used with expr (scale and offset invert themselves)")
		} else if err := transform.Check(transform.Spec{Expr: ch.Inverse}); err != nil {
			es.Add(p+".inverse", "does not compile: %s", firstLine(strings.TrimPrefix(err.Error(), "expr: ")))
		}
	}
	if ch.Writable {
		if ch.Expr != "" && ch.Inverse == "" {
			es.Add(p+".inverse", "is required on a writable channel with expr: osgate must turn a written value back into the device's value")
		}
		if ch.Scale != nil && *ch.Scale == 0 {
			es.Add(p+".scale", "must not be 0 on a writable channel: a written value cannot be scaled back")
		}
	}
}

// firstLine drops the source excerpt expr-lang adds under its message.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
