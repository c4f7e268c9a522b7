package reliability_test

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/pingpong/pingpong/handlers"
	"github.com/pingpong/pingpong/poison"
)

// The hostile compressed input of issue 13: pings of 500 KB padded with one letter, which every
// codec writes in a few hundred bytes, so that a fetch bounded in compressed bytes decodes to
// thousands of times its size. docs/security.md has the process's peak RSS for these cases
// (go run ./bench/memory).
const compressiblePingBytes = 500_000

var codecs = []struct {
	name  string
	codec kgo.CompressionCodec
}{
	{"zstd", kgo.ZstdCompression()},
	{"gzip", kgo.GzipCompression()},
	{"lz4", kgo.Lz4Compression()},
	{"snappy", kgo.SnappyCompression()},
}

// batchProducer writes each partition's records in batches of the size ProduceBatches asks for.
func batchProducer(t *testing.T, brokers []string, codec kgo.CompressionCodec) *kgo.Client {
	return servicetest.Client(t, brokers, kgo.ManualFlushing(), kgo.ProducerBatchCompression(codec),
		kgo.ProducerBatchMaxBytes(1<<30), kgo.BrokerMaxWriteBytes(1<<30), kgo.MaxBufferedBytes(1<<30))
}

// TestCompressedBatchesAreAnsweredWithinTheBudget: batches that decode to 12 MB each, on four
// partitions at once, with every codec, under a budget of 16 MiB: the partitions take turns
// rather than the process holding them all, and every ping is answered.
func TestCompressedBatchesAreAnsweredWithinTheBudget(t *testing.T) {
	const partitions, perBatch, batches = 4, 24, 2
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	var reqs []servicetest.Request
	for _, c := range codecs {
		batch := servicetest.CompressiblePings(c.name, partitions*perBatch*batches, partitions, compressiblePingBytes)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if _, err := servicetest.ProduceBatches(ctx, batchProducer(t, brokers, c.codec), batch, perBatch); err != nil {
			t.Fatalf("producing the %s batches: %v", c.name, err)
		}
		cancel()
		reqs = append(reqs, batch...)
	}
	svc := startBinaryWith(t, brokers, "MEMORY_BUDGET_BYTES="+strconv.Itoa(16<<20))
	reader := servicetest.NewReader(t, brokers)
	tally := reader.Await(t, reqs, 2*time.Minute)
	if len(tally.Missing) > 0 || len(tally.Wrong) > 0 {
		t.Fatalf("%d requests in compressed batches: %v; missing %v, wrong %v", len(reqs), tally, head(tally.Missing), head(tally.Wrong))
	}
	if err, exited := svc.Exited(); exited {
		t.Fatalf("the service exited: %v", err)
	}
}

// TestABatchPastTheBudgetIsPoisonedAndSkipped: on each partition, a batch that decodes to 10 MB
// under a budget of 8 MiB, with one codec a partition. Each is answered with one poison record
// that names its offsets and why, the pings behind it are answered, and the group's committed
// offset moves past it: no batch stops its partition.
func TestABatchPastTheBudgetIsPoisonedAndSkipped(t *testing.T) {
	partitions := len(codecs)
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	type oversized struct{ first, last int64 }
	batches := map[int32]oversized{}
	var behind []servicetest.Request
	for p, c := range codecs {
		big := servicetest.CompressiblePings("big-"+c.name, 20, 1, compressiblePingBytes)
		small := servicetest.CompressiblePings("after-"+c.name, 4, 1, compressiblePingBytes)
		for i := range big {
			big[i].Partition = int32(p)
		}
		for i := range small {
			small[i].Partition = int32(p)
		}
		// One raw produce request: a producer may split the records over two batches that each
		// fit the budget, and then nothing is there to poison.
		first := produceRaw(ctx, t, brokers, int32(p), compressedBatch(t, c.codec, big))
		batches[int32(p)] = oversized{first, first + int64(len(big)) - 1}
		if _, err := servicetest.ProduceBatches(ctx, batchProducer(t, brokers, c.codec), small, len(small)); err != nil {
			t.Fatal(err)
		}
		behind = append(behind, small...)
	}

	svc := startBinaryWith(t, brokers, "MEMORY_BUDGET_BYTES="+strconv.Itoa(8<<20))
	reader := servicetest.NewReader(t, brokers)
	tally := reader.Await(t, behind, 2*time.Minute)
	if len(tally.Missing) > 0 {
		t.Fatalf("the pings behind the oversized batches: %v; missing %v", tally, head(tally.Missing))
	}

	poisoned := map[string]servicetest.Answer{}
	for _, a := range reader.Answers() {
		if a.Topic == servicetest.Topics.Failed {
			poisoned[a.Headers[poison.HeaderPartition]] = a
		}
	}
	for p, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			want := batches[int32(p)]
			a, ok := poisoned[strconv.Itoa(p)]
			if !ok {
				t.Fatalf("no poison record for the %s batch on partition %d", c.name, p)
			}
			checks := map[string]string{
				poison.HeaderReasonCode: string(poison.ReasonUndecodableBatch),
				poison.HeaderOffset:     strconv.FormatInt(want.first, 10),
				poison.HeaderLastOffset: strconv.FormatInt(want.last, 10),
			}
			for k, v := range checks {
				if a.Headers[k] != v {
					t.Errorf("header %s = %q, want %q", k, a.Headers[k], v)
				}
			}
			if reason := a.Headers[poison.HeaderReason]; !strings.Contains(reason, fmt.Sprintf("offsets %d to %d", want.first, want.last)) || !strings.Contains(reason, "8 MiB") {
				t.Errorf("reason %q does not name the batch's offsets and the budget", reason)
			}
			if reason := a.Headers[poison.HeaderReason]; !strings.Contains(reason, c.name+": ") {
				t.Errorf("reason %q does not name the codec", reason)
			}
			if raw, ok := a.Headers[poison.HeaderOriginalBatch]; ok || c.name != "snappy" {
				var batch kmsg.RecordBatch
				if err := batch.ReadFrom([]byte(raw)); err != nil || batch.FirstOffset != want.first || int64(batch.NumRecords) != want.last-want.first+1 {
					t.Errorf("%s: %d bytes that are not the batch (%v): first offset %d, %d records", poison.HeaderOriginalBatch, len(raw), err, batch.FirstOffset, batch.NumRecords)
				}
			}
			if a.Value != string(handlers.MalformedAnswer()) {
				t.Errorf("answer %q, want the malformed answer", a.Value)
			}
		})
	}

	// The committed offsets are past everything: the batches were skipped for good.
	adm := kadm.NewClient(servicetest.Client(t, brokers))
	waitFor(t, 30*time.Second, "the group's offsets committed to the partitions' ends", func() bool {
		committed, err := adm.FetchOffsets(ctx, "pingpong")
		if err != nil {
			return false
		}
		ends, err := adm.ListEndOffsets(ctx, servicetest.Topics.Requested)
		if err != nil {
			return false
		}
		done := true
		ends.Each(func(end kadm.ListedOffset) {
			c, ok := committed.Lookup(end.Topic, end.Partition)
			done = done && ok && c.At == end.Offset
		})
		return done
	})
	if err, exited := svc.Exited(); exited {
		t.Fatalf("the service exited: %v", err)
	}
}

