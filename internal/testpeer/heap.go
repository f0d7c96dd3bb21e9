package testpeer

import "runtime"

// Heap is the live heap of the test process in bytes after a full garbage
// collection: what a flood test compares before and after the flood to
// show that input did not stay in memory.
func Heap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC() // the second one frees what the first one's finalizers let go
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
