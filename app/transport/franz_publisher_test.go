package transport

import (
	"context"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/handlers"
)

// A record the franz-go publisher writes reads back, with watermill-kafka's own unmarshaler, as
// the message that was published: the two transports can share topics.
func TestRecordsReadBackWithWatermillKafkasMarshaler(t *testing.T) {
	msg := message.NewMessage("uuid-1", []byte(`{"transaction-id": "t1", "payload": {"message": "pong"}}`))
	msg.Metadata.Set(handlers.TransactionIDMetadataKey, "t1")
	msg.Metadata.Set("correlation_id", "c1")
	msg.Metadata.Set("pingpong_reason", "a reason with spaces, ünïcode")
	msg.Metadata.Set("empty", "")

	rec, err := toRecord("dev.pingpong.succeeded", msg, KeyFromMetadata(handlers.TransactionIDMetadataKey).keyOf(msg))
	if err != nil {
		t.Fatal(err)
	}
	if string(rec.Key) != "t1" {
		t.Errorf("key %q, want the transaction id", rec.Key)
	}
	consumed := &sarama.ConsumerMessage{Topic: rec.Topic, Key: rec.Key, Value: rec.Value}
	for _, h := range rec.Headers {
		consumed.Headers = append(consumed.Headers, &sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
	}
	read, err := kafka.DefaultMarshaler{}.Unmarshal(consumed)
	if err != nil {
		t.Fatal(err)
	}
	if read.UUID != msg.UUID || string(read.Payload) != string(msg.Payload) || !maps.Equal(read.Metadata, msg.Metadata) {
		t.Errorf("read back %s %s %v, want %s %s %v", read.UUID, read.Payload, read.Metadata, msg.UUID, msg.Payload, msg.Metadata)
	}
}

func TestRecordWithoutTransactionIDHasNoKey(t *testing.T) {
	msg := message.NewMessage("u", []byte("x"))
	rec, err := toRecord("t", msg, KeyFromMetadata(handlers.TransactionIDMetadataKey).keyOf(msg))
	if err != nil || rec.Key != nil {
		t.Errorf("key %q, error %v; want no key", rec.Key, err)
	}
}

func TestTheUUIDHeaderIsReserved(t *testing.T) {
	msg := message.NewMessage("u", nil)
	msg.Metadata.Set(uuidHeader, "other")
	if _, err := toRecord("t", msg, ""); err == nil {
		t.Error("metadata that would overwrite the message UUID was accepted")
	}
}

// Publishes made while a flight is in flight (50 handlers, each publishing its next answer once
// the last is acknowledged, with a broker that takes 20 ms a write) all return without error
// once acknowledged, in a few dozen produce requests, and an independent consumer reads every
// record back from both topics.
func TestPublishesDuringAFlightAreAllAcknowledged(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "answers", "failures"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	var requests atomic.Int64
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		requests.Add(1)
		cluster.SleepControl(func() { time.Sleep(20 * time.Millisecond) })
		return nil, nil, false
	})
	pub, err := NewFranzPublisher(nil, kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })

	const publishers, each = 50, 10
	const n = publishers * each
	var published sync.WaitGroup
	errs := make(chan error, n)
	for h := range publishers {
		published.Add(1)
		go func() {
			defer published.Done()
			for i := range each {
				time.Sleep(time.Duration(h%10) * time.Millisecond) // the handlers finish one after another
				id := strconv.Itoa(h*each + i)
				msg := message.NewMessage(id, []byte(id))
				msg.Metadata.Set(handlers.TransactionIDMetadataKey, id) // the key, as answers have
				topic := "answers"
				if i%10 >= 7 {
					topic = "failures"
				}
				errs <- pub.Publish(topic, msg)
			}
		}()
	}
	published.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Each publisher's answers wait for each other, so at most one request for each answer
	// of a publisher and one more for the rest; one a record would be n.
	if r := requests.Load(); r > 3*each {
		t.Errorf("%d produce requests for %d answers, %d at a time: they did not share requests", r, n, publishers)
	}

	consumer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("answers", "failures"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	read := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(read) < n && ctx.Err() == nil {
		consumer.PollFetches(ctx).EachRecord(func(r *kgo.Record) { read[string(r.Value)] = true })
	}
	if len(read) != n {
		t.Errorf("read back %d of %d answers", len(read), n)
	}
}
