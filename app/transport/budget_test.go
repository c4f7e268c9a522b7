package transport_test

import (
	"context"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/budget"
	"github.com/pingpong/pingpong/app/transport"
)

// Everything the subscriber holds of the budget comes back once its messages are acked, through
// pauses (a budget of 16 batches and a small window make partitions wait, and franz-go drops
// what it had buffered for a paused partition), with compressed and uncompressed batches. The collector is
// off: nothing is released by a cleanup, only by the subscriber's own accounting.
func TestEverythingHeldIsReleasedOnceAcked(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	const partitions, n = 4, 4000
	brokers, _ := broker(t, partitions)
	padding := strings.Repeat("p", 1<<10)
	for _, codec := range []kgo.CompressionCodec{kgo.SnappyCompression(), kgo.NoCompression()} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(testTopic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(codec),
			kgo.ProducerBatchMaxBytes(16<<10)) // batches that fit the budget, many of them
		if err != nil {
			t.Fatal(err)
		}
		recs := make([]*kgo.Record, n/2)
		for i := range recs {
			recs[i] = &kgo.Record{Partition: int32(i % partitions), Value: []byte(strconv.Itoa(i) + padding)}
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}

	b := budget.New(256 << 10)
	sub, err := transport.NewFranzSubscriber(transport.FranzSubscriberConfig{
		ClientOptions: []kgo.Opt{kgo.SeedBrokers(brokers...)},
		ConsumerGroup: testGroup,
		ResetOffset:   kgo.NewOffset().AtStart(),
		Window:        8,
		DrainTimeout:  100 * time.Millisecond,
		Budget:        b,
	}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	msgs, err := sub.Subscribe(context.Background(), testTopic)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		select {
		case msg := <-msgs:
			msg.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d messages delivered, then none for 10 s; the budget holds %d bytes", i, n, b.Used())
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.Used() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if used := b.Used(); used != 0 {
		t.Fatalf("%d bytes of the budget still held after all %d messages were acked", used, n)
	}
}
