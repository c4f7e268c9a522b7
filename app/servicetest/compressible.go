package servicetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/handlers"
)

// CompressiblePings makes n pings of size bytes each, spread round-robin over partitions, padded
// with one repeated letter: zstd writes 500 KB of them in about 130 bytes, so a fetch bounded in
// compressed bytes brings thousands of times its size once decoded.
func CompressiblePings(run string, n, partitions, size int) []Request {
	reqs := make([]Request, n)
	for i := range reqs {
		tag := fmt.Sprintf("%s-%d", run, i)
		id := json.RawMessage(fmt.Sprintf("%q", tag))
		body := fmt.Sprintf(`{"transaction-id": %s, "payload": {"message": "ping", "pad": ""}}`, id)
		body = strings.Replace(body, `"pad": ""`, `"pad": "`+strings.Repeat("p", max(0, size-len(body)))+`"`, 1)
		reqs[i] = Request{Tag: tag, Body: []byte(body), Partition: int32(i % partitions),
			Topic: Topics.Succeeded, Answer: string(handlers.PongAnswer(id))}
	}
	return reqs
}

// ProduceBatches writes the requests to .requested with cl, which must be made with
// kgo.ManualFlushing and a ProducerBatchMaxBytes that allows it, so that each partition's
// requests go in batches of perBatch records (the last may be smaller). It returns each
// request's record (with its offset), in order.
func ProduceBatches(ctx context.Context, cl *kgo.Client, reqs []Request, perBatch int) ([]*kgo.Record, error) {
	records := make([]*kgo.Record, len(reqs))
	for i, r := range reqs {
		records[i] = &kgo.Record{Topic: Topics.Requested, Partition: r.Partition, Key: r.Key, Value: r.Body}
	}
	byPartition := map[int32][]*kgo.Record{}
	for _, r := range records {
		byPartition[r.Partition] = append(byPartition[r.Partition], r)
	}
	for start := 0; ; start += perBatch {
		any := false
		var mu sync.Mutex
		var firstErr error
		for _, rs := range byPartition {
			for _, r := range rs[min(start, len(rs)):min(start+perBatch, len(rs))] {
				any = true
				cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
					mu.Lock()
					defer mu.Unlock()
					if err != nil && firstErr == nil {
						firstErr = err
					}
				})
			}
		}
		if !any {
			return records, nil
		}
		if err := cl.Flush(ctx); err != nil {
			return nil, err
		}
		if firstErr != nil {
			return nil, firstErr
		}
	}
}
