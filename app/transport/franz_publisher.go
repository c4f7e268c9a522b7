package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/handlers"
)

// uuidHeader carries the Watermill message UUID, as in watermill-kafka.
const uuidHeader = kafka.UUIDHeaderKey

// FranzPublisher is a Watermill publisher on franz-go's asynchronous, batching, idempotent
// producer. Publish hands the records to the producer and returns once the broker has
// acknowledged every one (acks=all), so it keeps the synchronous publisher's promise while the
// records of many concurrent Publish calls share batches.
//
// Records are written with watermill-kafka's conventions (metadata as headers, the UUID in
// _watermill_message_uuid) and the transaction id as the key, like the Sarama path.
type FranzPublisher struct {
	client *kgo.Client
	once   sync.Once
}

// NewFranzPublisher connects a publisher; opts are the client options (kafkaclient.Options plus
// producer tuning).
func NewFranzPublisher(opts ...kgo.Opt) (*FranzPublisher, error) {
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return &FranzPublisher{client: client}, nil
}

// Publish produces msgs to topic and waits for the broker's acknowledgement of each.
func (p *FranzPublisher) Publish(topic string, msgs ...*message.Message) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, msg := range msgs {
		rec, err := toRecord(topic, msg)
		if err != nil {
			return err
		}
		wg.Add(1)
		p.client.Produce(produceContext(msg), rec, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("producing message %s: %w", msg.UUID, err))
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close flushes what is buffered and closes the client.
func (p *FranzPublisher) Close() error {
	p.once.Do(func() {
		_ = p.client.Flush(context.Background())
		p.client.Close()
	})
	return nil
}

func produceContext(msg *message.Message) context.Context {
	if ctx := msg.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

func toRecord(topic string, msg *message.Message) (*kgo.Record, error) {
	if msg.Metadata.Get(uuidHeader) != "" {
		return nil, fmt.Errorf("metadata %s is reserved for the message UUID", uuidHeader)
	}
	rec := &kgo.Record{Topic: topic, Value: msg.Payload, Headers: make([]kgo.RecordHeader, 0, len(msg.Metadata)+1)}
	rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: uuidHeader, Value: []byte(msg.UUID)})
	for k, v := range msg.Metadata {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	if id := msg.Metadata.Get(handlers.TransactionIDMetadataKey); id != "" {
		rec.Key = []byte(id)
	}
	return rec, nil
}
