package transport

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestWatchDecisions: what the watch does after each look at the requested topic.
func TestWatchDecisions(t *testing.T) {
	old, recreated := [16]byte{1}, [16]byte{2}
	for _, tc := range []struct {
		name      string
		known     bool
		seen      topicSeen
		unknownID bool
		want      watchStep
	}{
		{name: "first look", seen: topicSeen{exists: true, id: old, partitions: 4}, want: stepNone},
		{name: "unchanged", known: true, seen: topicSeen{exists: true, id: old, partitions: 4}, want: stepNone},
		{name: "broker unreachable", known: true, seen: topicSeen{err: errors.New("dial")}, unknownID: true, want: stepNone},
		{name: "deleted", known: true, seen: topicSeen{}, want: stepMissing},
		{name: "deleted, fetches fail", known: true, seen: topicSeen{}, unknownID: true, want: stepMissing},
		{name: "recreated", known: true, seen: topicSeen{exists: true, id: recreated, partitions: 4}, want: stepResubscribe},
		{name: "recreated with more partitions", known: true, seen: topicSeen{exists: true, id: recreated, partitions: 8}, want: stepResubscribe},
		{name: "fetches fail, same id seen", known: true, seen: topicSeen{exists: true, id: old, partitions: 4}, unknownID: true, want: stepResubscribe},
		{name: "recreated before the first look", seen: topicSeen{exists: true, id: recreated, partitions: 4}, unknownID: true, want: stepResubscribe},
		{name: "grown", known: true, seen: topicSeen{exists: true, id: old, partitions: 6}, want: stepGrown},
	} {
		if got := decide(tc.known, old, 4, tc.seen, tc.unknownID); got != tc.want {
			t.Errorf("%s: step %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestBornPartitionsStartAtTheirFirstRecord: with CONSUMER_OFFSET=latest, a partition the group
// has no commit for starts at the end, unless it was born while the service ran: every partition
// of a recreated topic, and the partitions added to a grown one. A committed offset is kept.
func TestBornPartitionsStartAtTheirFirstRecord(t *testing.T) {
	start, end := kgo.NewOffset().AtStart(), kgo.NewOffset().AtEnd()
	committed := kgo.NewOffset().At(42)
	adjust := func(w *topicWatch) map[int32]kgo.Offset {
		offsets := map[string]map[int32]kgo.Offset{"t": {0: end, 1: committed, 2: end, 3: committed}, "other": {0: end}}
		got, err := w.adjustOffsets(context.Background(), offsets)
		if err != nil {
			t.Fatal(err)
		}
		if got["other"][0] != end {
			t.Error("another topic's offset changed")
		}
		return got["t"]
	}
	for _, tc := range []struct {
		name      string
		recreated bool
		grownFrom int
		want      map[int32]kgo.Offset
	}{
		{"nothing born", false, -1, map[int32]kgo.Offset{0: end, 1: committed, 2: end, 3: committed}},
		{"recreated", true, -1, map[int32]kgo.Offset{0: start, 1: committed, 2: start, 3: committed}},
		{"grown from 2 partitions", false, 2, map[int32]kgo.Offset{0: end, 1: committed, 2: start, 3: committed}},
	} {
		w := newTopicWatch("t", nil, nil)
		w.recreated, w.grownFrom = tc.recreated, tc.grownFrom
		got := adjust(w)
		for p, want := range tc.want {
			if got[p] != want {
				t.Errorf("%s: partition %d starts at %v, want %v", tc.name, p, got[p].EpochOffset(), want.EpochOffset())
			}
		}
	}
}
