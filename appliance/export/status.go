package export

// The status documents: what the cloud knows of a gateway and its devices,
// as retained messages on the topics of internal/topic. docs/status.md
// describes them for integrators; keep the two in step.

// GatewayStatus is the retained document on status/{gateway}.
type GatewayStatus struct {
	// State is "online" or "offline".
	State string `json:"state"`
	// Since is when the state began (RFC 3339, UTC); absent in the will,
	// whose time is when the broker published it.
	Since string `json:"since,omitempty"`
	// Reason says why the gateway is offline.
	Reason string `json:"reason,omitempty"`
	// Version of osgate.
	Version string `json:"version"`
	// Boot identifies the gateway process: a new one at every start, the
	// same in the process's online document and its will.
	Boot string `json:"boot"`
	// Devices counts the configured devices by state.
	Devices map[string]int `json:"devices,omitempty"`
}

// DeviceStatus is the retained document on status/{gateway}/devices/{device}.
type DeviceStatus struct {
	// State is "online", "degraded", "offline" or "disabled".
	State string `json:"state"`
	// Since is when the state began (RFC 3339, UTC, milliseconds).
	Since string `json:"since"`
	// Reason says why the device entered the state (not for online).
	Reason string `json:"reason,omitempty"`
}
