package transport_test

import (
	"context"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

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
	_, msgs := subscribeWith(t, brokers, transport.FranzSubscriberConfig{
		ConsumerGroup: testGroup,
		Window:        8,
		Budget:        b,
	})
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

// The window adapts to the budget: with room, a partition has as many messages in flight as its
// window allows, far more than the 64 of old; with little room, only what the budget holds.
func TestMessagesInFlightFollowTheBudget(t *testing.T) {
	const n, window = 2000, 1024
	brokers, cl := broker(t, 1)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = kgo.StringRecord(strconv.Itoa(i))
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	perMessage := int64(transport.MessageOverheadBytes + 2*4) // values of at most 4 bytes
	for _, tc := range []struct {
		name   string
		budget int64
		want   int
	}{
		{"room for the whole window", 64 << 20, window},
		{"room for 100 messages", 100*perMessage + 64<<10, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := budget.New(tc.budget)
			_, msgs := subscribeWith(t, brokers, transport.FranzSubscriberConfig{
				ConsumerGroup: testGroup + tc.name,
				Window:        window,
				Budget:        b,
				Ordering:      transport.OrderNone,
			})
			inFlight := 0
			for done := false; !done; {
				select {
				case <-msgs:
					inFlight++
				case <-time.After(500 * time.Millisecond):
					done = true
				}
			}
			// The fetched batches not yet delivered hold some of the budget too: a few
			// messages' worth.
			if inFlight > tc.want+2 || inFlight < tc.want*9/10 {
				t.Fatalf("%d messages in flight, none acked; want about %d (budget %d bytes, window %d)", inFlight, tc.want, tc.budget, window)
			}
		})
	}
}
