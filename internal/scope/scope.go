// Package scope names what an RPC key may do. Every JSON-RPC method needs
// one scope, and every key (an HTTP API key or a cloud operator key)
// carries one; a key may call a method when its scope is at least the
// method's. The scopes are ordered: admin includes write, write includes
// read.
package scope

import "fmt"

// Scope is what a key may do, or what a method needs.
type Scope uint8

const (
	// None allows nothing: a call without an authenticated caller.
	None Scope = iota
	// Read: status and lists; reading devices now.
	Read
	// Write: changes to the plant and the connectors: device.write,
	// connectors.restart, driver commands.
	Write
	// Admin: the gateway itself: its configuration, updates (OTA), keys.
	Admin
)

// Default is the scope of a key whose configuration names none: the
// least that is useful.
const Default = Read

var names = [...]string{None: "none", Read: "read", Write: "write", Admin: "admin"}

// String is the scope's name as the configuration writes it.
func (s Scope) String() string {
	if int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprintf("scope(%d)", uint8(s))
}

// Parse reads a scope from a configuration: "read", "write" or "admin";
// "" is Default.
func Parse(s string) (Scope, error) {
	switch s {
	case "":
		return Default, nil
	case "read":
		return Read, nil
	case "write":
		return Write, nil
	case "admin":
		return Admin, nil
	}
	return None, fmt.Errorf("%.32q is not a scope: use \"read\", \"write\" or \"admin\"", s)
}

// Allows reports whether a key of scope s may call a method that needs
// need. Nothing allows None: every method needs a real scope.
func (s Scope) Allows(need Scope) bool {
	return need != None && s >= need && s <= Admin
}
