package source

import (
	"log/slog"
	"testing"
	"time"
)

func TestNextDelay(t *testing.T) {
	for _, interval := range []time.Duration{time.Second, time.Minute, 5 * time.Minute, time.Hour} {
		for range 200 {
			if d := nextDelay(interval, 0); d <= interval*9/10 || d > interval {
				t.Fatalf("interval %s, success: %s, want within (0.9, 1] of the interval", interval, d)
			}
		}
		base := min(max(interval/16, time.Second), 30*time.Second)
		prevMax := time.Duration(0)
		for failures := 1; failures <= 20; failures++ {
			want := min(base<<min(failures-1, 30), interval)
			for range 50 {
				d := nextDelay(interval, failures)
				if d < want/2 || d > want {
					t.Fatalf("interval %s, %d failures: %s, want within [%s, %s]", interval, failures, d, want/2, want)
				}
			}
			if want < prevMax {
				t.Fatalf("back-off shrank")
			}
			prevMax = want
		}
	}
}

// A server without validators answers 200 each time: the cache is not
// rewritten for an unchanged document.
func TestStoreSkipsUnchanged(t *testing.T) {
	s := &Source[*testConfig]{bad: map[string]BadVersion{}}
	c, _, err := openCache(t.TempDir()+"/"+CacheFile, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	s.cache = c
	e := testEntry("v1", 0)
	s.store(&e)
	before := c.db.Stats()
	s.store(&e)
	if after := c.db.Stats(); after.TxStats.GetWrite() != before.TxStats.GetWrite() {
		t.Fatalf("unchanged entry rewritten (%d writes before, %d after)", before.TxStats.GetWrite(), after.TxStats.GetWrite())
	}
	e.ETag = `"new"`
	s.store(&e)
	if got, _ := c.current(); got == nil || got.ETag != `"new"` {
		t.Fatalf("changed ETag not stored: %+v", got)
	}
}
