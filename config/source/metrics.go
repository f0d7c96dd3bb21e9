package source

import "github.com/osgate/osgate/internal/prom"

// configFetches counts pulls of the gateway's configuration from the fleet
// server; outcome is "200" (a document was accepted), "304" (unchanged),
// "error" (unreachable, HTTP error, timeout) or "refused" (signature,
// validation or a bad version). It counts whether or not it is served:
// Options.Metrics puts it on a registry.
var configFetches = prom.NewCounterVec("osgate_config_fetches_total",
	"Remote configuration pulls by outcome: 200, 304, error, refused.",
	"outcome")

// register puts the source's metrics on r (nil: nowhere). A second
// source on the same registry shares them.
func register(r *prom.Registry) error {
	if r == nil {
		return nil
	}
	return r.Register(configFetches)
}
