// Package transport connects the router to Kafka: Watermill subscribers and publishers, and
// where each message came from.
package transport

import (
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/kafkaclient"
	"github.com/pingpong/pingpong/source"
)

// saramaVersion is the protocol version watermill-kafka speaks: Kafka 2.1, the oldest that
// Kafka 4 still serves, so the service works with every broker from 2.1 on.
var saramaVersion = sarama.V2_1_0_0

// SaramaSubscriber is watermill-kafka's consumer-group subscriber. It hands a partition's
// messages to the router one at a time and marks each offset only after the message is acked;
// marked offsets are committed every second and when the partition is revoked or the subscriber
// closes, so an offset is never committed before its answer is acknowledged. Rebalances are
// reported to assignment, when not nil.
func SaramaSubscriber(c config.Service, logger watermill.LoggerAdapter, assignment *Assignment) (*kafka.Subscriber, error) {
	sc := kafka.DefaultSaramaSubscriberConfig()
	sc.Version = saramaVersion
	if err := kafkaclient.Sarama(c.Kafka, sc); err != nil {
		return nil, err
	}
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	if c.ConsumerOffset == config.OffsetLatest {
		sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	}
	// Only committed records are answered, as with franz-go.
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = time.Second
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	var tracer kafka.SaramaTracer
	if assignment != nil {
		tracer = saramaAssignment{a: assignment, logger: logger}
	}
	return kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers:               c.Kafka.BrokerList(),
		Unmarshaler:           kafka.DefaultMarshaler{},
		OverwriteSaramaConfig: sc,
		ConsumerGroup:         c.ConsumerGroup,
		Tracer:                tracer,
	}, logger)
}

// SaramaPublisher is watermill-kafka's synchronous publisher: Publish returns once every replica
// in sync has the record (acks=all). Records are keyed by key (nil: no keys).
func SaramaPublisher(c config.Service, logger watermill.LoggerAdapter, key RecordKey) (*kafka.Publisher, error) {
	pc := kafka.DefaultSaramaSyncPublisherConfig()
	pc.Version = saramaVersion
	if err := kafkaclient.Sarama(c.Kafka, pc); err != nil {
		return nil, err
	}
	pc.Producer.RequiredAcks = sarama.WaitForAll
	// Idempotent: a write the broker applied but answered late or with REQUEST_TIMED_OUT is
	// retried with its sequence number, and the broker keeps one copy; without it each retry
	// writes the answer again (docs/contract.md, "More than one answer"). Sarama requires
	// acks=all, one request in flight per broker and Kafka 0.11 (saramaVersion is 2.1).
	pc.Producer.Idempotent = true
	pc.Net.MaxOpenRequests = 1
	// Keyed answers go where Java's default partitioner (murmur2) and franz-go's put them, not
	// where Sarama's default (FNV-1a) would: both transports key alike, and consumers that
	// rely on Kafka's keying find them. Answers without a key are spread at random.
	pc.Producer.Partitioner = sarama.NewMurmur2Partitioner
	// Sarama's own retries span KAFKA_TIMEOUT, as franz-go's RecordDeliveryTimeout does: being
	// idempotent they write nothing twice, where each retry of the Retry middleware is a new
	// record. A publish that fails for good still reaches the poison queue in bounded time.
	pc.Producer.Retry.Max, pc.Producer.Retry.BackoffFunc = saramaRetries(c.Kafka.Timeout)
	pc.Metadata.Retry.Backoff = 250 * time.Millisecond
	return kafka.NewPublisher(kafka.PublisherConfig{
		Brokers:               c.Kafka.BrokerList(),
		Marshaler:             KeyedMarshaler(key),
		OverwriteSaramaConfig: pc,
	}, logger)
}

// KeyedMarshaler is watermill-kafka's DefaultMarshaler (metadata travels as headers, the message
// UUID in _watermill_message_uuid) with key's record key, so all answers to one transaction land
// on one partition. Without a key the key stays null and the partitioner spreads the records,
// where an empty key would send them all to one partition.
func KeyedMarshaler(key RecordKey) kafka.MarshalerUnmarshaler {
	return keyedMarshaler{key: key}
}

type keyedMarshaler struct {
	kafka.DefaultMarshaler
	key RecordKey
}

func (m keyedMarshaler) Marshal(topic string, msg *message.Message) (*sarama.ProducerMessage, error) {
	record, err := m.DefaultMarshaler.Marshal(topic, msg)
	if err != nil {
		return nil, err
	}
	if key := m.key.keyOf(msg); key != "" {
		record.Key = sarama.StringEncoder(key)
	}
	return record, nil
}

// SaramaSource reads where a message came from out of the context watermill-kafka gives it.
func SaramaSource(msg *message.Message) source.Source {
	ctx := msg.Context()
	src := source.Source{Topic: message.SubscribeTopicFromCtx(ctx)}
	src.Partition, _ = kafka.MessagePartitionFromCtx(ctx)
	src.Offset, _ = kafka.MessagePartitionOffsetFromCtx(ctx)
	src.Timestamp, _ = kafka.MessageTimestampFromCtx(ctx)
	src.Key, _ = kafka.MessageKeyFromCtx(ctx)
	return src
}

// saramaRetries are Sarama's producer retries for a publish that may take timeout: a pause of
// 100 ms doubling up to 1 s, and as many retries as fill timeout (at least one).
func saramaRetries(timeout time.Duration) (int, func(retries, maxRetries int) time.Duration) {
	backoff := func(retries, _ int) time.Duration {
		return min(100*time.Millisecond<<min(retries, 4), time.Second)
	}
	n, spent := 0, time.Duration(0)
	for spent < timeout || n == 0 {
		spent += backoff(n, 0)
		n++
	}
	return n, backoff
}
