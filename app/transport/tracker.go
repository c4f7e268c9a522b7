package transport

import (
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// offsetTracker follows one partition's records from dispatch to ack, so that the partition's
// offset is committed only up to the lowest record not yet acknowledged: with many records of a
// partition in flight at once, acks arrive out of order, and committing past an unacked record
// could lose it.
type offsetTracker struct {
	mu      sync.Mutex
	pending []trackedRecord // in offset order; pending[head:] are not yet committable
	head    int
}

// trackedRecord keeps a record's position, not the record: a *kgo.Record would keep its whole
// fetched batch in memory until the offset is committable.
type trackedRecord struct {
	offset kgo.EpochOffset
	acked  bool
}

// dispatched records that rec is in flight. Records are dispatched in offset order.
func (t *offsetTracker) dispatched(rec *kgo.Record) {
	t.mu.Lock()
	t.pending = append(t.pending, trackedRecord{offset: kgo.EpochOffset{Epoch: rec.LeaderEpoch, Offset: rec.Offset}})
	t.mu.Unlock()
}

// acked records that the record at offset is acknowledged. It returns the offset to commit
// (one past the last record of the run of acked records at the start of the window), and false
// while an earlier record is still in flight.
func (t *offsetTracker) acked(offset int64) (kgo.EpochOffset, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	window := t.pending[t.head:]
	i := sort.Search(len(window), func(i int) bool { return window[i].offset.Offset >= offset })
	if i == len(window) || window[i].offset.Offset != offset {
		return kgo.EpochOffset{}, false // not tracked (already committable)
	}
	window[i].acked = true
	committable, ok := kgo.EpochOffset{}, false
	for t.head < len(t.pending) && t.pending[t.head].acked {
		committable, ok = t.pending[t.head].offset, true
		committable.Offset++ // a committed offset is the next one to read
		t.pending[t.head] = trackedRecord{}
		t.head++
	}
	if t.head > 1024 && t.head > len(t.pending)/2 {
		t.pending = append(t.pending[:0], t.pending[t.head:]...)
		t.head = 0
	}
	return committable, ok
}

// inFlight counts the records not yet committable.
func (t *offsetTracker) inFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending) - t.head
}
