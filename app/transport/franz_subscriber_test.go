package transport_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/transport"
)

const (
	testTopic = "t.requested"
	testGroup = "g"
)

// backlog starts a broker with one partition holding n records, values "0" to "n-1".
func backlog(t *testing.T, n int) []string {
	t.Helper()
	brokers, cl := broker(t, 1)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = kgo.StringRecord(strconv.Itoa(i))
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return brokers
}

// broker starts a broker with the topic in partitions and a client that writes to it.
func broker(t *testing.T, partitions int32) ([]string, *kgo.Client) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, testTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic(testTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cluster.ListenAddrs(), cl
}

func subscribe(t *testing.T, brokers []string, window int) (*transport.FranzSubscriber, <-chan *message.Message) {
	t.Helper()
	return subscribeWith(t, brokers, transport.FranzSubscriberConfig{Window: window})
}

// subscribeWith subscribes to the test topic with cfg, in the test group unless cfg names
// another, from the start, with a short drain.
func subscribeWith(t *testing.T, brokers []string, cfg transport.FranzSubscriberConfig) (*transport.FranzSubscriber, <-chan *message.Message) {
	t.Helper()
	cfg.ClientOptions = []kgo.Opt{kgo.SeedBrokers(brokers...)}
	if cfg.ConsumerGroup == "" {
		cfg.ConsumerGroup = testGroup
	}
	cfg.ResetOffset = kgo.NewOffset().AtStart()
	cfg.DrainTimeout = 100 * time.Millisecond
	sub, err := transport.NewFranzSubscriber(cfg, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := sub.Subscribe(context.Background(), testTopic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub, msgs
}

func receive(t *testing.T, msgs <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case msg := <-msgs:
		return msg
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		return nil
	}
}

func offsetOf(msg *message.Message) int64 { return transport.FranzSource(msg).Offset }

func committed(t *testing.T, brokers []string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offsets, err := kadm.NewClient(cl).FetchOffsets(context.Background(), testGroup)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offsets.Lookup(testTopic, 0)
	if !ok {
		return 0
	}
	return o.At
}

// Messages of a partition acked in random order, with one left unacked: after a restart the
// group resumes exactly at the unacked message, and the next subscriber delivers it first. No
// commit passes a message that was not acked, and nothing acked before it is delivered again.
func TestARestartResumesAtTheLowestUnackedMessage(t *testing.T) {
	const n, window = 400, 32
	brokers := backlog(t, n)
	resumeAt := int64(0)
	for round, unacked := range []int64{57, 58, 203, 399} {
		sub, msgs := subscribe(t, brokers, window)
		// With the chosen message unacked, the window lets the partition go up to last.
		last := min(unacked+window-1, n-1)
		next := resumeAt
		var held []*message.Message
		for next <= last || len(held) > 1 {
			if next <= last {
				select {
				case msg := <-msgs:
					if got := offsetOf(msg); got != next {
						t.Fatalf("round %d: offset %d delivered, want %d", round, got, next)
					}
					held = append(held, msg)
					next++
					continue
				case <-time.After(2 * time.Millisecond): // the window is likely full: ack something
				}
			}
			// Ack a random held message other than the chosen one, so acks come in any order.
			if len(held) == 0 {
				continue
			}
			i := rand.IntN(len(held))
			if offsetOf(held[i]) == unacked {
				continue
			}
			held[i].Ack()
			held = append(held[:i], held[i+1:]...)
		}
		if err := sub.Close(); err != nil {
			t.Fatalf("round %d: close: %v", round, err)
		}
		if got := committed(t, brokers); got != unacked {
			t.Fatalf("round %d: committed offset %d, want %d (the lowest unacked message)", round, got, unacked)
		}
		resumeAt = unacked
	}
}

// The window counts from the lowest unacked message: with the first message unacked, a window of
// 8 delivers 8 messages and then waits, however many of the others are acked; acking the first
// lets the partition go on.
func TestAStuckMessageStallsItsPartitionAfterAWindow(t *testing.T) {
	const window = 8
	brokers := backlog(t, 50)
	_, msgs := subscribe(t, brokers, window)
	first := receive(t, msgs)
	for range window - 1 {
		receive(t, msgs).Ack()
	}
	select {
	case msg := <-msgs:
		t.Fatalf("offset %d delivered while offset 0 was unacked and a window of %d in flight", offsetOf(msg), window)
	case <-time.After(300 * time.Millisecond):
	}
	first.Ack()
	if got := offsetOf(receive(t, msgs)); got != window {
		t.Errorf("offset %d delivered after the first was acked, want %d", got, window)
	}
}

// A partition whose messages are not acked does not hold back the others: its fetches pause,
// while the other partition's records keep coming, one small batch after another.
func TestAStalledPartitionDoesNotHoldBackTheOthers(t *testing.T) {
	const n = 100
	brokers, cl := broker(t, 2)
	// 4 KiB records, one batch each, so that each partition takes many fetches, and four times as
	// many in partition 0.
	padding := strings.Repeat(" ", 4<<10)
	for i := range 4 * n {
		for p := range int32(2) {
			if p == 1 && i >= n {
				continue
			}
			rec := &kgo.Record{Partition: p, Value: []byte(strconv.Itoa(i) + padding)}
			if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, msgs := subscribe(t, brokers, 2)
	var stalled []*message.Message // partition 0's, never acked
	for answered := 0; answered < n; {
		msg := receive(t, msgs)
		if transport.FranzSource(msg).Partition == 0 {
			stalled = append(stalled, msg)
			continue
		}
		if got, want := strings.TrimSpace(string(msg.Payload)), strconv.Itoa(answered); got != want {
			t.Fatalf("partition 1 delivered %q, want %q", got, want)
		}
		msg.Ack()
		answered++
	}
	if len(stalled) > 2 {
		t.Errorf("partition 0 delivered %d messages with a window of 2 and none acked", len(stalled))
	}
}

// A nacked message is delivered again, and the partition's order of commits holds: what was
// acked after it is committed only once it is acked too.
func TestANackedMessageIsDeliveredAgainBeforeItsOffsetIsCommitted(t *testing.T) {
	brokers := backlog(t, 3)
	sub, msgs := subscribe(t, brokers, 3)
	first := receive(t, msgs)
	receive(t, msgs).Ack()
	receive(t, msgs).Ack()
	first.Nack()
	again := receive(t, msgs)
	if offsetOf(again) != 0 || string(again.Payload) != "0" {
		t.Fatalf("after a nack, offset %d (%q) delivered, want offset 0 again", offsetOf(again), again.Payload)
	}
	again.Ack()
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if got := committed(t, brokers); got != 3 {
		t.Errorf("committed offset %d, want 3", got)
	}
}
