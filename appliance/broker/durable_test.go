package broker

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/osgate/osgate/appliance/export"
	"github.com/osgate/osgate/config"
	"github.com/osgate/osgate/internal/testpeer"
	"github.com/osgate/osgate/internal/tlsconf"
)

// killAndWait SIGKILLs the running mosquitto and returns when another one
// listens, and the time it started listening.
func killAndWait(t *testing.T, b *Broker) time.Time {
	t.Helper()
	started := b.NextStart()
	pid := b.PID()
	if pid == 0 {
		t.Fatal("no mosquitto running")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
		return time.Now()
	case <-time.After(60 * time.Second):
		t.Fatal("mosquitto not restarted within 60 s of SIGKILL")
	}
	return time.Time{}
}

// TestRestartBackoffResets: a broker that ran well for a while and then
// died is restarted after the first pause again, not after a pause that
// kept doubling since crashes long past. Five crashes, each after a run
// longer than stableAfter: every restart comes within a second and a bit.
func TestRestartBackoffResets(t *testing.T) {
	b := runBrokerIn(t, config.Broker{}, t.TempDir(), func(b *Broker) { b.stableAfter = time.Second })
	for round := range 5 {
		time.Sleep(1500 * time.Millisecond) // a run longer than stableAfter
		killed := time.Now()
		restarted := killAndWait(t, b)
		if d := restarted.Sub(killed); d > restartFirst+time.Second {
			t.Fatalf("crash %d: restarted %s after the crash; the back-off did not reset after a good run", round+1, d.Round(time.Millisecond))
		}
	}
}

