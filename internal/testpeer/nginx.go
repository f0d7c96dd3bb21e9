package testpeer

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
)

// NginxOptions shape the conf StartNginx writes: one server on a free
// loopback port serving Root as a static site, as any web server or object
// store would.
type NginxOptions struct {
	// Root is the document root.
	Root string
	// TLS adds "ssl" to the listener; Server then carries the
	// ssl_certificate lines.
	TLS bool
	// Server is extra directives inside server {} (TLS files, a location
	// block with auth rules).
	Server string
	// LogFormat is the access log's format (default: method, URI, status
	// and Range header).
	LogFormat string
	// HTTP is extra directives inside http {}: another server block (a
	// second host, with its own listen line), for instance.
	HTTP string
	// WorkerConnections bounds the connections nginx keeps open at once
	// (default 64); a fleet of clients that keep theirs alive needs one
	// each.
	WorkerConnections int
}

// Nginx is a running (or stopped) nginx owned by one test.
type Nginx struct {
	t      testing.TB
	prefix string
	conf   string
	addr   string
	cmd    *exec.Cmd
	done   chan error
}

// StartNginx writes a conf into a fresh temporary directory and starts
// Debian's nginx on a loopback port, waiting up to 30 s until it accepts
// connections. It is stopped when the test ends.
func StartNginx(t testing.TB, o NginxOptions) *Nginx {
	t.Helper()
	n := &Nginx{t: t, prefix: t.TempDir(), addr: Addr(FreePort(t))}
	n.conf = filepath.Join(n.prefix, "nginx.conf")
	if o.LogFormat == "" {
		o.LogFormat = `$request_method $uri $status "$http_range"`
	}
	if o.WorkerConnections == 0 {
		o.WorkerConnections = 64
	}
	listen := n.addr
	if o.TLS {
		listen += " ssl"
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections %[7]d; }
http {
	log_format peer '%[2]s';
	access_log %[1]s/access.log peer;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	default_type application/octet-stream;
	server {
		listen %[3]s;
		root %[4]s;
		%[5]s
	}
	%[6]s
}
`, n.prefix, o.LogFormat, listen, o.Root, o.Server, o.HTTP, o.WorkerConnections)
	if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n.Start()
	t.Cleanup(n.Stop)
	return n
}

// Addr is host:port of the server.
func (n *Nginx) Addr() string { return n.addr }

// Start runs nginx (again, on the same port) and waits for it.
func (n *Nginx) Start() {
	t := n.t
	t.Helper()
	n.cmd = exec.Command(LookPath(t, "nginx", "nginx"), "-p", n.prefix, "-c", n.conf, "-e", filepath.Join(n.prefix, "error.log"))
	n.cmd.Stdout, n.cmd.Stderr = os.Stderr, os.Stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("testpeer: start nginx: %v", err)
	}
	n.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(n.cmd, n.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-n.done:
			log, _ := os.ReadFile(filepath.Join(n.prefix, "error.log"))
			n.cmd = nil
			t.Fatalf("testpeer: nginx exited at start: %v\n%s", err, log)
		default:
		}
		c, err := net.DialTimeout("tcp", n.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testpeer: nginx not listening on %s after 30s: %v", n.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends nginx (SIGTERM, then SIGKILL after 30 s) and waits for it.
func (n *Nginx) Stop() {
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		n.cmd.Process.Kill()
		<-n.done
	}
	n.cmd = nil
}

// AccessLog returns the access log's lines that contain substr. nginx
// writes a line after it has answered: look after the client moved on.
func (n *Nginx) AccessLog(substr string) []string {
	b, _ := os.ReadFile(filepath.Join(n.prefix, "access.log"))
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}
