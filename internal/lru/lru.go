// Package lru is osgate's one bounded map: every cache, log-once set and
// rate-limit table that input can grow (device names from a field broker,
// ingest paths, topics) is a Cache with a fixed capacity. When it is full,
// adding a key evicts the least recently used one, so an attacker who sends
// a million distinct names costs a constant amount of memory, and the keys
// in use stay.
//
// A Cache optionally reports its size and its evictions to metrics (any
// value with Set(float64) and Inc(), e.g. Prometheus gauges and counters),
// so an operator sees a cache that churns.
package lru

import "sync"

// Gauge is what a Cache reports its number of entries to.
type Gauge interface{ Set(float64) }

// Counter is what a Cache counts its evictions on.
type Counter interface{ Inc() }

// Metrics are optional; nil fields are not reported.
type Metrics struct {
	Entries   Gauge
	Evictions Counter
}

// Cache is a map of at most Cap entries, safe for concurrent use. The zero
// value is not usable; use New.
type Cache[K comparable, V any] struct {
	mu      sync.Mutex
	cap     int
	m       map[K]*node[K, V]
	head    node[K, V] // sentinel: head.next is the most recently used
	metrics Metrics
}

type node[K comparable, V any] struct {
	key        K
	val        V
	prev, next *node[K, V]
}

// New returns a Cache holding at most capacity entries (at least 1).
func New[K comparable, V any](capacity int, m Metrics) *Cache[K, V] {
	capacity = max(capacity, 1)
	// The map grows with what is put: most caches stay far below their
	// bound (a connector's export topics, a gateway's log keys), and a
	// map made for 1,024 entries is 54 kB held from the start.
	c := &Cache[K, V]{cap: capacity, m: make(map[K]*node[K, V]), metrics: m}
	c.head.prev, c.head.next = &c.head, &c.head
	return c
}

// Get returns the value of k and marks it used.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.m[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.moveFront(n)
	return n.val, true
}

// Add sets k to v and marks it used; when the cache is full, the least
// recently used entry makes room. It reports whether k was new.
func (c *Cache[K, V]) Add(k K, v V) (added bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.m[k]; ok {
		n.val = v
		c.moveFront(n)
		return false
	}
	var n *node[K, V]
	if len(c.m) >= c.cap {
		n = c.head.prev // the oldest: reuse its node
		c.unlink(n)
		delete(c.m, n.key)
		if c.metrics.Evictions != nil {
			c.metrics.Evictions.Inc()
		}
	} else {
		n = &node[K, V]{}
	}
	n.key, n.val = k, v
	c.m[k] = n
	c.pushFront(n)
	if c.metrics.Entries != nil {
		c.metrics.Entries.Set(float64(len(c.m)))
	}
	return true
}

// Remove takes k out and returns its value.
func (c *Cache[K, V]) Remove(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.m[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.unlink(n)
	delete(c.m, k)
	if c.metrics.Entries != nil {
		c.metrics.Entries.Set(float64(len(c.m)))
	}
	return n.val, true
}

// Len is the number of entries.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Cap is the most entries the cache holds.
func (c *Cache[K, V]) Cap() int { return c.cap }

func (c *Cache[K, V]) moveFront(n *node[K, V]) {
	if c.head.next == n {
		return
	}
	c.unlink(n)
	c.pushFront(n)
}

func (c *Cache[K, V]) unlink(n *node[K, V]) {
	n.prev.next, n.next.prev = n.next, n.prev
	n.prev, n.next = nil, nil
}

func (c *Cache[K, V]) pushFront(n *node[K, V]) {
	n.prev, n.next = &c.head, c.head.next
	c.head.next.prev = n
	c.head.next = n
}
