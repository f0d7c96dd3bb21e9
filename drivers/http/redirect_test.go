package http

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/core"
	"github.com/osgate/osgate/internal/testpeer"
)

// TestRedirectToAnotherHost polls through nginx with two server blocks:
// 127.0.0.1 answers /data with a redirect to 127.0.0.2 (another host),
// keeping the query; 127.0.0.2 logs every header a credential could be in.
// A device that sends credentials (an auth header, a custom header, a token
// in the query) must not follow the redirect; a device without any may,
// and sends no Referer either way. A redirect within the same host keeps
// working.
func TestRedirectToAnotherHost(t *testing.T) {
	other := testpeer.FreePort(t)
	otherAddr := fmt.Sprintf("127.0.0.2:%d", other)
	root := t.TempDir()
	nginx := testpeer.StartNginx(t, testpeer.NginxOptions{
		Root:      root,
		LogFormat: `$server_addr $request_method $uri $status args=[$args] auth=[$http_authorization] key=[$http_x_api_key] cookie=[$http_cookie] referer=[$http_referer]`,
		Server: fmt.Sprintf(`
		location = /data { return 302 http://%[1]s/collect$is_args$args; }
		location = /moved { return 301 /here; }
		location = /here { default_type application/json; return 200 '{"v":2}'; }`, otherAddr),
		HTTP: fmt.Sprintf(`server {
		listen %s;
		location = /collect { default_type application/json; return 200 '{"v":1}'; }
	}`, otherAddr),
	})
	base := "http://" + nginx.Addr()
	devs := []*core.Device{
		dev("with-creds", fmt.Sprintf(`{"url": %q, "headers": {"X-Api-Key": "hdr-secret-1", "Cookie": "session=cookie-secret-2"}, "auth": {"type": "bearer", "token": "bearer-secret-3"}}`, base+"/data?token=query-secret-4"), ch("v", "", `{"path": "v"}`)),
		dev("query-only", fmt.Sprintf(`{"url": %q}`, base+"/data?token=query-secret-5"), ch("v", "", `{"path": "v"}`)),
		dev("plain", fmt.Sprintf(`{"url": %q}`, base+"/data"), ch("v", "", `{"path": "v"}`)),
		dev("same-host", fmt.Sprintf(`{"url": %q, "auth": {"type": "bearer", "token": "bearer-secret-6"}}`, base+"/moved"), ch("v", "", `{"path": "v"}`)),
	}
	p := newConn(t, "redirects", `{}`, devs).(core.Poller)
	for _, name := range []string{"with-creds", "query-only"} {
		_, err := poll(t, p, devs[indexOf(devs, name)], 30*time.Second)
		if err == nil || !strings.Contains(err.Error(), "redirect to another host") {
			t.Errorf("%s: %v, want a refused redirect to another host", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows a secret: %v", name, err)
		}
	}
	if rs, err := poll(t, p, devs[indexOf(devs, "plain")], 30*time.Second); err != nil || len(rs) != 1 || rs[0].Value != 1.0 {
		t.Errorf("plain: %v %v, want v=1 from the other host", rs, err)
	}
	if rs, err := poll(t, p, devs[indexOf(devs, "same-host")], 30*time.Second); err != nil || len(rs) != 1 || rs[0].Value != 2.0 {
		t.Errorf("same-host: %v %v, want v=2 after a redirect within the host", rs, err)
	}
	time.Sleep(200 * time.Millisecond) // nginx logs after answering
	for _, l := range nginx.AccessLog("/collect") {
		if strings.Contains(l, "secret") || !strings.Contains(l, "referer=[-]") {
			t.Errorf("the other host received: %s", l)
		}
	}
	if n := len(nginx.AccessLog("/collect")); n != 1 {
		t.Errorf("the other host was asked %d times, want once (the device without credentials)", n)
	}
	if l := nginx.AccessLog("/here"); len(l) != 1 || !strings.Contains(l[0], "auth=[Bearer bearer-secret-6]") || !strings.Contains(l[0], "referer=[-]") {
		t.Errorf("same-host redirect: %q, want the credentials kept and no Referer", l)
	}
}

func indexOf(devs []*core.Device, name string) int {
	for i, d := range devs {
		if d.Name == name {
			return i
		}
	}
	panic(name)
}
