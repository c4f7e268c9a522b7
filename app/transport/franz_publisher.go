package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/flow"
	"github.com/pingpong/pingpong/source"
)

// uuidHeader carries the Watermill message UUID, as in watermill-kafka.
const uuidHeader = kafka.UUIDHeaderKey

// FranzPublisher is a Watermill publisher on franz-go's asynchronous, batching, idempotent
// producer. Publish returns once the broker has acknowledged every record (acks=all), so it
// keeps the synchronous publisher's promise while the records of many concurrent Publish calls
// share batches.
//
// Records go to the producer in flights, one flight at a time: what Publish calls hand over while
// a flight is on its way to the broker waits and goes together in the next flight. On a cluster
// where a replicated write takes milliseconds, a produce request then carries everything that
// gathered during the last one, instead of the producer's five requests in flight (its limit
// with idempotence) each carrying a fifth of it and queueing at the broker, which serves one
// request of a connection at a time; when idle, a lone answer still goes out at once. A flight
// whose records take longer than maxFlightWait (a broker retrying, the poison queue's topic
// down) lets the next one go rather than hold every answer behind it.
//
// When the messages of a Publish call are answers to a FranzSubscriber's message, the subscriber
// is told once they are in the pending list (flow.Delivery.Queue), in the order they will be
// produced: the request's key may then go on to its next message without waiting for the broker,
// since the producer keeps one partition's records in order and an answer's partition follows
// from its key. A record that fails is reported too (flow.Delivery.Failed): its key rewinds. An
// answer of a key that has rewound is refused (errRewound), never produced.
//
// Records are written with watermill-kafka's conventions (metadata as headers, the UUID in
// _watermill_message_uuid) and the key its RecordKey gives, like the Sarama path.
type FranzPublisher struct {
	client *kgo.Client // nil in exactly-once mode: the subscriber's, from eos
	eos    *ExactlyOnce
	key    RecordKey
	once   sync.Once

	mu      sync.Mutex
	pending []pendingRecord
	// wake tells sendFlights that records are pending; closed ends it.
	wake   chan struct{}
	closed chan struct{}
	sent   chan struct{} // closed when sendFlights has returned
	// recreated follows answer topics deleted and created again (franz_recreated.go).
	recreated recreatedTopics
}

// pendingRecord is a record handed to Publish and not yet to the producer.
type pendingRecord struct {
	ctx      context.Context
	rec      *kgo.Record
	promise  func(*kgo.Record, error)
	delivery *flow.Delivery // of the request answered, if a FranzSubscriber delivered it
}

// brokerRefused tells a write the broker refused or never acknowledged from one the client gave
// up because its transaction was already aborting: only the first counts against the request.
func brokerRefused(err error) bool {
	var refused *kerr.Error
	return errors.As(err, &refused) || errors.Is(err, kgo.ErrRecordTimeout)
}

// errRewound refuses an answer whose key rewound after an earlier answer of it failed: the
// request is delivered again once the key starts over from the failed one. It wraps
// context.Canceled so that Retry does not retry it nor the poison queue answer it
// (middleware.Transient).
var errRewound = fmt.Errorf("an earlier answer of the same key failed to publish; the key is answered again from that request: %w", context.Canceled)

// maxFlightWait bounds how long the next flight waits for the one before it to be acknowledged.
const maxFlightWait = 100 * time.Millisecond

// NewFranzPublisher connects a publisher that keys each record by key (nil: no keys); opts are the
// client options (kafkaclient.Options plus producer tuning).
func NewFranzPublisher(key RecordKey, opts ...kgo.Opt) (*FranzPublisher, error) {
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return newFranzPublisher(client, nil, key), nil
}

// NewFranzTransactionalPublisher makes the publisher of exactly-once mode: it writes on the
// subscriber's transactional client (subscribed with e as its ExactlyOnce), in the transaction of
// the request each answer answers. A failed write aborts that transaction.
func NewFranzTransactionalPublisher(key RecordKey, e *ExactlyOnce) *FranzPublisher {
	return newFranzPublisher(nil, e, key)
}

func newFranzPublisher(client *kgo.Client, e *ExactlyOnce, key RecordKey) *FranzPublisher {
	p := &FranzPublisher{client: client, eos: e, key: key, wake: make(chan struct{}, 1), closed: make(chan struct{}), sent: make(chan struct{})}
	go p.sendFlights()
	return p
}

// producer is the client the records go to.
func (p *FranzPublisher) producer() *kgo.Client {
	if p.eos != nil {
		return p.eos.producer()
	}
	return p.client
}

