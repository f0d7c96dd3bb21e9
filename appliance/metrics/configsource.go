package metrics

// Config source (config/source). Kept in its own file: the config source
// owns these.

// ConfigFetches counts pulls of the gateway's configuration from the fleet
// server; outcome is "200" (a document was accepted), "304" (unchanged),
// "error" (unreachable, HTTP error, timeout) or "refused" (signature,
// validation or a bad version).
var ConfigFetches = counter("osgate_config_fetches_total", "Remote configuration pulls by outcome: 200, 304, error, refused.", "outcome")
