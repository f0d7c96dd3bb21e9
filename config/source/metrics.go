package source

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// configFetches counts pulls of the gateway's configuration from the fleet
// server; outcome is "200" (a document was accepted), "304" (unchanged),
// "error" (unreachable, HTTP error, timeout) or "refused" (signature,
// validation or a bad version). It counts whether or not it is served:
// Options.Metrics puts it on a registry.
var configFetches = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "osgate_config_fetches_total",
	Help: "Remote configuration pulls by outcome: 200, 304, error, refused.",
}, []string{"outcome"})

// register puts the source's metrics on r (nil: nowhere). A second
// source on the same registry shares them.
func register(r prometheus.Registerer) error {
	if r == nil {
		return nil
	}
	if err := r.Register(configFetches); err != nil {
		var dup prometheus.AlreadyRegisteredError
		if !errors.As(err, &dup) || dup.ExistingCollector != configFetches {
			return err
		}
	}
	return nil
}
