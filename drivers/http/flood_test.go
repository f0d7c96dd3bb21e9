package http

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/osgate/osgate/drivers/mapping"
	"github.com/osgate/osgate/internal/testpeer"
)

// floodCeiling is how much the heap may grow, for good, from a flood of
// requests: a bounded log-once set of hashed keys, never the requests.
const floodCeiling = 16 << 20

// TestFloodWithoutKeyKeepsHeap sends 4,200 requests without a key, each
// with its own 60 KB path: every one is refused (401), the heap does not
// keep the paths, and a legitimate request still works.
func TestFloodWithoutKeyKeepsHeap(t *testing.T) {
	col := newCollector()
	base, _, _ := startIngest(t, "flood-nokey", "", nil, col, "http")
	addr := strings.TrimPrefix(base, "http://")
	before := testpeer.Heap()
	rejected := mapping.Rejected("flood-nokey", "auth")
	const n, pathLen = 4200, 60 << 10
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	pad := strings.Repeat("x", pathLen)
	for i := range n {
		path := fmt.Sprintf("/ingest/%d-%s", i, pad)
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"v\":1}", path); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		status, err := testpeer.ReadHTTPStatus(br)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if status != 401 {
			t.Fatalf("request %d: status %d, want 401", i, status)
		}
	}
	after := testpeer.Heap()
	t.Logf("heap %d KB before, %d KB after %d refused requests with %d KB paths", before>>10, after>>10, n, pathLen>>10)
	if got := mapping.Rejected("flood-nokey", "auth") - rejected; got != n {
		t.Errorf("%v refusals counted, want %d", got, n)
	}
	if after-before > floodCeiling {
		t.Errorf("heap grew by %d MB and stayed (ceiling %d MB): refused requests are kept", (after-before)>>20, floodCeiling>>20)
	}
	a := post(t, &http.Client{Timeout: 30 * time.Second}, base+"/ingest/meter-1", "Bearer "+goodKey, "application/json", strings.NewReader(`{"v":1}`))
	if a.status != 202 {
		t.Fatalf("a legitimate request after the flood: %d %s", a.status, a.body)
	}
}

// TestIngestChannelLimit: one JSON object with more members than
// max_channels is refused whole (413) without being turned into
// readings; at the limit it is taken.
func TestIngestChannelLimit(t *testing.T) {
	col := newCollector()
	base, _, _ := startIngest(t, "ingest-chans", `, "max_channels": 1000`, nil, col, "http")
	c := &http.Client{Timeout: 60 * time.Second}
	object := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"ts":"2026-11-24T13:41:00Z"`)
		for i := range n {
			fmt.Fprintf(&b, `,"%x":0`, i)
		}
		return b.String() + "}"
	}
	before := mapping.Rejected("ingest-chans", mapping.ReasonTooLarge)
	a := post(t, c, base+"/ingest/big", "Bearer "+goodKey, "application/json", strings.NewReader(object(80000)))
	if a.status != 413 || !strings.Contains(a.body, "more than 1000 (max_channels)") {
		t.Errorf("80,000 channels: %d %s", a.status, a.body)
	}
	if got := mapping.Rejected("ingest-chans", mapping.ReasonTooLarge) - before; got != 1 {
		t.Errorf("%v too_large rejects counted, want 1", got)
	}
	if n := len(col.readings()); n != 0 {
		t.Errorf("%d readings emitted from a refused message", n)
	}
	a = post(t, c, base+"/ingest/big", "Bearer "+goodKey, "application/json", strings.NewReader(object(1000)))
	if a.status != 202 || !strings.Contains(a.body, `"accepted":1000`) {
		t.Errorf("1,000 channels: %d %s", a.status, a.body)
	}
}
