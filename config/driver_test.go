package config

import (
	"sync/atomic"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/strict"
)

// Test driver types, registered under names no real driver uses.
const (
	testType      = "test-config-xyz"
	testPanicType = "test-config-panic"
	testAnyType   = "test-config-any" // accepts any settings
)

// closes counts Close calls on test connectors: validation must close
// what it builds.
var closes atomic.Int64

type testConn struct{}

func (testConn) Close() error { closes.Add(1); return nil }

// testSettings is the test driver's settings object.
type testSettings struct {
	Port string `json:"port" strict:"required"`
}

type testDevice struct {
	UnitID int `json:"unit_id"`
}

type testChannel struct {
	Register *int `json:"register" strict:"required"`
}

// testFactory checks its part strictly, as a real driver does, with paths
// relative to the connector.
func testFactory(cc core.ConnectorConfig) (core.Connector, error) {
	var es strict.Errors
	var s testSettings
	es.Merge("settings", strict.Decode(cc.Settings, &s))
	for i, d := range cc.Devices {
		p := strict.Index("devices", i)
		var ds testDevice
		es.Merge(p, strict.Decode(d.Settings, &ds))
		if ds.UnitID < 0 || ds.UnitID > 247 {
			es.Add(p+".unit_id", "must be from 0 to 247, not %d", ds.UnitID)
		}
		for j, ch := range d.Channels {
			var cs testChannel
			es.Merge(strict.Index(p+".channels", j), strict.Decode(ch.Settings, &cs))
		}
	}
	if len(es) > 0 {
		return nil, es
	}
	return testConn{}, nil
}

func init() {
	core.Register(testType, testFactory)
	core.Register(testAnyType, func(core.ConnectorConfig) (core.Connector, error) { return testConn{}, nil })
	core.Register(testPanicType, func(core.ConnectorConfig) (core.Connector, error) {
		panic("a driver bug")
	})
}
