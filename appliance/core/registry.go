package core

import (
	"fmt"
	"sort"
	"sync"
)

var (
	regMu     sync.RWMutex
	factories = map[string]Factory{}
	hidden    = map[string]bool{}
)

// Register makes a driver known under a connector type. Drivers call it from
// init; registering a type twice is a programming error and panics.
func Register(typ string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := factories[typ]; dup {
		panic(fmt.Sprintf("core: connector type %q registered twice", typ))
	}
	factories[typ] = f
}

// RegisterHidden makes a connector type known like Register, but Types
// never lists it: a type for tests of the whole appliance, which works
// when a config names it and is not offered to integrators.
func RegisterHidden(typ string, f Factory) {
	Register(typ, f)
	regMu.Lock()
	hidden[typ] = true
	regMu.Unlock()
}

// Lookup returns the Factory of a connector type.
func Lookup(typ string) (Factory, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	f, ok := factories[typ]
	return f, ok
}

// Types lists the registered connector types, sorted, without the hidden
// ones.
func Types() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	ts := make([]string, 0, len(factories))
	for t := range factories {
		if !hidden[t] {
			ts = append(ts, t)
		}
	}
	sort.Strings(ts)
	return ts
}
