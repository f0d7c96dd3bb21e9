package lru

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
)

type gauge struct{ v float64 }

func (g *gauge) Set(v float64) { g.v = v }

type counter struct{ n int }

func (c *counter) Inc() { c.n++ }

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	g, ev := &gauge{}, &counter{}
	c := New[string, int](3, Metrics{Entries: g, Evictions: ev})
	for i, k := range []string{"a", "b", "c"} {
		if !c.Add(k, i) {
			t.Fatalf("Add(%s) not new", k)
		}
	}
	if v, ok := c.Get("a"); !ok || v != 0 {
		t.Fatalf("Get(a) = %v, %v", v, ok)
	}
	// b is now the least recently used.
	c.Add("d", 3)
	if _, ok := c.Get("b"); ok {
		t.Error("b was not evicted")
	}
	for _, k := range []string{"a", "c", "d"} {
		if _, ok := c.Get(k); !ok {
			t.Errorf("%s was evicted", k)
		}
	}
	if c.Add("a", 9) {
		t.Error("Add of a present key reported new")
	}
	if v, _ := c.Get("a"); v != 9 {
		t.Errorf("a = %d after the update", v)
	}
	if c.Len() != 3 || g.v != 3 || ev.n != 1 {
		t.Errorf("len %d, gauge %v, evictions %d; want 3, 3, 1", c.Len(), g.v, ev.n)
	}
	if v, ok := c.Remove("c"); !ok || v != 2 {
		t.Errorf("Remove(c) = %v, %v", v, ok)
	}
	if _, ok := c.Remove("c"); ok || c.Len() != 2 || g.v != 2 {
		t.Errorf("after Remove: len %d, gauge %v", c.Len(), g.v)
	}
	c.Add("e", 5)
	c.Add("f", 6) // full again: d is the least recently used
	if _, ok := c.Get("d"); ok {
		t.Error("d was not evicted after a Remove")
	}
}

// TestBoundedUnderFlood adds a million distinct keys: the cache stays at
// its capacity and the heap does not grow with the keys.
func TestBoundedUnderFlood(t *testing.T) {
	c := New[string, string](1000, Metrics{})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 1_000_000 {
		k := fmt.Sprintf("device-%d", i)
		c.Add(k, k)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if c.Len() != 1000 {
		t.Fatalf("len %d, want 1000", c.Len())
	}
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 4<<20 {
		t.Errorf("heap grew by %d bytes for a cache of 1000 short entries", grew)
	}
	if _, ok := c.Get("device-999999"); !ok {
		t.Error("the newest key is gone")
	}
	if _, ok := c.Get("device-0"); ok {
		t.Error("the oldest key is still there")
	}
}

func TestConcurrent(t *testing.T) {
	c := New[int, int](64, Metrics{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10000 {
				c.Add(g*100000+i%200, i)
				c.Get(g*100000 + i%100)
			}
		}()
	}
	wg.Wait()
	if c.Len() != 64 {
		t.Errorf("len %d, want 64", c.Len())
	}
}