// Publish produces msgs to topic and waits for the broker's acknowledgement of each.
func (p *FranzPublisher) Publish(topic string, msgs ...*message.Message) error {
	client := p.producer()
	if client == nil {
		return errNotSubscribed
	}
	acks := &acknowledgements{}
	records := make([]pendingRecord, 0, len(msgs))
	var delivery *flow.Delivery // of every message, or nil
	var firstKey string
	for i, msg := range msgs {
		key := p.key.keyOf(msg)
		if i == 0 {
			firstKey = key
		}
		rec, err := toRecord(topic, msg, key)
		if err != nil {
			return err
		}
		ctx := produceContext(msg)
		d, _ := ctx.Value(deliveryKey{}).(*flow.Delivery)
		if i == 0 {
			delivery = d
		} else if d != delivery {
			delivery = nil // answers to several requests: told nothing, their keys wait for the acks
		}
		records = append(records, pendingRecord{ctx: ctx, rec: rec, delivery: d, promise: func(_ *kgo.Record, err error) {
			if err != nil && d != nil {
				d.Failed()
			}
			if err != nil && p.eos != nil && !errors.Is(err, context.Canceled) {
				p.eos.txns.Doom(flow.AbortPublishFailed)
				if src, ok := ctx.Value(franzSourceKey{}).(source.Source); ok && brokerRefused(err) {
					p.eos.answerFailed(src, topic)
				}
			}
			acks.done(msg, err)
		}})
	}
	select {
	case <-p.closed: // closing: no more flights, straight to the producer, and no signal
		acks.wg.Add(len(records))
		for _, r := range records {
			client.Produce(r.ctx, r.rec, r.promise)
		}
		acks.wg.Wait()
		return errors.Join(acks.errs...)
	default:
	}
	acks.wg.Add(len(records)) // before any can be produced
	enqueue := func() {
		p.mu.Lock()
		p.pending = append(p.pending, records...)
		p.mu.Unlock()
	}
	if delivery != nil {
		for {
			ok, wait := delivery.Queue(flow.Destination{Topic: topic, Key: firstKey}, enqueue)
			if ok {
				break
			}
			if wait == nil {
				return errRewound
			}
			<-wait // an earlier answer of the key to another topic is not acknowledged yet
		}
	} else {
		enqueue()
	}
	select {
	case p.wake <- struct{}{}:
	default: // sendFlights has been woken already
	}
	acks.wg.Wait()
	return errors.Join(acks.errs...)
}

// sendFlights hands the pending records to the producer, one flight at a time.
func (p *FranzPublisher) sendFlights() {
	defer close(p.sent)
	for {
		select {
		case <-p.wake:
		case <-p.closed:
			p.sendFlight() // what was handed over before Close
			return
		}
		acked := p.sendFlight()
		select {
		case <-acked:
		case <-time.After(maxFlightWait):
		}
	}
}

// sendFlight produces every pending record; the channel is closed once all are acknowledged.
func (p *FranzPublisher) sendFlight() <-chan struct{} {
	p.mu.Lock()
	flight := p.pending
	p.pending = nil
	p.mu.Unlock()
	acked := make(chan struct{})
	if len(flight) == 0 {
		close(acked)
		return acked
	}
	client := p.producer() // not nil: Publish handed these records over
	var remaining atomic.Int64
	remaining.Store(int64(len(flight)))
	for _, r := range flight {
		if err := p.refused(r); err != nil {
			r.promise(r.rec, err)
			if remaining.Add(-1) == 0 {
				close(acked)
			}
			continue
		}
		client.Produce(r.ctx, r.rec, func(rec *kgo.Record, err error) {
			p.recreated.failed(client, rec.Topic, err)
			r.promise(rec, err)
			if remaining.Add(-1) == 0 {
				close(acked)
			}
		})
	}
	return acked
}

// refused says why a pending record must not be produced, nil if it may be: its key rewound
// while it waited (an earlier answer of the key failed, and this one must not land before that
// one's next attempt), or, in exactly-once mode, the transaction of its request has ended (its
// context is canceled then): produced now, it would land in the next transaction, while its
// request is read and answered again.
func (p *FranzPublisher) refused(r pendingRecord) error {
	if r.delivery != nil && r.delivery.Stale() {
		return errRewound
	}
	if p.eos != nil && r.ctx.Err() != nil {
		return r.ctx.Err()
	}
	return nil
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

// Close flushes what is buffered and closes the client; in exactly-once mode the client is the
// subscriber's, which ends the last transaction and closes it.
func (p *FranzPublisher) Close() error {
	p.once.Do(func() {
		close(p.closed)
		<-p.sent
		if p.client != nil {
			_ = p.client.Flush(context.Background())
			p.client.Close()
		}
	})
	return nil
}

func produceContext(msg *message.Message) context.Context {
	if ctx := msg.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// toRecord writes msg as watermill-kafka does, with key as its key ("" for none). The UUID, the
// key and the header values share one buffer: a poison record carries a dozen headers, and one
// allocation each showed in the profile.
func toRecord(topic string, msg *message.Message, key string) (*kgo.Record, error) {
	if msg.Metadata.Get(uuidHeader) != "" {
		return nil, fmt.Errorf("metadata %s is reserved for the message UUID", uuidHeader)
	}
	size := len(msg.UUID) + len(key)
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
	if key != "" {
		rec.Key = bytesOf(key)
	}
	for k, v := range msg.Metadata {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: bytesOf(v)})
	}
	return rec, nil
}