// TestExportReconnectsWhenBrokerStarts: the export sink connects as soon as
// the restarted broker listens, not when its own back-off runs out
// (paho's reconnect waited up to 3.4 s more).
func TestExportReconnectsWhenBrokerStarts(t *testing.T) {
	b := runBroker(t, config.Broker{})
	sink, err := export.New(export.Options{URL: b.URL(), ClientID: "osgate-gw-test", QoS: 1, StoreDir: t.TempDir(),
		Broker: b, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = sink.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	testpeer.WaitFor(t, 30*time.Second, "the sink to connect", sink.Connected)
	var worst time.Duration
	for round := range 4 {
		listening := killAndWait(t, b)
		testpeer.WaitFor(t, 30*time.Second, "the sink to reconnect", sink.Connected)
		d := time.Since(listening)
		worst = max(worst, d)
		t.Logf("crash %d: connected %s after the broker listened", round+1, d.Round(time.Millisecond))
	}
	if worst > 500*time.Millisecond {
		t.Fatalf("the sink connected up to %s after the broker was back; want it at once", worst.Round(time.Millisecond))
	}
}

// TestPersistReportsBridgeBacklog: Persist waits for a save of the broker
// (asked with SIGUSR1) and reports the messages of the export's client that
// the save holds for the cloud bridge; once the cloud is back and has them,
// a later save holds none.
func TestPersistReportsBridgeBacklog(t *testing.T) {
	cloud := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{Persistence: true})
	sub := testpeer.Subscribe(t, cloud.URL(), testpeer.SubscriberOptions{ClientID: "cloud-app", Filter: "telemetry/#",
		Key: func(_ string, p []byte) string { return string(p) }})
	cloud.Stop()
	state := t.TempDir()
	b := runBrokerIn(t, config.Broker{Bridge: &config.Bridge{Address: cloud.Addr(), Client: tlsconf.Client{TLS: new(false)}}}, state, nil)
	own, err := b.Clients()
	if err != nil {
		t.Fatal(err)
	}
	// The export's own login: the broker's ACL lets it write telemetry.
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("osgate-gw-test").
		SetUsername(own.Export.Username).SetPassword(own.Export.Password))
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	publish := func(topic, payload string) {
		if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	for i := range 50 {
		publish("telemetry/gw-test/meter", "seq="+strconv.Itoa(i))
	}
	publish("other/topic", "not bridged")
	ctx := context.Background()
	if _, err := b.Persist(ctx, b.Generation()+1, "osgate-gw-test", true); err != export.ErrGone {
		t.Fatalf("Persist of a generation that does not run: %v, want ErrGone", err)
	}
	saved, err := b.Persist(ctx, b.Generation(), "osgate-gw-test", true)
	if err != nil {
		t.Fatal(err)
	}
	if saved.Backlog != 50 || saved.Held == nil || saved.DB == 0 || saved.Skimmed {
		t.Fatalf("saved %+v, want 50 messages held for the bridge", saved)
	}
	if !saved.Held("telemetry/gw-test/meter", []byte("seq=7")) || saved.Held("telemetry/gw-test/meter", []byte("seq=50")) ||
		saved.Held("other/topic", []byte("not bridged")) {
		t.Fatal("Held does not tell the held messages from the others")
	}
	data, err := os.ReadFile(filepath.Join(state, confDir, persistenceName))
	if err != nil {
		t.Fatal(err)
	}
	checkTruncations(t, data)

	cloud.Start()
	waitKeys(t, sub, 0, 50, 60*time.Second)
	testpeer.WaitFor(t, 30*time.Second, "a save that holds nothing for the bridge", func() bool {
		s, err := b.Persist(ctx, b.Generation(), "osgate-gw-test", true)
		return err == nil && !s.Skimmed && s.Backlog == 0 && s.DB == saved.DB
	})
}

// checkTruncations: a real mosquitto.db cut anywhere but between two chunks
// is refused.
func checkTruncations(t *testing.T, data []byte) {
	t.Helper()
	if err := checkDB(data); err != nil {
		t.Fatalf("a whole mosquitto.db is refused: %v", err)
	}
	boundary := map[int]bool{}
	for off := dbHeader; off < len(data); off += 8 + int(binary.BigEndian.Uint32(data[off+4:])) {
		boundary[off] = true
	}
	for cut := range len(data) {
		if err := checkDB(data[:cut]); err == nil && !boundary[cut] {
			t.Fatalf("mosquitto.db cut to %d of %d bytes passes the check", cut, len(data))
		}
	}
}

// TestDamagedDatabaseMovedAside: a damaged mosquitto.db in the state dir
// does not keep the broker from starting: it is moved aside, and the
// database identity Persist reports changes, so the export knows to send
// again what the old state held.
func TestDamagedDatabaseMovedAside(t *testing.T) {
	state := t.TempDir()
	dir := filepath.Join(state, confDir)
	os.MkdirAll(dir, 0o700)
	// A well-formed header, then a chunk that claims more than is there:
	// Mosquitto exits with "Couldn't open database" on this.
	db := append([]byte{}, dbMagic...)
	db = binary.BigEndian.AppendUint32(db, 0)
	db = binary.BigEndian.AppendUint32(db, 6)
	db = binary.BigEndian.AppendUint32(db, chunkMsgStore)
	db = binary.BigEndian.AppendUint32(db, 400)
	db = append(db, make([]byte, 100)...)
	if err := os.WriteFile(filepath.Join(dir, persistenceName), db, 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, dbIDName), []byte("00000000000000aa\n"), 0o600)
	b := runBrokerIn(t, config.Broker{}, state, nil)
	moved, _ := filepath.Glob(filepath.Join(dir, persistenceName+".corrupt-*"))
	if len(moved) != 1 {
		t.Fatalf("moved aside: %v", moved)
	}
	saved, err := b.Persist(context.Background(), b.Generation(), "x", true)
	if err != nil {
		t.Fatal(err)
	}
	if saved.DB == 0 || saved.DB == 0xaa {
		t.Fatalf("database identity %x after the damaged one was moved aside", saved.DB)
	}
}

// TestMosquittoRefusesDatabase: a database whose damage only Mosquitto
// sees (a chunk that is whole but means nothing) makes it exit at start;
// the broker moves it aside and starts at once.
func TestMosquittoRefusesDatabase(t *testing.T) {
	state := t.TempDir()
	dir := filepath.Join(state, confDir)
	os.MkdirAll(dir, 0o700)
	db := append([]byte{}, dbMagic...)
	db = binary.BigEndian.AppendUint32(db, 0)
	db = binary.BigEndian.AppendUint32(db, 6)
	// A cfg chunk with a dbid size Mosquitto does not know.
	db = binary.BigEndian.AppendUint32(db, chunkCfg)
	db = binary.BigEndian.AppendUint32(db, 16)
	db = append(db, make([]byte, 9)...)
	db = append(db, 3)
	db = append(db, make([]byte, 6)...)
	if err := checkDB(db); err != nil {
		t.Fatalf("the test database should pass osgate's check: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, persistenceName), db, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	runBrokerIn(t, config.Broker{}, state, nil)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the broker took %s to start", d)
	}
	if moved, _ := filepath.Glob(filepath.Join(dir, persistenceName+".corrupt-*")); len(moved) != 1 {
		t.Fatalf("moved aside: %v", moved)
	}
}

