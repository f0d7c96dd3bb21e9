package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestMarshalRoundTrip(t *testing.T) {
	doc := `{"gateway": {"id": "gw"}, "broker": {"managed": true, "username": "u", "password": "p",
	    "bridge": {"address": "c:1", "tls": false, "topics_out": [], "topics_in": ["cmd/#"], "qos": 0}},
	  "export": {"qos": 0, "retain": true},
	  "rpc": {"listen": "off", "api_keys": [{"name": "k", "sha256": "` + strings.Repeat("0", 64) + `"}]},
	  "connectors": [{"name": "bus", "type": "test-config-any", "enabled": false, "settings": {"port": "p", "x": [1, {"y": null}]},
	    "devices": [{"name": "d", "interval": "1m30s", "unit_id": 4, "channels": [
	      {"name": "c", "register": 7, "scale": 0, "offset": -1.5, "min": 0, "deadband": {"percent": 2, "max_silence": "0s"}, "_comment": "gone"}]}]}]}`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"interval":"1m30s"`, `"timeout":"5s"`, `"unit_id":4`, `"register":7`, `"scale":0,`, `"topics_out":[]`,
		`"qos":0`, `"managed":true`, `"enabled":false`, `"max_silence":"0s"`, `"settings":{"port":"p","x":[1,{"y":null}]}`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("encoded config lacks %s:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "Driver") || strings.Contains(string(b), "_comment") {
		t.Errorf("encoded config shows Go names or comments:\n%s", b)
	}
	back, err := Parse(b)
	if err != nil {
		t.Fatalf("re-parse of\n%s\n: %v", b, err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip differs:\n%s", b)
	}
	// A device alone encodes the same way.
	db, err := json.Marshal(c.Connectors[0].Devices[0])
	if err != nil || !strings.HasPrefix(string(db), `{"name":"d","interval":"1m30s","timeout":"5s","channels":[{"name":"c",`) || !strings.HasSuffix(string(db), `"unit_id":4}`) {
		t.Fatalf("device: %s %v", db, err)
	}
}
