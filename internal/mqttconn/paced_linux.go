//go:build linux

package mqttconn

import (
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// rawReader reads a TCP connection's socket without waiting.
type rawReader struct{ rc syscall.RawConn }

func newRawReader(c net.Conn) rawReader {
	t, ok := c.(*net.TCPConn)
	if !ok {
		return rawReader{}
	}
	rc, err := t.SyscallConn()
	if err != nil {
		return rawReader{}
	}
	return rawReader{rc}
}

func (r rawReader) ok() bool { return r.rc != nil }

// setLowat sets SO_RCVLOWAT.
func (r rawReader) setLowat(n int) error {
	var serr error
	if err := r.rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, n) }); err != nil {
		return err
	}
	if serr != nil {
		return &net.OpError{Op: "setsockopt SO_RCVLOWAT", Net: "tcp", Err: serr}
	}
	return nil
}

// tryRead reads what has arrived, if anything: ok is false when nothing
// has.
func (r rawReader) tryRead(p []byte) (n int, ok bool, err error) {
	var rerr error
	if err := r.rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = unix.Read(int(fd), p)
			if rerr != unix.EINTR {
				return true
			}
		}
	}); err != nil {
		return 0, true, err
	}
	switch {
	case rerr == unix.EAGAIN:
		return 0, false, nil
	case rerr != nil:
		return 0, true, &net.OpError{Op: "read", Net: "tcp", Err: rerr}
	case n == 0:
		return 0, true, io.EOF
	}
	return n, true, nil
}
