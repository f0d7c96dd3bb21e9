package broker

import (
	"path/filepath"
	"syscall"
)

// queueLimits sizes Mosquitto's per-client queue (the bridge's included)
// from the machine: a quarter of the free space of the state dir (the
// queue is saved there) and at most a quarter of the RAM (Mosquitto keeps
// it in memory), within [minQueuedBytes, maxQueuedBytes]; in messages,
// that size over a typical message, at least minQueuedMsgs.
func queueLimits(stateDir string) limits {
	bytes := maxQueuedBytes
	// The state dir may not exist yet: measure the nearest that does.
	for dir := stateDir; ; dir = filepath.Dir(dir) {
		var st syscall.Statfs_t
		if syscall.Statfs(dir, &st) == nil {
			bytes = min(bytes, int64(st.Bavail)*int64(st.Bsize)/4)
			break
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		bytes = min(bytes, int64(si.Totalram)*int64(si.Unit)/4)
	}
	bytes = max(bytes, minQueuedBytes)
	return limits{messages: max(int(bytes/typicalMessage), minQueuedMsgs), bytes: bytes}
}
