package reliability_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/pingpong/pingpong/handlers"
	"github.com/pingpong/pingpong/middleware"
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
		producer := batchProducer(t, brokers, c.codec)
		records, err := servicetest.ProduceBatches(ctx, producer, big, len(big))
		if err != nil {
			t.Fatalf("producing the %s batch: %v", c.name, err)
		}
		batches[int32(p)] = oversized{records[0].Offset, records[len(records)-1].Offset}
		if _, err := servicetest.ProduceBatches(ctx, producer, small, len(small)); err != nil {
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
			poisoned[a.Headers[middleware.HeaderPartition]] = a
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
				middleware.HeaderReasonCode: string(middleware.ReasonUndecodableBatch),
				middleware.HeaderOffset:     strconv.FormatInt(want.first, 10),
				middleware.HeaderLastOffset: strconv.FormatInt(want.last, 10),
			}
			for k, v := range checks {
				if a.Headers[k] != v {
					t.Errorf("header %s = %q, want %q", k, a.Headers[k], v)
				}
			}
			if reason := a.Headers[middleware.HeaderReason]; !strings.Contains(reason, fmt.Sprintf("offsets %d to %d", want.first, want.last)) || !strings.Contains(reason, "8 MiB") {
				t.Errorf("reason %q does not name the batch's offsets and the budget", reason)
			}
			if reason := a.Headers[middleware.HeaderReason]; !strings.Contains(reason, c.name+": ") {
				t.Errorf("reason %q does not name the codec", reason)
			}
			if raw, ok := a.Headers[middleware.HeaderOriginalBatch]; ok || c.name != "snappy" {
				var batch kmsg.RecordBatch
				if err := batch.ReadFrom([]byte(raw)); err != nil || batch.FirstOffset != want.first || int64(batch.NumRecords) != want.last-want.first+1 {
					t.Errorf("%s: %d bytes that are not the batch (%v): first offset %d, %d records", middleware.HeaderOriginalBatch, len(raw), err, batch.FirstOffset, batch.NumRecords)
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
