package main

import (
	"encoding/binary"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The bench's broker: an in-process kfake that delays the system's writes as a replicated
// cluster would, and counts what the system's produce and transaction requests carry.

// control makes the broker delay the system's writes by the current produce latency (its
// transactional requests too with delayTransactions), count the answers its produce requests
// carry, and count the transactions it commits.
func (tb *testbed) control(delayTransactions bool) {
	tb.cluster.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if req.(*kmsg.EndTxnRequest).Commit {
			tb.commits.Add(1)
		}
		return nil, nil, false
	})
	// A transaction's own requests are replicated writes too on a real cluster (to the
	// transaction log, or the offsets topic for TxnOffsetCommit): with -delay-transactions they
	// take the produce latency as well. Only an exactly-once system sends them.
	for _, key := range []kmsg.Key{kmsg.AddPartitionsToTxn, kmsg.AddOffsetsToTxn, kmsg.TxnOffsetCommit, kmsg.EndTxn} {
		tb.cluster.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
			if delay := time.Duration(tb.produceLatency.Load()); delay > 0 && delayTransactions {
				tb.cluster.SleepControl(func() { time.Sleep(delay) })
			}
			return nil, nil, false
		})
	}
	tb.cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		produce := req.(*kmsg.ProduceRequest)
		if writesRequestsOnly(produce) {
			return nil, nil, false
		}
		tb.answers.count(produce)
		if delay := time.Duration(tb.produceLatency.Load()); delay > 0 {
			tb.cluster.SleepControl(func() { time.Sleep(delay) })
		}
		return nil, nil, false
	})
}

// testbed is what every run shares: the broker, and the service's binary.
type testbed struct {
	cluster *kfake.Cluster
	brokers []string
	service string
	answers produceCounter
	// produceLatency is the delay of the current run's produce requests, in nanoseconds.
	produceLatency atomic.Int64
	// commits counts the transactions committed (EndTxn requests that commit).
	commits atomic.Int64
}

// produceCounter counts the produce requests of the system under test (those that write answers,
// not requests) and the records they carry.
type produceCounter struct {
	requests, records atomic.Int64
}

func (c *produceCounter) reset() {
	c.requests.Store(0)
	c.records.Store(0)
}

func (c *produceCounter) count(req *kmsg.ProduceRequest) {
	if writesRequestsOnly(req) {
		return
	}
	c.requests.Add(1)
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			c.records.Add(int64(recordsIn(p.Records)))
		}
	}
}

func (c *produceCounter) perRequest() float64 {
	if n := c.requests.Load(); n > 0 {
		return float64(c.records.Load()) / float64(n)
	}
	return 0
}

// recordsIn counts the records of a produce request's record batches (v2, the only format a
// current client writes): each batch header gives its length at bytes 8-11, counting from byte
// 12, and its number of records at bytes 57-60.
func recordsIn(batches []byte) int {
	n := 0
	for len(batches) >= 61 {
		n += int(binary.BigEndian.Uint32(batches[57:61]))
		next := 12 + int(binary.BigEndian.Uint32(batches[8:12]))
		if next > len(batches) {
			break
		}
		batches = batches[next:]
	}
	return n
}

func topics(cluster *kfake.Cluster, prefix string, partitions int) error {
	for _, suffix := range []string{".requested", ".succeeded", ".failed"} {
		if err := cluster.CreateTopic(prefix+suffix, int32(partitions), nil); err != nil {
			return err
		}
	}
	return nil
}

// writesRequestsOnly tells a produce request of the load generator, which writes only to
// .requested topics, from one of a system under test.
func writesRequestsOnly(req *kmsg.ProduceRequest) bool {
	for _, t := range req.Topics {
		if !strings.HasSuffix(t.Topic, ".requested") {
			return false
		}
	}
	return len(req.Topics) > 0
}
