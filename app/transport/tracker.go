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

type trackedRecord struct {
	record *kgo.Record
	acked  bool
}

// dispatched records that rec is in flight. Records are dispatched in offset order.
func (t *offsetTracker) dispatched(rec *kgo.Record) {
	t.mu.Lock()
	t.pending = append(t.pending, trackedRecord{record: rec})
	t.mu.Unlock()
}

// acked records that rec's answer is acknowledged. It returns the last record of the run of
// acked records at the start of the window: everything up to it may be committed. It returns nil
// while an earlier record is still in flight.
func (t *offsetTracker) acked(rec *kgo.Record) *kgo.Record {
	t.mu.Lock()
	defer t.mu.Unlock()
	window := t.pending[t.head:]
	i := sort.Search(len(window), func(i int) bool { return window[i].record.Offset >= rec.Offset })
	if i == len(window) || window[i].record.Offset != rec.Offset {
		return nil // not tracked (already committable)
	}
	window[i].acked = true
	var committable *kgo.Record
	for t.head < len(t.pending) && t.pending[t.head].acked {
		committable = t.pending[t.head].record
		t.pending[t.head] = trackedRecord{}
		t.head++
	}
	if t.head > 1024 && t.head > len(t.pending)/2 {
		t.pending = append(t.pending[:0], t.pending[t.head:]...)
		t.head = 0
	}
	return committable
}

// inFlight counts the records not yet committable.
func (t *offsetTracker) inFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending) - t.head
}
