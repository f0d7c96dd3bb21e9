// Package all registers every connector type osgate ships. A new protocol
// is a new folder under drivers/ and one line here.
package all

import (
	_ "github.com/osgate/osgate/drivers/http"   // HTTP ingest and REST polling
	_ "github.com/osgate/osgate/drivers/mbus"   // wired M-Bus (EN 13757)
	_ "github.com/osgate/osgate/drivers/modbus" // Modbus TCP, RTU, RTU over TCP
	_ "github.com/osgate/osgate/drivers/mqtt"   // MQTT field brokers
	_ "github.com/osgate/osgate/drivers/system" // the gateway's own telemetry
	_ "github.com/osgate/osgate/drivers/zwave"  // Z-Wave Serial API sticks
)
