package all

import (
	"testing"

	"github.com/osgate/osgate/config"
)

// TestValidateCatchesPortConflicts: an ingest endpoint on the RPC
// service's port, or two on one port, would fail at start; validation
// refuses them with the keys that clash.
func TestValidateCatchesPortConflicts(t *testing.T) {
	const key = `"api_keys": [{"name": "k", "sha256": "0000000000000000000000000000000000000000000000000000000000000000"}]`
	doc := `{"rpc": {"listen": "127.0.0.1:8090"}, "connectors": [
		{"name": "in1", "type": "http", "settings": {"ingest": {"listen": "0.0.0.0:8090", ` + key + `}}},
		{"name": "in2", "type": "http", "settings": {"ingest": {"listen": "127.0.0.1:8091", ` + key + `}}},
		{"name": "in3", "type": "http", "settings": {"ingest": {"listen": "localhost:8091", ` + key + `}}},
		{"name": "off", "type": "http", "enabled": false, "settings": {"ingest": {"listen": "127.0.0.1:8091", ` + key + `}}}]}`
	_, err := config.Parse([]byte(doc))
	want := "connectors[0].settings.ingest.listen: port 8090 is also taken by rpc.listen (127.0.0.1:8090): two listeners cannot share it\n" +
		"connectors[2].settings.ingest.listen: port 8091 is also taken by connectors[1].settings.ingest.listen (127.0.0.1:8091): two listeners cannot share it"
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}
