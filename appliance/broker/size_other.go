//go:build !linux

package broker

// queueLimits on systems without statfs/sysinfo here: the floors.
func queueLimits(string) limits {
	return limits{messages: minQueuedMsgs, bytes: minQueuedBytes}
}
