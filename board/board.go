// Package board knows the gateway's hardware: which serial port is the
// RS-485 interface, where the Z-Wave stick is. Config names ports by path
// ("/dev/ttyUSB0") or by a board port name ("rs485-0") that a profile
// resolves.
package board

import (
	"fmt"
	"strings"
)

// ResolvePort turns a configured port into a device path. Paths are
// returned as they are, so they work before any profile exists.
func ResolvePort(port string) (string, error) {
	if port == "" {
		return "", fmt.Errorf("board: empty port")
	}
	if strings.HasPrefix(port, "/") {
		return port, nil
	}
	return resolveName(port)
}
