package source

import "time"

// Origin says where a document came from.
type Origin string

const (
	// Remote: pulled from the fleet server (or confirmed by it with a 304).
	Remote Origin = "remote"
	// Cache: the last good remote document from config.db, used while the
	// fleet server cannot be reached.
	Cache Origin = "cache"
	// Local: the local file.
	Local Origin = "local"
)

// Status is what gateway.config.status reports.
type Status struct {
	// Source, Version (hex SHA-256 of the document) and ETag of the
	// running document.
	Source  Origin `json:"source"`
	Version string `json:"version"`
	ETag    string `json:"etag,omitempty"`
	// URL is the document's URL on the fleet server ("" without remote).
	URL string `json:"url,omitempty"`
	// LastFetch is when the fleet server was last asked, LastOutcome how
	// that ended: "200", "304", "error" or "refused".
	LastFetch   time.Time `json:"last_fetch,omitzero"`
	LastOutcome string    `json:"last_outcome,omitempty"`
	// LastError is the last failure (fetch, signature, validation, local
	// file), LastErrorAt when; kept until a later document is accepted.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// BadVersions were rolled back and are not delivered again.
	BadVersions []BadVersion `json:"bad_versions"`
}
