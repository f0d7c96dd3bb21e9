package mqtt

import (
	"testing"

	"github.com/osgate/osgate/appliance/core"
)

// FuzzSettings: any settings document gives a connector or an error, never
// a panic.
func FuzzSettings(f *testing.F) {
	f.Add(`{"brokers":[{"url":"tcp://h:1"}],"mappings":[{"topic":"a/{device}","channels":[{"name":"v"}]}]}`)
	f.Add(`{"brokers":[{"url":"ssl://h:1","ca_file":"x","qos":2,"keep_alive":"1s"}],"mappings":[{"topic":"#","device":"{json:id}","time":{"path":"t","format":"unix"},"channels":[{"each":""}]}]}`)
	f.Add(`{"brokers":[{"url":"ws://[::1]:1/p","persistent_session":false}],"mappings":[{"topic":"s/{device}/{c}","payload":"text","channels":[{"name":"{c}","type":"bool"}]}],"only_configured":true}`)
	f.Add(`{"brokers":[{}],"mappings":[{}]}`)
	f.Add(`{`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, settings string) {
		c, err := New(core.ConnectorConfig{Name: "fz", Settings: []byte(settings),
			Devices: []*core.Device{{Name: "d", Settings: []byte(`{"source":"x"}`)}}})
		if err == nil {
			if len(c.(*Connector).subs) == 0 {
				t.Fatal("a connector without subscriptions")
			}
			c.Close()
		} else if err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}
