package export

// The status documents: what the cloud knows of a gateway and its devices,
// as retained messages on the topics of internal/topic. docs/status.md
// describes them for integrators; keep the two in step.

// GatewayStatus is the retained document on status/{gateway}: the state of
// the gateway the fleet sees (osgate fleet ls). The online document carries
// every field; the will and the offline document of a clean stop carry the
// identity (id, version, boot, labels) and, at a stop, the update agent.
type GatewayStatus struct {
	// ID is the gateway's id, as in the topic.
	ID string `json:"id,omitempty"`
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
	// At is when the document was made (RFC 3339, UTC, gateway clock):
	// the fleet's "last seen". Absent in the will.
	At string `json:"at,omitempty"`
	// Uptime of the gateway process, in seconds.
	Uptime int64 `json:"uptime,omitempty"`
	// Health is the health model's verdict and its reasons.
	Health *HealthStatus `json:"health,omitempty"`
	// Config is the running configuration.
	Config *ConfigStatus `json:"config,omitempty"`
	// OTA is the update agent's state (absent without an agent).
	OTA *OTAStatus `json:"ota,omitempty"`
	// Devices counts the configured devices by state.
	Devices map[string]int `json:"devices,omitempty"`
	// Spool is how many exported messages the gateway still holds on its
	// disk: not yet safe in its broker, or kept until the cloud has them.
	Spool *int `json:"spool,omitempty"`
	// Labels are gateway.labels of the local bootstrap file.
	Labels map[string]string `json:"labels,omitempty"`
}

// HealthStatus is the health part of a GatewayStatus.
type HealthStatus struct {
	// Status is "ok", "degraded" or "unhealthy".
	Status string `json:"status"`
	// Reasons why it is not ok (at most MaxReasons, each clipped).
	Reasons []string `json:"reasons,omitempty"`
}

// ConfigStatus is the configuration part of a GatewayStatus.
type ConfigStatus struct {
	// Version is the first 12 hex digits of the running document's SHA-256
	// (its version in config/source), or the name of a document without
	// one ("embedded", "local").
	Version string `json:"version"`
	// Origin is where it came from: remote, cache, local, embedded.
	Origin string `json:"origin"`
	// Error is the last problem with the fleet's document (refused,
	// unreachable), cleared when one is taken; secrets cut out.
	Error string `json:"error,omitempty"`
	// Bad are the versions rolled back (12 hex digits), newest last.
	Bad []string `json:"bad,omitempty"`
	// Trial: the running configuration replaced a confirmed one less than
	// gateway.config_grace ago, or has been unhealthy since; the gateway
	// goes back to the confirmed one if it stays unhealthy. Absent once it
	// is confirmed (and for the first configuration of a start, which has
	// nothing to go back to).
	Trial bool `json:"trial,omitempty"`
	// Rejected is the last configuration the gateway rolled back.
	Rejected *RejectedConfig `json:"rejected,omitempty"`
}

// RejectedConfig is a configuration the gateway rolled back: it failed to
// start, or left the gateway unhealthy for gateway.config_grace.
type RejectedConfig struct {
	// Version is its version (12 hex digits).
	Version string `json:"version"`
	// Reason says why (clipped, secrets cut out).
	Reason string `json:"reason,omitempty"`
	// At is when (RFC 3339, UTC).
	At string `json:"at,omitempty"`
}

// OTAStatus is the update agent's part of a GatewayStatus.
type OTAStatus struct {
	// State is ota.status's state: idle, downloading, writing, rebooting,
	// trying, rolling back, confirmed, rolled back, failed, refused, error.
	State string `json:"state"`
	// Status is ota.status's text ("trying v1.4.0", "rolled back: ...").
	Status string `json:"status,omitempty"`
	// Target is the version being installed.
	Target string `json:"target,omitempty"`
	// Last is the outcome of the last update.
	Last string `json:"last,omitempty"`
	// Failed are the versions that failed here and are not tried again.
	Failed []string `json:"failed,omitempty"`
	// Cohort is the gateway's rollout cohort (0-99), when the agent pulls
	// a per-cohort manifest.
	Cohort *int `json:"cohort,omitempty"`
}

// MaxReasons bounds the health reasons a GatewayStatus carries.
const MaxReasons = 8

// DeviceStatus is the retained document on status/{gateway}/devices/{device}.
type DeviceStatus struct {
	// State is "online", "degraded", "offline" or "disabled".
	State string `json:"state"`
	// Since is when the state began (RFC 3339, UTC, milliseconds).
	Since string `json:"since"`
	// Reason says why the device entered the state (not for online).
	Reason string `json:"reason,omitempty"`
}

// Spooled is how many accepted messages the spool holds: not yet safe
// in the broker, or kept to be sent again until the cloud has them (the
// status document's spool).
func (s *Sink) Spooled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.spool.next - s.spool.kept)
}
