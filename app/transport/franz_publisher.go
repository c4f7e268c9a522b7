package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/handlers"
)

// uuidHeader carries the Watermill message UUID, as in watermill-kafka.
const uuidHeader = kafka.UUIDHeaderKey

// FranzPublisher is a Watermill publisher on franz-go's batching, idempotent producer. Publish
// returns once the broker has acknowledged every record of the call (acks=all), so it keeps the
// synchronous publisher's promise while the records of many concurrent Publish calls share
// produce requests.
//
// The records go out in flights: one flight at a time, each carrying every record that was
// published while the one before it was in flight. A broker serves the requests of a
// connection one after another, so with a write that takes milliseconds (a replicated acks=all
// write) the idempotent producer's five requests in flight only queue there, each carrying what
// had gathered since the one before it: a few answers. One flight at a time makes each request
// carry all that gathered during the previous round trip, and an answer at light load still goes
// out at once, with no timer (docs/performance.md has the figures). franz-go allows one request
// in flight per broker only with idempotence off; flights keep it on, and with it the order and
// the absence of duplicates of the producer's own retries.
//
// Records are written with watermill-kafka's conventions (metadata as headers, the UUID in
// _watermill_message_uuid) and the transaction id as the key, like the Sarama path.
type FranzPublisher struct {
	client *kgo.Client
	// linger is how long a flight waits for more records before it is sent (KAFKA_PRODUCER_LINGER).
	linger time.Duration

	mu      sync.Mutex
	waiting []outgoing // records published since the current flight left
	flying  bool       // a flight is being sent or waits for its acknowledgements
	once    sync.Once
}

// outgoing is a record waiting for its flight.
type outgoing struct {
	ctx  context.Context
	rec  *kgo.Record
	done func(*kgo.Record, error)
}

// NewFranzPublisher connects a publisher; opts are the client options (kafkaclient.Options plus
// producer tuning), linger the wait of each flight for more records (0: none).
func NewFranzPublisher(linger time.Duration, opts ...kgo.Opt) (*FranzPublisher, error) {
	client, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
		// Records are sent when their flight leaves (Flush), not as they are produced.
		kgo.ManualFlushing(),
		// A flight holds at most the messages in flight (the windows and the budget bound
		// them); with manual flushing franz-go refuses records past its own bound.
		kgo.MaxBufferedRecords(maxFlightRecords),
	)...)
	if err != nil {
		return nil, err
	}
	return &FranzPublisher{client: client, linger: linger}, nil
}

// maxFlightRecords is franz-go's bound on the records buffered for a flight: far above what the
// subscriber keeps in flight, so never the limit.
const maxFlightRecords = 1 << 20

// Publish produces msgs to topic and waits for the broker's acknowledgement of each.
func (p *FranzPublisher) Publish(topic string, msgs ...*message.Message) error {
	acks := &acknowledgements{}
	records := make([]outgoing, 0, len(msgs))
	for _, msg := range msgs {
		rec, err := toRecord(topic, msg)
		if err != nil {
			return err
		}
		records = append(records, outgoing{ctx: produceContext(msg), rec: rec, done: func(_ *kgo.Record, err error) {
			acks.done(msg, err)
		}})
	}
	acks.wg.Add(len(records))
	p.mu.Lock()
	p.waiting = append(p.waiting, records...)
	if !p.flying {
		p.flying = true
		go p.fly()
	}
	p.mu.Unlock()
	acks.wg.Wait()
	return errors.Join(acks.errs...)
}

// fly sends flights, one at a time, while records wait for one.
func (p *FranzPublisher) fly() {
	for {
		if p.linger > 0 {
			time.Sleep(p.linger)
		}
		p.mu.Lock()
		flight := p.waiting
		p.waiting = nil
		if len(flight) == 0 {
			p.flying = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		for _, o := range flight {
			p.client.Produce(o.ctx, o.rec, o.done)
		}
		// Flush returns once every record is acknowledged or failed (RecordDeliveryTimeout
		// bounds it); each record's callback has answered its Publish by then.
		_ = p.client.Flush(context.Background())
	}
}

// acknowledgements collects the broker's answers to one Publish call.
type acknowledgements struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

func (a *acknowledgements) done(msg *message.Message, err error) {
	if err != nil {
		a.mu.Lock()
		a.errs = append(a.errs, fmt.Errorf("producing message %s: %w", msg.UUID, err))
		a.mu.Unlock()
	}
	a.wg.Done()
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

// toRecord writes msg as watermill-kafka does. The UUID and the header values share one buffer:
// a poison record carries a dozen headers, and one allocation each showed in the profile.
func toRecord(topic string, msg *message.Message) (*kgo.Record, error) {
	if msg.Metadata.Get(uuidHeader) != "" {
		return nil, fmt.Errorf("metadata %s is reserved for the message UUID", uuidHeader)
	}
	size := len(msg.UUID)
	for _, v := range msg.Metadata {
		size += len(v)
	}
	values := make([]byte, 0, size)
	bytesOf := func(v string) []byte {
		start := len(values)
		values = append(values, v...)
		return values[start:len(values):len(values)]
	}
	rec := &kgo.Record{Topic: topic, Value: msg.Payload, Headers: make([]kgo.RecordHeader, 0, len(msg.Metadata)+1)}
	rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: uuidHeader, Value: bytesOf(msg.UUID)})
	for k, v := range msg.Metadata {
		value := bytesOf(v)
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: value})
		if k == handlers.TransactionIDMetadataKey && v != "" {
			rec.Key = value
		}
	}
	return rec, nil
}
