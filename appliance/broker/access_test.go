package broker

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/testpeer"
	"github.com/osgate/osgate/internal/tlsconf"
)

// client is a test MQTT client (clean session) that keeps every message
// it receives as "topic payload".
type client struct {
	c      mqtt.Client
	mu     sync.Mutex
	got    []string
	change chan struct{}
}

func dial(url, id, user, password string) (*client, error) {
	cl := &client{change: make(chan struct{})}
	cl.c = mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(password).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			cl.mu.Lock()
			cl.got = append(cl.got, m.Topic()+" "+string(m.Payload()))
			close(cl.change)
			cl.change = make(chan struct{})
			cl.mu.Unlock()
		}))
	tok := cl.c.Connect()
	if !tok.WaitTimeout(30 * time.Second) {
		return nil, fmt.Errorf("connect %s: timed out", id)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("connect %s: %w", id, err)
	}
	return cl, nil
}

func mustDial(t *testing.T, url, id, user, password string) *client {
	t.Helper()
	cl, err := dial(url, id, user, password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.c.Disconnect(100) })
	return cl
}

func (cl *client) sub(t *testing.T, filters ...string) {
	t.Helper()
	for _, f := range filters {
		if tok := cl.c.Subscribe(f, 1, nil); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", f, tok.Error())
		}
	}
}

// pub publishes at QoS 1 and waits for the broker's ack (which Mosquitto
// sends for a publish the ACL denies too, and then drops the message).
func (cl *client) pub(t *testing.T, topic, payload string) {
	t.Helper()
	if tok := cl.c.Publish(topic, 1, false, payload); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func (cl *client) has(msg string) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, m := range cl.got {
		if m == msg {
			return true
		}
	}
	return false
}

func (cl *client) hasPrefix(prefix string) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, m := range cl.got {
		if strings.HasPrefix(m, prefix) {
			return true
		}
	}
	return false
}

func (cl *client) wait(t *testing.T, who, msg string) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		cl.mu.Lock()
		ch := cl.change
		cl.mu.Unlock()
		if cl.has(msg) {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			cl.mu.Lock()
			defer cl.mu.Unlock()
			t.Fatalf("%s did not receive %q within 30s; got %q", who, msg, cl.got)
		}
	}
}

func (cl *client) lacks(t *testing.T, who string, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		if cl.has(m) {
			t.Errorf("%s received %q", who, m)
		}
	}
}

