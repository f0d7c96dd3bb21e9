package ota

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/osgate/osgate/internal/testpeer"
)

// server is nginx from Debian serving a directory of releases on loopback,
// as any static server would; its access log records each request's
// status and Range header.
type server struct {
	dir, prefix, addr string
}

func startNginx(t *testing.T, dir string) *server {
	t.Helper()
	s := &server{dir: dir, prefix: t.TempDir(), addr: testpeer.Addr(testpeer.FreePort(t))}
	conf := fmt.Sprintf(`daemon off;
master_process off;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
	log_format ota '$request_method $uri $status "$http_range"';
	access_log %[1]s/access.log ota;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	default_type application/octet-stream;
	server {
		listen %[2]s;
		root %[3]s;
	}
}
`, s.prefix, s.addr, dir)
	confPath := filepath.Join(s.prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testpeer.LookPath(t, "nginx", "nginx"), "-p", s.prefix, "-c", confPath, "-e", filepath.Join(s.prefix, "error.log"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			log, _ := os.ReadFile(filepath.Join(s.prefix, "error.log"))
			t.Fatalf("nginx exited at start: %v\n%s", err, log)
		default:
		}
		if c, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx not listening on %s after 30s", s.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) url(channel string) string {
	return "http://" + s.addr + "/" + channel + "/manifest.json"
}

// requests returns the access log lines for paths containing substr. nginx
// writes a line after answering, so callers look after the agent moved on.
func (s *server) requests(t *testing.T, substr string) []string {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(s.prefix, "access.log"))
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}
