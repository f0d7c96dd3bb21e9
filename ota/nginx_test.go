package ota

import (
	"testing"

	"github.com/osgate/osgate/internal/testpeer"
)

// server is nginx from Debian serving a directory of releases on loopback,
// as any static server would; its access log records each request's
// status and Range header.
type server struct {
	*testpeer.Nginx
	dir string
}

func startNginx(t *testing.T, dir string) *server {
	t.Helper()
	return &server{Nginx: testpeer.StartNginx(t, testpeer.NginxOptions{Root: dir}), dir: dir}
}

func (s *server) url(channel string) string {
	return "http://" + s.Addr() + "/" + channel + "/manifest.json"
}

// requests returns the access log lines for paths containing substr. nginx
// writes a line after answering, so callers look after the agent moved on.
func (s *server) requests(t *testing.T, substr string) []string {
	t.Helper()
	return s.AccessLog(substr)
}