// TestLockedBroker is the attack of a local process on the managed broker,
// with its bridge to a cloud: it subscribes to everything and publishes
// fake RPC requests, responses and telemetry. It must read nothing but
// telemetry, and nothing it publishes may reach osgate or the cloud.
// osgate's own clients each do only their part; broker.username reads
// what osgate exports and what the bridge brings in, and writes only what
// the bridge sends up besides osgate's own topics.
func TestLockedBroker(t *testing.T) {
	cloud := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	b := runBroker(t, config.Broker{Username: "app", Password: "app-pw-1", Bridge: &config.Bridge{Address: cloud.Addr(),
		TopicsOut: []string{"telemetry/#", "events/#"}, TopicsIn: []string{"commands/gw-test/#"},
		Client: tlsconf.Client{TLS: new(false)},
	}})
	own := clients(t, b)
	cloudApp := mustDial(t, cloud.URL(), "cloud-app", "", "")
	cloudApp.sub(t, "#")
	anon := mustDial(t, b.URL(), "intruder", "", "")
	anon.sub(t, "#", "rpc/#", "$SYS/#")
	app := mustDial(t, b.URL(), "app", "app", "app-pw-1")
	app.sub(t, "#")
	rpc := mustDial(t, b.URL(), "osgate-rpc-gw-test", own.RPC.Username, own.RPC.Password)
	rpc.sub(t, "rpc/gw-test/request/+")
	exp := mustDial(t, b.URL(), "osgate-gw-test", own.Export.Username, own.Export.Password)

	// The bridge is up once a message from the cloud arrives.
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; ; i++ {
		msg := fmt.Sprintf("ping-%d", i)
		cloudApp.pub(t, "commands/gw-test/ping", msg)
		time.Sleep(200 * time.Millisecond)
		if app.has("commands/gw-test/ping " + msg) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the bridge did not bring a message in within 60s")
		}
	}

	// broker.username sees the bridge's state (retained, "1": up); an
	// anonymous client does not.
	app.wait(t, "broker.username", "status/gw-test/bridge 1")
	if anon.hasPrefix("status/") || anon.hasPrefix("$SYS/") {
		t.Errorf("an anonymous client read the bridge's state")
	}

	// A request from the cloud reaches the RPC responder alone.
	cloudApp.pub(t, "rpc/gw-test/request/r1", "request-1")
	rpc.wait(t, "the RPC responder", "rpc/gw-test/request/r1 request-1")
	// Telemetry and status from the export.
	exp.pub(t, "telemetry/gw-test/m1", "t1")
	exp.pub(t, "status/gw-test/m1", "s1")
	anon.wait(t, "an anonymous reader", "telemetry/gw-test/m1 t1")
	app.wait(t, "broker.username", "telemetry/gw-test/m1 t1")
	app.wait(t, "broker.username", "status/gw-test/m1 s1")
	cloudApp.wait(t, "the cloud", "telemetry/gw-test/m1 t1")

	// Fakes: none is delivered to anyone.
	anon.pub(t, "telemetry/gw-test/m1", "fake-anon")
	anon.pub(t, "rpc/gw-test/response/r1", "fake-response-anon")
	anon.pub(t, "rpc/gw-test/request/r2", "fake-request-anon")
	anon.pub(t, "events/x", "event-anon")
	app.pub(t, "telemetry/gw-test/m1", "fake-app")
	app.pub(t, "status/gw-test/m1", "fake-status-app")
	app.pub(t, "rpc/gw-test/response/r1", "fake-response-app")
	app.pub(t, "rpc/gw-test/request/r3", "fake-request-app")
	exp.pub(t, "rpc/gw-test/response/r1", "fake-response-export")
	exp.pub(t, "rpc/gw-test/request/r4", "fake-request-export")
	// What each may write gets through: the response, the export's
	// telemetry, and broker.username's events (in topics_out).
	app.pub(t, "events/x", "event-app")
	rpc.pub(t, "rpc/gw-test/response/r1", "response-1")
	exp.pub(t, "telemetry/gw-test/m1", "t2")
	cloudApp.wait(t, "the cloud", "rpc/gw-test/response/r1 response-1")
	cloudApp.wait(t, "the cloud", "telemetry/gw-test/m1 t2")
	cloudApp.wait(t, "the cloud", "events/x event-app")
	anon.wait(t, "an anonymous reader", "telemetry/gw-test/m1 t2")
	time.Sleep(time.Second) // anything denied would have arrived by now

	fakes := []string{"telemetry/gw-test/m1 fake-anon", "rpc/gw-test/response/r1 fake-response-anon", "rpc/gw-test/request/r2 fake-request-anon",
		"events/x event-anon", "telemetry/gw-test/m1 fake-app", "status/gw-test/m1 fake-status-app", "rpc/gw-test/response/r1 fake-response-app",
		"rpc/gw-test/request/r3 fake-request-app", "rpc/gw-test/response/r1 fake-response-export", "rpc/gw-test/request/r4 fake-request-export"}
	for name, cl := range map[string]*client{"the cloud": cloudApp, "an anonymous reader": anon, "broker.username": app, "the RPC responder": rpc} {
		cl.lacks(t, name, fakes...)
	}
	anon.lacks(t, "an anonymous reader", "rpc/gw-test/request/r1 request-1", "rpc/gw-test/response/r1 response-1",
		"status/gw-test/m1 s1", "commands/gw-test/ping ping-0", "events/x event-app")
	app.lacks(t, "broker.username", "rpc/gw-test/request/r1 request-1", "rpc/gw-test/response/r1 response-1")

	// osgate's users need their passwords.
	for _, l := range []Login{{own.Export.Username, "wrong"}, {own.RPC.Username, ""}, {"app", "wrong"}, {"nobody", "x"}} {
		if cl, err := dial(b.URL(), "login-check", l.Username, l.Password); err == nil {
			cl.c.Disconnect(100)
			t.Errorf("user %q logged in with password %q", l.Username, l.Password)
		}
	}

	// The files hold the secrets: 0600, and the passwords are not in the
	// password file or the conf.
	for _, p := range []string{filepath.Join(b.stateDir, ClientsFile), filepath.Join(b.dir, passwordFileName), filepath.Join(b.dir, aclFileName), filepath.Join(b.dir, confFileName)} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", p, err, st.Mode().Perm())
		}
	}
	for _, p := range []string{filepath.Join(b.dir, passwordFileName), filepath.Join(b.dir, aclFileName), filepath.Join(b.dir, confFileName)} {
		text, _ := os.ReadFile(p)
		for _, secret := range []string{own.Export.Password, own.RPC.Password, "app-pw-1"} {
			if strings.Contains(string(text), secret) {
				t.Errorf("%s holds a password in clear text", p)
			}
		}
	}
	// Made once, kept: a second broker on the same state dir has the same logins.
	again, err := New(config.Broker{}, "gw-test", b.stateDir, nil).Clients()
	if err != nil || again != own {
		t.Errorf("logins changed on a second load: %v", err)
	}
}

