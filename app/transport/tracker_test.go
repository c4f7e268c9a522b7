package transport

import (
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestTrackerCommitsOnlyUpToTheLowestUnacked(t *testing.T) {
	var tr offsetTracker
	recs := make([]*kgo.Record, 6)
	for i := range recs {
		recs[i] = &kgo.Record{Offset: int64(10 + i*2)} // offsets with gaps, as after compaction
		tr.dispatched(recs[i])
	}
	steps := []struct {
		ack  int
		want int // index of the committable record, -1 none
	}{{2, -1}, {1, -1}, {0, 2}, {4, -1}, {3, 4}, {5, 5}}
	for _, s := range steps {
		got, ok := tr.acked(recs[s.ack].Offset)
		if (s.want < 0) == ok || (ok && got.Offset != recs[s.want].Offset+1) {
			t.Fatalf("after acking %d: commit %v (%v), want up to index %d", recs[s.ack].Offset, got, ok, s.want)
		}
	}
	if tr.inFlight() != 0 {
		t.Errorf("in flight %d", tr.inFlight())
	}
}

func TestTrackerRandomAckOrder(t *testing.T) {
	var tr offsetTracker
	const n = 5000
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Offset: int64(i)}
		tr.dispatched(recs[i])
	}
	acked := make([]bool, n)
	highest := int64(-1)
	for _, i := range rand.Perm(n) {
		acked[i] = true
		if c, ok := tr.acked(recs[i].Offset); ok {
			for j := int64(0); j < c.Offset; j++ {
				if !acked[j] {
					t.Fatalf("commit at %d while %d is unacked", c.Offset, j)
				}
			}
			if c.Offset-1 <= highest {
				t.Fatalf("the committed offset went back from %d to %d", highest+1, c.Offset)
			}
			highest = c.Offset - 1
		}
	}
	if highest != n-1 {
		t.Errorf("all acked, but committable only up to %d", highest)
	}
}