// corruptBatch is a record batch of n records whose attributes say zstd and whose records are
// not zstd: a broker takes it (its CRC is right), and nothing can decode it.
func corruptBatch(n int32) []byte {
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(kgo.CodecZstd), LastOffsetDelta: n - 1,
		FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli(),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: n,
		Records: []byte("\x28\xb5\x2f\xfd this is not zstd at all"),
	}
	return withLengthAndCRC(b)
}

// compressedBatch encodes reqs as one record batch compressed with codec, as a producer writes
// it.
func compressedBatch(t *testing.T, codec kgo.CompressionCodec, reqs []servicetest.Request) []byte {
	t.Helper()
	var raw []byte
	for i, req := range reqs {
		r := kmsg.Record{OffsetDelta: int32(i), Key: req.Key, Value: req.Body}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // less the one byte of the varint length 0
		raw = r.AppendTo(raw)
	}
	compressor, err := kgo.DefaultCompressor(codec)
	if err != nil {
		t.Fatal(err)
	}
	compressed, codecType := compressor.Compress(new(bytes.Buffer), raw)
	n := int32(len(reqs))
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(codecType), LastOffsetDelta: n - 1,
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: n, Records: compressed,
	}
	return withLengthAndCRC(b)
}

// withLengthAndCRC encodes b with its length and checksum set.
func withLengthAndCRC(b kmsg.RecordBatch) []byte {
	b.Length = int32(len(b.AppendTo(nil)) - 12)
	enc := b.AppendTo(nil)
	b.CRC = int32(crc32.Checksum(enc[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}

// produceRaw writes batch to partition of the requested topic in one raw produce request, and
// returns the offset of its first record.
func produceRaw(ctx context.Context, t *testing.T, brokers []string, partition int32, batch []byte) int64 {
	t.Helper()
	client := servicetest.Client(t, brokers)
	metadata, err := kadm.NewClient(client).Metadata(ctx, servicetest.Topics.Requested)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = servicetest.Topics.Requested, metadata.Topics[servicetest.Topics.Requested].ID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	answer := resp.Topics[0].Partitions[0]
	if answer.ErrorCode != 0 {
		t.Fatalf("the broker refused the batch: %v", kerr.ErrorForCode(answer.ErrorCode))
	}
	return answer.BaseOffset
}

// TestACorruptBatchIsPoisonedAndSkipped: a batch whose compressed data is corrupt (written with
// a raw produce request, as a broken or hostile client could) is answered with one poison record
// that says what failed, and the ping behind it is answered.
func TestACorruptBatchIsPoisonedAndSkipped(t *testing.T) {
	cluster := servicetest.Cluster(t, 1)
	brokers := cluster.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	produceRaw(ctx, t, brokers, 0, corruptBatch(3))
	behind := servicetest.CompressiblePings("behind-corrupt", 1, 1, 100)
	if _, err := servicetest.ProduceBatches(ctx, batchProducer(t, brokers, kgo.ZstdCompression()), behind, 1); err != nil {
		t.Fatal(err)
	}

	startBinary(t, brokers)
	reader := servicetest.NewReader(t, brokers)
	if tally := reader.Await(t, behind, time.Minute); len(tally.Missing) > 0 {
		t.Fatalf("the ping behind the corrupt batch: %v", tally)
	}
	var poisoned []servicetest.Answer
	for _, a := range reader.Answers() {
		if a.Topic == servicetest.Topics.Failed {
			poisoned = append(poisoned, a)
		}
	}
	if len(poisoned) != 1 {
		t.Fatalf("%d poison records, want one for the corrupt batch", len(poisoned))
	}
	h := poisoned[0].Headers
	if h[poison.HeaderReasonCode] != string(poison.ReasonUndecodableBatch) || h[poison.HeaderOffset] != "0" || h[poison.HeaderLastOffset] != "2" ||
		!strings.Contains(h[poison.HeaderReason], "offsets 0 to 2 cannot be decoded: zstd: ") {
		t.Errorf("poison record headers %v", trimmed(h))
	}
}
