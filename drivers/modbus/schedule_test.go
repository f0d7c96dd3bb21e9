package modbus

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osgate/osgate/appliance/apptest"
	"github.com/osgate/osgate/internal/testpeer"
)

// timingProxy forwards Modbus TCP between the gateway and the pymodbus
// peer and notes when each request passes.
type timingProxy struct {
	*testpeer.Proxy
	mu   sync.Mutex
	seen []time.Time // when each request reached the proxy
}

func startTimingProxy(t *testing.T, upstream string) *timingProxy {
	t.Helper()
	p := &timingProxy{Proxy: testpeer.StartProxy(t, upstream)}
	p.Tap(func(toTarget bool, _ []byte) {
		if toTarget {
			p.mu.Lock()
			p.seen = append(p.seen, time.Now())
			p.mu.Unlock()
		}
	})
	return p
}

func (p *timingProxy) requests() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.seen...)
}

// TestPollSchedule10Hz polls 100 holding registers (one request a poll)
// every 100 ms through the whole gateway. With a healthy peer and broker
// no poll is missed for five seconds, and the polls stay on their grid:
// the n-th poll after the first starts n intervals after it, give or take
// the machine's wake-up latency, rather than drifting later by that
// latency with every poll (which loses a poll every few seconds at 10 Hz).
// Then the local broker stops for a while with the export queue limited
// to three messages: the poll that cannot hand its readings on waits, the
// polls due meanwhile (a whole interval or more overdue) are missed and
// /metrics counts them, and only one poll catches up when it returns (no
// burst of the polls that were due): every time on the grid is a poll or a
// missed poll, once.
func TestPollSchedule10Hz(t *testing.T) {
	peer := startPeer(t, peerOpts{tcp: true})
	proxy := startTimingProxy(t, peer.tcp)
	br := testpeer.StartMosquitto(t, testpeer.MosquittoOptions{})
	rpcAddr := testpeer.Addr(testpeer.FreePort(t))
	var chans []string
	for a := range 100 {
		chans = append(chans, fmt.Sprintf(`{"name":"r%d","register":"holding","address":%d}`, a, a))
	}
	doc := fmt.Sprintf(`{"gateway":{"id":"gw-sched","state_dir":%q},"broker":{"managed":false,"url":%q},"rpc":{"listen":%q},
		"export":{"queue_limit":3},
		"connectors":[{"name":"sched10hz","type":"modbus","settings":{"address":%q,"timeout":"1s"},
		"devices":[{"name":"plc","unit_id":2,"interval":"100ms","timeout":"100ms","channels":[%s]}]}]}`,
		t.TempDir(), br.URL(), rpcAddr, proxy.Addr(), strings.Join(chans, ","))
	apptest.Start(t, doc, rpcAddr)
	metric := func(name string) float64 {
		t.Helper()
		resp, err := http.Get("http://" + rpcAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`(?m)^` + name + `\{connector="sched10hz"\} (\S+)$`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("/metrics has no %s for the connector:\n%s", name, body)
		}
		v, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatalf("/metrics %s: %v", name, err)
		}
		return v
	}
	waitFor(t, 30*time.Second, "first polls", func() bool { return len(proxy.requests()) >= 3 })

	// Healthy: five seconds at 10 Hz. A poll that fails (past its 100 ms
	// timeout: on a machine this loaded the peer can be that slow) starts
	// a new grid after its back-off, so the window is judged only if no
	// poll in it failed; a failed one is tried again, up to four windows.
	var reqs []time.Time
	for try := 1; ; try++ {
		missed0, late0, errs0, from := metric("osgate_polls_missed_total"), metric("osgate_polls_late_total"), metric("osgate_poll_errors_total"), len(proxy.requests())
		time.Sleep(5 * time.Second)
		reqs = proxy.requests()[from:]
		missed, late, errs := metric("osgate_polls_missed_total")-missed0, metric("osgate_polls_late_total")-late0, metric("osgate_poll_errors_total")-errs0
		if errs > 0 {
			if try == 4 {
				t.Fatalf("polls failed in each of %d windows of 5 s (%v in the last): the machine is too busy for this test", try, errs)
			}
			t.Logf("window %d: %v polls failed; trying another", try, errs)
			continue
		}
		if missed != 0 {
			t.Errorf("healthy peer: %v polls missed in 5 s", missed)
		}
		if late != 0 {
			t.Logf("healthy peer: %v polls late in 5 s (a busy machine)", late)
		}
		break
	}
	if len(reqs) < 49 || len(reqs) > 51 {
		t.Fatalf("healthy peer: %d polls in 5 s, want 50 ± 1", len(reqs))
	}
	// On the grid: poll n of the window starts n intervals after poll 0,
	// late by at most the wake-up latency. A loop that schedules each poll
	// one interval after the previous one started drifts later by that
	// latency every poll. The earliest poll (against the grid) of the first
	// ten and of the last ten show where the grid is at either end.
	lag := func(k int) time.Duration { return reqs[k].Sub(reqs[0]) - time.Duration(k)*100*time.Millisecond }
	early, late := lag(0), lag(len(reqs)-1)
	for k := range 10 {
		early, late = min(early, lag(k)), min(late, lag(len(reqs)-1-k))
	}
	drift := late - early
	t.Logf("drift after %d polls: %v", len(reqs), drift)
	if drift > 10*time.Millisecond || drift < -10*time.Millisecond {
		t.Errorf("healthy peer: the polls drifted %v off their grid in %d polls", drift, len(reqs))
	}

	// The broker away for 1.5 s: three messages wait, the poll after them
	// waits for room, and the polls due meanwhile are missed.
	missed0, errs0, from, t1 := metric("osgate_polls_missed_total"), metric("osgate_poll_errors_total"), len(proxy.requests()), time.Now()
	br.Stop()
	time.Sleep(1500 * time.Millisecond)
	br.Start()
	waitFor(t, 30*time.Second, "polls missed while the broker was away", func() bool {
		return metric("osgate_polls_missed_total")-missed0 >= 5
	})
	time.Sleep(time.Second) // back on the grid
	after := proxy.requests()[from:]
	polls := len(after)
	// At most one poll catches up: any three polls in a row span an
	// interval or more (less the machine's wake-up latency).
	for k := 0; k+2 < len(after); k++ {
		if d := after[k+2].Sub(after[k]); d < 80*time.Millisecond {
			t.Errorf("broker away: polls %d to %d of %d started within %v: a burst", k, k+2, len(after), d)
			break
		}
	}
	missed, errs := metric("osgate_polls_missed_total")-missed0, metric("osgate_poll_errors_total")-errs0
	slots := float64(time.Since(t1) / (100 * time.Millisecond))
	t.Logf("broker away: %d polls and %v missed in %v slots", polls, missed, slots)
	if float64(polls)+missed > slots+2 {
		t.Errorf("broker away: %d polls and %v missed in %v slots of 100 ms: polls that were due ran in a burst", polls, missed, slots)
	}
	// A failed poll starts a new grid after its back-off, whose waiting
	// is neither; without one, every slot is a poll or a missed poll.
	if errs == 0 && float64(polls)+missed < slots-2 {
		t.Errorf("broker away: %d polls and %v missed in %v slots of 100 ms: polls neither ran nor were counted missed", polls, missed, slots)
	}
}
