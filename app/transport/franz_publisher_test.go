package transport

import (
	"maps"
	"testing"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

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

	rec, err := toRecord("dev.pingpong.succeeded", msg)
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
	rec, err := toRecord("t", message.NewMessage("u", []byte("x")))
	if err != nil || rec.Key != nil {
		t.Errorf("key %q, error %v; want no key", rec.Key, err)
	}
}

func TestTheUUIDHeaderIsReserved(t *testing.T) {
	msg := message.NewMessage("u", nil)
	msg.Metadata.Set(uuidHeader, "other")
	if _, err := toRecord("t", msg); err == nil {
		t.Error("metadata that would overwrite the message UUID was accepted")
	}
}
