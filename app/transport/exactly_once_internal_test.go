package transport

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/app/flow"
)

// After an abort on a failed write or an unanswered request the next transaction waits, the wait
// doubling up to its bound as Retry's does; a commit, or an abort for another reason, waits not.
func TestTransactionsBackOffWhileAnswersFail(t *testing.T) {
	e := &ExactlyOnce{RetryInterval: 100 * time.Millisecond, MaxRetryInterval: time.Second}
	var waits []time.Duration
	wait := time.Duration(0)
	for _, reason := range []flow.AbortReason{flow.AbortPublishFailed, flow.AbortNotAnswered, flow.AbortPublishFailed, flow.AbortPublishFailed, flow.AbortPublishFailed, flow.AbortPublishFailed, "", flow.AbortRebalance, flow.AbortPublishFailed} {
		wait = e.nextBackoff(wait, reason)
		waits = append(waits, wait)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second, 0, 0, 100 * time.Millisecond}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
}

// The offsets a transaction commits are its partitions' marks, not franz-go's polled positions;
// a partition with no mark in it is left out.
func TestATransactionCommitsItsMarks(t *testing.T) {
	req := newTxnOffsetCommit("t", map[int32]int64{0: 900, 1: 500, 2: 40})
	commitMarks(req, "t", map[int32]flow.Mark{0: {Epoch: 3, Next: 120}, 2: {Epoch: 1, Next: 40}})
	got := map[int32]int64{}
	for _, topic := range req.Topics {
		for _, p := range topic.Partitions {
			got[p.Partition] = p.Offset
		}
	}
	if len(got) != 2 || got[0] != 120 || got[2] != 40 {
		t.Errorf("committed %v, want partition 0 at 120 and 2 at 40, 1 left out", got)
	}
}

func newTxnOffsetCommit(topic string, offsets map[int32]int64) *kmsg.TxnOffsetCommitRequest {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = topic
	for p, o := range offsets {
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, o
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}
