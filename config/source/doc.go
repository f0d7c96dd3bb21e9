// Package source decides which configuration document the gateway runs.
//
// The fleet server (any static HTTP(S) server or object store) is the source
// of truth. A Source pulls the gateway's document at an interval with
// conditional requests (an unchanged document costs one 304), checks its
// detached ed25519 signature when a public key is configured, validates it
// with the caller's function, and caches the last good document in bbolt
// (stateDir/config.db, which holds nothing else). When the fleet cannot be
// reached the cached document is used, and without one the local file.
// With no remote configured, the local file is the whole configuration and
// is re-read when it changes.
//
// The package does not know the configuration schema: the caller passes a
// validate function (config.Parse) and receives its result with each
// Update. Applying a document, and rolling it back, is the caller's job;
// MarkBad records a rolled-back version so it is not delivered again.
package source
