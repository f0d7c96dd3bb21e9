package testpeer

import (
	"bufio"
	"fmt"
	"strings"
)

// ReadHTTPStatus reads one HTTP/1.1 response from br and returns its
// status, skipping its body (Content-Length). Flood tests write requests
// by hand on one connection, as an attacker would, with paths and headers
// net/http's client would not send.
func ReadHTTPStatus(br *bufio.Reader) (int, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return 0, err
	}
	var proto string
	var status int
	if _, err := fmt.Sscanf(line, "%s %d", &proto, &status); err != nil {
		return 0, fmt.Errorf("status line %q: %v", line, err)
	}
	length := 0
	for {
		h, err := br.ReadString('\n')
		if err != nil {
			return 0, err
		}
		h = strings.TrimRight(h, "\r\n")
		if h == "" {
			break
		}
		if v, ok := strings.CutPrefix(strings.ToLower(h), "content-length:"); ok {
			fmt.Sscan(strings.TrimSpace(v), &length)
		}
	}
	if _, err := br.Discard(length); err != nil {
		return 0, err
	}
	return status, nil
}
