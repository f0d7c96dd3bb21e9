package core

import (
	"fmt"
	"sort"
	"sync"
)

var (
	regMu     sync.RWMutex
	factories = map[string]Factory{}
	testOnly  = map[string]bool{}
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

// RegisterTestOnly registers a driver that exists for tests (built only
// with its build tag): Lookup finds it, Types never lists it, so no
// message suggests it to an integrator.
func RegisterTestOnly(typ string, f Factory) {
	Register(typ, f)
	regMu.Lock()
	testOnly[typ] = true
	regMu.Unlock()
}

// Lookup returns the Factory of a connector type.
func Lookup(typ string) (Factory, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	f, ok := factories[typ]
	return f, ok
}

// Types lists the registered connector types, sorted, without the
// test-only ones.
func Types() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	ts := make([]string, 0, len(factories))
	for t := range factories {
		if !testOnly[t] {
			ts = append(ts, t)
		}
	}
	sort.Strings(ts)
	return ts
}
