package modbus

import (
	"fmt"
	"sort"
)

// request is one read: a run of registers (or bits) of one kind, and the
// channels it answers, sorted by address.
type request struct {
	kind  kind
	start uint16
	count int
	chans []int // indices into the device's channels
}

func (r request) String() string {
	return fmt.Sprintf("%s %d+%d", r.kind, r.start, r.count)
}

// planReads merges a device's channels into the fewest reads the protocol
// allows: channels of one kind, sorted by address, join the current read
// while the unused registers between them are at most maxGap and the read
// stays within maxRegs registers (2000 bits for coils and discrete inputs,
// where the gap allowed is 16×maxGap bits: a register's worth of bits each).
// Scanning left to right and closing a read only when the next channel
// cannot join is minimal: a read ends either at a gap that no read may
// bridge or at the size limit, which a greedy fill reaches no sooner than any
// other plan.
func planReads(chans []channel, maxGap, maxRegs int) []request {
	byKind := map[kind][]int{}
	for i := range chans {
		byKind[chans[i].kind] = append(byKind[chans[i].kind], i)
	}
	var out []request
	for _, k := range []kind{kindCoil, kindDiscrete, kindHolding, kindInput} {
		idx := byKind[k]
		if len(idx) == 0 {
			continue
		}
		sort.SliceStable(idx, func(a, b int) bool { return chans[idx[a]].addr < chans[idx[b]].addr })
		limit, gap := maxRegs, maxGap
		if k.isBit() {
			limit, gap = maxBitsPerRead, 16*maxGap
		}
		cur := request{kind: k, start: chans[idx[0]].addr}
		end := int(cur.start) // one past the last address covered
		for _, i := range idx {
			c := &chans[i]
			a, e := int(c.addr), int(c.addr)+c.width
			if len(cur.chans) > 0 && (a-end > gap || max(end, e)-int(cur.start) > limit) {
				cur.count = end - int(cur.start)
				out = append(out, cur)
				cur = request{kind: k, start: c.addr}
				end = a
			}
			cur.chans = append(cur.chans, i)
			end = max(end, e)
		}
		cur.count = end - int(cur.start)
		out = append(out, cur)
	}
	return out
}

// halve splits a read of several channels into two reads, each covering
// half of its channels and only the registers those need.
func halve(r request, chans []channel) (request, request) {
	mid := len(r.chans) / 2
	return span(r.kind, r.chans[:mid], chans), span(r.kind, r.chans[mid:], chans)
}

// span is the smallest read covering the channels idx (sorted by address).
func span(k kind, idx []int, chans []channel) request {
	start, end := int(chans[idx[0]].addr), 0
	for _, i := range idx {
		start = min(start, int(chans[i].addr))
		end = max(end, int(chans[i].addr)+chans[i].width)
	}
	return request{kind: k, start: uint16(start), count: end - start, chans: idx}
}