// TestACLText: what the ACL gives each user, and what it refuses to write.
func TestACLText(t *testing.T) {
	acl := func(cfg config.Broker, a Access) string {
		t.Helper()
		b, err := ACL(cfg, "gw-1", a)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	text := acl(config.Broker{Username: "app", Bridge: &config.Bridge{TopicsOut: []string{"telemetry/#", "#", "events/#", "status/x"},
		TopicsIn: []string{"commands/gw-1/#"}}}, Access{})
	wantLines(t, text,
		"pattern read telemetry/#",
		"user osgate-export", "topic write telemetry/gw-1/#", "topic write status/#",
		"user osgate-rpc", "topic read rpc/gw-1/request/+", "topic write rpc/gw-1/response/+",
		"user app", "topic deny rpc/#", "topic read status/#", "topic read commands/gw-1/#", "topic write events/#")
	for _, bad := range []string{"topic write telemetry/#", "topic write #", "topic write status/x", "pattern write", "%"} {
		if strings.Contains(text, bad) {
			t.Errorf("ACL has %q:\n%s", bad, text)
		}
	}
	// Before the first "user" line: no anonymous section, one pattern.
	anon := text[:strings.Index(text, "user ")]
	if strings.Contains(anon, "\ntopic ") || strings.Count(anon, "\npattern ") != 1 {
		t.Errorf("before the first user:\n%s", anon)
	}

	// A custom export topic: written by the export, readable by readers.
	text = acl(config.Broker{}, Access{ExportTopic: "plant/{gateway}/data/{device}"})
	wantLines(t, text, "pattern read plant/gw-1/data/#", "topic write plant/gw-1/data/#")
	if strings.Contains(text, "user app") {
		t.Errorf("a user section without broker.username:\n%s", text)
	}
	for _, topic := range []string{"{device}/x", "rpc/{gateway}/{device}"} {
		if _, err := ACL(config.Broker{}, "gw-1", Access{ExportTopic: topic}); err == nil {
			t.Errorf("export topic %q overlapping the RPC topics was accepted", topic)
		}
	}
}

func TestOverlaps(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"a/b", "a/b", true}, {"a/+", "a/b", true}, {"a/#", "a", true}, {"#", "x/y", true},
		{"a/b", "a/c", false}, {"a", "a/b", false}, {"+/b", "a/+", true}, {"a/+/c", "a/b", false},
		{"rpc/#", "telemetry/#", false}, {"telemetry/gw/#", "telemetry/#", true},
	} {
		if got := overlaps(c.a, c.b); got != c.want {
			t.Errorf("overlaps(%q, %q) = %v", c.a, c.b, got)
		}
		if got := overlaps(c.b, c.a); got != c.want {
			t.Errorf("overlaps(%q, %q) = %v", c.b, c.a, got)
		}
	}
	for _, c := range []struct {
		wide, f string
		want    bool
	}{
		{"telemetry/#", "telemetry/gw/#", true}, {"telemetry/#", "plant/#", false}, {"a/+", "a/b", true},
		{"a/+", "a/#", false}, {"a/b", "a/b", true}, {"a/b", "a/b/c", false},
	} {
		if got := covers(c.wide, c.f); got != c.want {
			t.Errorf("covers(%q, %q) = %v", c.wide, c.f, got)
		}
	}
}

// TestUserPasswordFile: broker.username's password from broker.password_file.
// A missing file is made (a random password, 0600) and the user logs in
// with what it holds; a file someone wrote (a Docker secret) is read as it
// is; the made password is kept across restarts and never logged.
func TestUserPasswordFile(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "broker-password")
	var logs testpeer.Buffer
	b := runBrokerIn(t, config.Broker{Username: "telemetry", PasswordFile: pwFile}, filepath.Join(dir, "state"), func(b *Broker) {
		b.log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	st, err := os.Stat(pwFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, mode %v; want a file of mode 0600", pwFile, err, st.Mode().Perm())
	}
	raw, _ := os.ReadFile(pwFile)
	pw := strings.TrimSpace(string(raw))
	if len(pw) < 32 {
		t.Fatalf("made password %d characters long, want at least 32", len(pw))
	}
	mustDial(t, b.URL(), "with-made", "telemetry", pw)
	if cl, err := dial(b.URL(), "wrong", "telemetry", "wrong"); err == nil {
		cl.c.Disconnect(100)
		t.Error("telemetry logged in with a wrong password")
	}
	if !strings.Contains(logs.String(), "made a password for broker.username") || strings.Contains(logs.String(), pw) {
		t.Errorf("log should say a password was made, without it:\n%s", logs.String())
	}
	// Kept: a restart on the same files logs in with the same password.
	if again, made, err := userPassword(pwFile); err != nil || made || again != pw {
		t.Errorf("second read: %q made %v err %v; want the same password", again, made, err)
	}

	// A file someone wrote: its first line, spaces trimmed.
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("  s3cret-from-docker \nignored\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	b2 := runBroker(t, config.Broker{Username: "scada", PasswordFile: secret})
	mustDial(t, b2.URL(), "with-secret", "scada", "s3cret-from-docker")

	// Files that cannot work say what to do.
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for path, want := range map[string]string{
		empty:                                   "the first line is empty: write the password there, or delete the file to have one made",
		filepath.Join(dir, "no-such-dir", "pw"): "cannot make",
	} {
		if _, _, err := userPassword(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want an error with %q", path, err, want)
		}
	}
}
