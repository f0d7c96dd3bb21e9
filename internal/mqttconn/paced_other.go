//go:build !linux

package mqttconn

import (
	"errors"
	"net"
)

// rawReader: paced reading is Linux's (SO_RCVLOWAT); elsewhere the
// connection reads at each arrival.
type rawReader struct{}

func newRawReader(net.Conn) rawReader { return rawReader{} }

func (rawReader) ok() bool { return false }

func (rawReader) setLowat(int) error { return errors.ErrUnsupported }

func (rawReader) tryRead([]byte) (int, bool, error) { return 0, false, nil }
