package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/source"
)

// A batch the decompressor cannot decode within the budget fails its partition's fetch again and
// again (errUndecodable), without saying which offsets it covers. The partition's worker pauses
// the partition, reads the batch itself with a raw fetch from the partition's leader (the first
// one at or after the partition's position that does not decode), hands over the message that
// stands for it, and moves the partition past it with SetOffsets.

// skipUndecodable starts skipping the partition's undecodable batch, unless it is at it already.
func (w *partitionWorker) skipUndecodable() {
	if w.fetches.Skipping(true) {
		go w.skip(w.position.Load())
	}
}

// undecodableRetry is how long a partition waits before trying to find its undecodable batch
// again, after the cluster did not answer.
const undecodableRetry = time.Second

func (w *partitionWorker) skip(from int64) {
	c := w.consumer
	ctx, cancel := context.WithTimeout(c.pollCtx, 30*time.Second)
	defer cancel()
	batch, epoch, err := c.findUndecodable(ctx, w.partition, from)
	if err != nil {
		if c.pollCtx.Err() == nil {
			c.logger.Error("Cannot read the record batch that does not decode; trying again", err, watermill.LogFields{"kafka_partition": w.partition})
			select {
			case <-time.After(undecodableRetry):
			case <-w.stop:
			}
		}
	} else {
		c.logger.Error("A record batch cannot be decoded: it is answered on the poison queue and skipped", batch, watermill.LogFields{
			"kafka_partition": w.partition, "first_offset": batch.FirstOffset, "last_offset": batch.LastOffset,
		})
		w.enqueue(fetched{undecodable: batch, epoch: epoch})
		c.client.SetOffsets(map[string]map[int32]kgo.EpochOffset{c.topic: {w.partition: {Epoch: epoch, Offset: batch.LastOffset + 1}}})
	}
	w.fetches.Skipping(false) // fetched again: past the batch, or at it to try once more
}

// maxBatchesWalked bounds the raw fetches that look for the undecodable batch from a position.
const maxBatchesWalked = 1000

// findUndecodable reads the partition's batches from offset from (the partition's committed
// offset when from is -1) and returns the first one that does not decode within the budget.
func (c *consumer) findUndecodable(ctx context.Context, partition int32, from int64) (*source.UndecodableBatch, int32, error) {
	adm := kadm.NewClient(c.client)
	if from < 0 {
		if o, ok := c.client.CommittedOffsets()[c.topic][partition]; ok {
			from = o.Offset
		} else {
			starts, err := adm.ListStartOffsets(ctx, c.topic)
			if err != nil {
				return nil, 0, err
			}
			start, ok := starts.Lookup(c.topic, partition)
			if !ok || start.Err != nil {
				return nil, 0, fmt.Errorf("the partition's start offset: %v", start.Err)
			}
			from = start.Offset
		}
	}
	metadata, err := adm.Metadata(ctx, c.topic)
	if err != nil {
		return nil, 0, err
	}
	details, ok := metadata.Topics[c.topic].Partitions[partition]
	if !ok {
		return nil, 0, errors.New("the partition has no leader in the cluster's metadata")
	}
	broker := c.client.Broker(int(details.Leader))
	for range maxBatchesWalked {
		raw, err := fetchFirstBatch(ctx, broker, c.topic, metadata.Topics[c.topic].ID, partition, from)
		if err != nil {
			return nil, 0, err
		}
		var b kmsg.RecordBatch
		if err := b.ReadFrom(raw); err != nil {
			return nil, 0, fmt.Errorf("the batch at offset %d: %w", from, err)
		}
		last := b.FirstOffset + int64(b.LastOffsetDelta)
		if codec := kgo.CompressionCodecType(b.Attributes & 0x7); codec != kgo.CodecNone {
			if _, err := c.decompressor.decodedSize(b.Records, codec); err != nil {
				return &source.UndecodableBatch{FirstOffset: b.FirstOffset, LastOffset: last, Why: c.undecodableWhy(codec, err), Raw: raw}, b.PartitionLeaderEpoch, nil
			}
		}
		from = last + 1
	}
	return nil, 0, fmt.Errorf("no batch that does not decode within %d batches", maxBatchesWalked)
}

// fetchFirstBatch reads the bytes of the first record batch at or after offset, as the broker
// stores them.
func fetchFirstBatch(ctx context.Context, broker *kgo.Broker, topic string, topicID [16]byte, partition int32, offset int64) ([]byte, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = 1 // a broker returns the first batch whole whatever the bound
	req.IsolationLevel = 1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, topicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, 1
	rp.CurrentLeaderEpoch, rp.LogStartOffset = -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, broker)
	if err != nil {
		return nil, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return nil, errors.New("the broker's fetch response has no such partition")
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return nil, err
	}
	raw := p.RecordBatches
	if len(raw) < 12 {
		return nil, fmt.Errorf("no record batch at offset %d", offset)
	}
	length := int(int32(binary.BigEndian.Uint32(raw[8:]))) + 12
	if length < 12 || length > len(raw) {
		return nil, fmt.Errorf("the record batch at offset %d is truncated", offset)
	}
	return raw[:length:length], nil
}