// FuzzReadDB: any bytes as mosquitto.db: no panic, and whatever is held
// came from a chunk that fits in the file.
func FuzzReadDB(f *testing.F) {
	f.Add(fakeDB())
	f.Add(fakeDB()[:40])
	f.Add([]byte{})
	f.Add(dbMagic)
	f.Fuzz(func(t *testing.T, data []byte) {
		sum, err := readDB(data, "osgate-gw", "local.osgate-gw-test")
		if err != nil && len(sum.held) > 0 {
			t.Fatal("held messages reported from a damaged file")
		}
		if len(sum.held) > len(data)/(8+clientMsgFixed) {
			t.Fatalf("%d held messages in %d bytes", len(sum.held), len(data))
		}
	})
}

// fakeDB builds a small version 6 database as Mosquitto writes it: one
// message from osgate-gw queued for the bridge, a client and a
// subscription.
func fakeDB() []byte {
	db := append([]byte{}, dbMagic...)
	db = binary.BigEndian.AppendUint32(db, 0)
	db = binary.BigEndian.AppendUint32(db, 6)
	chunk := func(typ uint32, body []byte) {
		db = binary.BigEndian.AppendUint32(db, typ)
		db = binary.BigEndian.AppendUint32(db, uint32(len(body)))
		db = append(db, body...)
	}
	chunk(chunkCfg, append(binary.NativeEndian.AppendUint64(nil, 7), 0, 8, 0, 0, 0, 0, 0, 0))
	id, topic, payload := "osgate-gw", "telemetry/gw/m", []byte(`{"ts":1}`)
	ms := binary.NativeEndian.AppendUint64(nil, 7)
	ms = binary.NativeEndian.AppendUint64(ms, 0)
	ms = binary.BigEndian.AppendUint32(ms, uint32(len(payload)))
	ms = binary.BigEndian.AppendUint16(ms, 1)
	ms = binary.BigEndian.AppendUint16(ms, uint16(len(id)))
	ms = binary.BigEndian.AppendUint16(ms, 0)
	ms = binary.BigEndian.AppendUint16(ms, uint16(len(topic)))
	ms = binary.BigEndian.AppendUint16(ms, 1883)
	ms = append(ms, 1, 0)
	ms = append(append(append(ms, id...), topic...), payload...)
	chunk(chunkMsgStore, ms)
	bridge := "local.osgate-gw-test"
	cl := binary.BigEndian.AppendUint64(nil, 0)
	cl = binary.BigEndian.AppendUint32(cl, 0)
	cl = binary.BigEndian.AppendUint16(cl, 1)
	cl = binary.BigEndian.AppendUint16(cl, uint16(len(bridge)))
	cl = append(cl, 0, 0, 0, 0, 0, 0, 0, 0)
	chunk(chunkClient, append(cl, bridge...))
	cm := binary.NativeEndian.AppendUint64(nil, 7)
	cm = binary.BigEndian.AppendUint16(cm, 1)
	cm = binary.BigEndian.AppendUint16(cm, uint16(len(bridge)))
	cm = append(cm, 1, 0, 0, directionOut)
	chunk(chunkClientMsg, append(cm, bridge...))
	sb := binary.BigEndian.AppendUint32(nil, 0)
	sb = binary.BigEndian.AppendUint16(sb, uint16(len(bridge)))
	sb = binary.BigEndian.AppendUint16(sb, 11)
	sb = append(sb, 1, 0, 0, 0)
	chunk(chunkSub, append(append(sb, bridge...), "telemetry/#"...))
	return db
}

// TestReadFakeDB: the summary of the hand-made database.
func TestReadFakeDB(t *testing.T) {
	sum, err := readDB(fakeDB(), "osgate-gw", "local.osgate-gw-test")
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.held) != 1 || !sum.holds("telemetry/gw/m", []byte(`{"ts":1}`)) {
		t.Fatalf("summary %+v", sum)
	}
	if sum, _ := readDB(fakeDB(), "someone-else", "local.osgate-gw-test"); len(sum.held) != 0 {
		t.Fatal("another client's message counted")
	}
	checkTruncations(t, fakeDB())
}
