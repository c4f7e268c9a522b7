package transport

import (
	"errors"
	"testing"
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
