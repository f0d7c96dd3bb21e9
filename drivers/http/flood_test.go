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
		status, err := readStatus(br)
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

// readStatus reads one HTTP/1.1 response and returns its status, skipping
// its body (Content-Length).
func readStatus(br *bufio.Reader) (int, error) {
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
