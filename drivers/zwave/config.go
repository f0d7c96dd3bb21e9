package zwave

import (
	"fmt"
	"strings"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/strict"
)

// settings is the connector's "settings" object.
type settings struct {
	// Port is a device path, a board port name, or "auto" to find the stick
	// by its USB ids.
	Port string `json:"port" strict:"required"`
	// SoftReset restarts the stick's firmware when the session opens, so no
	// half-finished operation of a previous host lingers.
	SoftReset bool `json:"soft_reset"`
	// ReportTimeout bounds the wait for a node's report after a Get.
	ReportTimeout time.Duration `json:"report_timeout"`
	// DeadBackoff is the first wait before a dead node is tried again; it
	// doubles up to 32 times this.
	DeadBackoff time.Duration `json:"dead_backoff"`
}

// deviceSettings are the keys of a device object the core does not know.
type deviceSettings struct {
	NodeID int `json:"node_id" strict:"required"`
}

// channelSettings: a channel is named after its value ("air_temperature");
// it takes no settings of its own.
type channelSettings struct{}

// device is a configured node.
type device struct {
	name     string
	node     byte
	interval time.Duration
	channels []string
}

func defaultSettings() settings {
	return settings{SoftReset: true, ReportTimeout: 10 * time.Second, DeadBackoff: 10 * time.Second}
}

// parseConfig checks a connector's configuration and reports every problem
// with its path relative to the connector.
func parseConfig(cfg core.ConnectorConfig) (settings, map[string]*device, map[byte]*device, error) {
	var es strict.Errors
	set := defaultSettings()
	raw := cfg.Settings
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	es.Merge("settings", strict.Decode(raw, &set))
	if set.ReportTimeout <= 0 {
		es.Add("settings.report_timeout", "must be positive, e.g. \"10s\"")
	}
	if set.DeadBackoff <= 0 {
		es.Add("settings.dead_backoff", "must be positive, e.g. \"10s\"")
	}
	byName := map[string]*device{}
	byNode := map[byte]*device{}
	for i, d := range cfg.Devices {
		p := strict.Index("devices", i)
		var ds deviceSettings
		ds.NodeID = -1
		ds2 := d.Settings
		if len(ds2) == 0 {
			ds2 = []byte("{}")
		}
		es.Merge(p, strict.Decode(ds2, &ds))
		if ds.NodeID == -1 {
			continue // reported as missing by Decode
		}
		if ds.NodeID < 2 || ds.NodeID > 232 {
			es.Add(p+".node_id", "%d is not a Z-Wave node id (2..232; 1 is usually the stick)", ds.NodeID)
			continue
		}
		if other, dup := byNode[byte(ds.NodeID)]; dup {
			es.Add(p+".node_id", "node %d is already device %q", ds.NodeID, other.name)
			continue
		}
		dev := &device{name: d.Name, node: byte(ds.NodeID), interval: d.Interval}
		for j, ch := range d.Channels {
			cp := strict.Index(p+".channels", j)
			if len(ch.Settings) > 0 {
				var cs channelSettings
				es.Merge(cp, strict.Decode(ch.Settings, &cs))
			}
			def, ok := lookupChannel(ch.Name)
			if !ok {
				es.Add(cp+".name", "%q is not a Z-Wave value the driver knows%s; use one of: %s (with _epN for endpoint N)", ch.Name, strict.DidYouMean(ch.Name, knownChannels()), strings.Join(knownChannels(), ", "))
				continue
			}
			if ch.Writable && def.set == nil {
				es.Add(cp+".writable", "%q cannot be written; writable channels are %s", ch.Name, writableList)
			}
			dev.channels = append(dev.channels, ch.Name)
		}
		byName[d.Name] = dev
		byNode[dev.node] = dev
	}
	if err := es.Err(); err != nil {
		return settings{}, nil, nil, err
	}
	return set, byName, byNode, nil
}

// deviceName is the name of a node's readings: the configured device, or
// "zwave-node-N" for a node that is not in the config.
func deviceName(byNode map[byte]*device, node byte) string {
	if d, ok := byNode[node]; ok {
		return d.name
	}
	return fmt.Sprintf("zwave-node-%d", node)
}
