package zwave

import (
	"fmt"
	"io"

	"go.bug.st/serial"
)

// openPort opens a stick at 115200 8N1 and discards whatever the stick (or
// a pseudo-terminal) queued while nobody was reading: stale callbacks and
// reports would otherwise be taken for answers to our first requests.
func openPort(path string) (io.ReadWriteCloser, error) {
	p, err := serial.Open(path, &serial.Mode{
		BaudRate: 115200,
		DataBits: 8,
		Parity:   serial.NoParity,
		StopBits: serial.OneStopBit,
	})
	if err != nil {
		return nil, fmt.Errorf("zwave: open %s: %w", path, err)
	}
	if err := p.ResetInputBuffer(); err != nil {
		p.Close()
		return nil, fmt.Errorf("zwave: flush stale input of %s: %w", path, err)
	}
	return p, nil
}
