package config

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"

	"github.com/osgate/osgate/internal/redact"
	"github.com/osgate/osgate/internal/strict"
)

// Parse decodes one osgate.json document strictly, fills in the defaults,
// validates it and lets each connector's driver check its part. The error
// is a strict.Errors listing every problem, sorted by JSON path, e.g.
//
//	connectors[2].devices[0].channels[3].scale: must be a number, not a string
//	connectors[2].type: unknown connector type "modbsu" (did you mean "modbus"? known: modbus, mqtt)
//
// Disabled connectors are validated too.
func Parse(data []byte) (*Config, error) {
	c := &Config{}
	var es strict.Errors
	es.Merge("", strict.Decode(data, c))
	if len(es) > 0 && es[0].Path == "" {
		// Not JSON, or not an object: nothing below can help.
		return nil, scrubErrors(data, es)
	}
	c.applyDefaults()
	var sem, drv strict.Errors
	c.validate(&sem)
	c.checkDrivers(&drv)
	// A device's and a channel's keys are shared: the core's ("interval",
	// "unit") and the driver's ("unit_id", "register"). The driver reports
	// the keys neither knows, suggesting only its own; add the core's.
	drv.Resuggest(coreKeys)
	// A problem already reported is not reported again inside the same
	// value: a missing name is "is required", not also "must not be empty";
	// settings that are not an object are not also the driver's complaint.
	for _, more := range []strict.Errors{sem, drv} {
		known := len(es)
		for _, e := range more {
			if !coveredBy(es[:known], e.Path) {
				es = append(es, e)
			}
		}
	}
	if len(es) > 0 {
		es.Sort()
		return nil, scrubErrors(data, es)
	}
	return c, nil
}

var (
	devicePath  = regexp.MustCompile(`^connectors\[\d+\]\.devices\[\d+\]$`)
	channelPath = regexp.MustCompile(`^connectors\[\d+\]\.devices\[\d+\]\.channels\[\d+\]$`)
	deviceKeys  = strict.Keys(Device{})
	channelKeys = strict.Keys(Channel{})
)

// coreKeys names the keys the core takes in the object at path: those of
// a device or a channel, nothing elsewhere.
func coreKeys(path string) []string {
	switch {
	case channelPath.MatchString(path):
		return channelKeys
	case devicePath.MatchString(path):
		return deviceKeys
	}
	return nil
}

// scrubErrors takes the document's secret values out of its errors: they
// are logged, kept in the status and shown by `osgate validate`, and a
// message may quote a value (a URL, a name) that holds one.
func scrubErrors(data []byte, es strict.Errors) strict.Errors {
	var doc any
	if json.Unmarshal(data, &doc) != nil {
		return es
	}
	secrets := redact.Secrets(doc)
	for i := range es {
		es[i].Msg = redact.Scrub(es[i].Msg, secrets)
	}
	return es
}

// coveredBy says whether path is, or is inside, a path that already has a
// problem.
func coveredBy(es strict.Errors, path string) bool {
	for _, e := range es {
		if e.Path == path || len(path) > len(e.Path) && path[:len(e.Path)] == e.Path && (path[len(e.Path)] == '.' || path[len(e.Path)] == '[') {
			return true
		}
	}
	return false
}

// Load reads and parses the file at path. Its errors name the file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: read %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s:\n%w", path, err)
	}
	return c, nil
}
