package transport

import (
	"errors"
	"fmt"
	"os"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/budget"
	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/kafkaclient"
	"github.com/pingpong/pingpong/source"
)

// Kafka is the router's connection to Kafka.
type Kafka struct {
	Subscriber message.Subscriber
	Publisher  message.Publisher
	// Source tells where the subscriber's messages came from.
	Source source.Func
	// Budget is the memory budget the subscriber holds its messages against; nil for
	// watermill-kafka, which has none.
	Budget *budget.Budget
	// Collectors are the transport's own series (the transactions', in exactly-once mode).
	Collectors []prometheus.Collector
}

// Close closes the subscriber and the publisher.
func (k Kafka) Close() error {
	var err error
	if k.Subscriber != nil {
		err = k.Subscriber.Close()
	}
	if k.Publisher != nil {
		err = errors.Join(err, k.Publisher.Close())
	}
	return err
}

// New connects the transport the configuration names (KAFKA_TRANSPORT). Its consumer group's
// rebalances are reported to assignment (nil for none); the records it publishes are keyed by key.
// clientOpts are added to the franz-go clients' options (its logger, say).
func New(c config.Service, logger watermill.LoggerAdapter, assignment *Assignment, key RecordKey, clientOpts ...kgo.Opt) (Kafka, error) {
	if c.Transport.Name == config.TransportWatermill {
		return newWatermillKafka(c, logger, assignment, key)
	}
	return newFranz(c, logger, assignment, key, clientOpts)
}

func newWatermillKafka(c config.Service, logger watermill.LoggerAdapter, assignment *Assignment, key RecordKey) (k Kafka, err error) {
	k.Source = SaramaSource
	// As in newFranz, a client is stored in k only once it exists (no typed nil for Close).
	subscriber, err := SaramaSubscriber(c, logger, assignment)
	if err != nil {
		return k, fmt.Errorf("connecting the subscriber to %s: %w", c.Kafka.Brokers, err)
	}
	k.Subscriber = subscriber
	publisher, err := SaramaPublisher(c, logger, key)
	if err != nil {
		return k, errors.Join(fmt.Errorf("connecting the publisher to %s: %w", c.Kafka.Brokers, err), k.Close())
	}
	k.Publisher = publisher
	return k, nil
}

func newFranz(c config.Service, logger watermill.LoggerAdapter, assignment *Assignment, key RecordKey, clientOpts []kgo.Opt) (k Kafka, err error) {
	k.Source = FranzSource
	k.Budget = budget.New(int64(c.Transport.MemoryBudgetBytes))
	opts, err := kafkaclient.Options(c.Kafka)
	if err != nil {
		return k, err
	}
	opts = append(opts, clientOpts...)
	reset := kgo.NewOffset().AtStart()
	if c.ConsumerOffset == config.OffsetLatest {
		reset = kgo.NewOffset().AtEnd()
	}
	producer := append(append([]kgo.Opt{}, opts...),
		kgo.RequiredAcks(kgo.AllISRAcks()), // the default, said out loud: an answer is durable before its request is committed
		kgo.ProducerLinger(c.Transport.ProducerLinger),
		kgo.ProducerBatchMaxBytes(int32(c.Transport.ProducerBatchBytes)),
		kgo.ProducerBatchCompression(codec(c.Transport.ProducerCompression), kgo.NoCompression()),
		// A publish that cannot be delivered fails in bounded time, so Retry and the poison
		// queue get their turn; the request stays uncommitted until something is published.
		kgo.RecordDeliveryTimeout(max(c.Kafka.Timeout, 1e9)),
	)
	var eos *ExactlyOnce
	if d := c.Transport.Delivery; d.ExactlyOnce() {
		eos = &ExactlyOnce{
			TransactionalID:  TransactionalID(d.TransactionalID, c.ConsumerGroup),
			Timeout:          d.TransactionTimeout,
			Interval:         d.TransactionInterval,
			MaxRequests:      d.TransactionMaxRequests,
			ProducerOptions:  producer[len(opts):],
			Metrics:          NewTransactionMetrics(),
			PoisonTopic:      c.Kafka.Topics().Failed,
			RetryInterval:    c.Retry.InitialInterval,
			MaxRetryInterval: c.Retry.MaxInterval,
		}
		k.Collectors = eos.Metrics.Collectors()
	}
	// Each client is stored in k only once it exists: a nil *FranzPublisher (or subscriber) in
	// the interface would not be nil, and Close would dereference it (a start-up panic).
	subscriber, err := NewFranzSubscriber(FranzSubscriberConfig{
		ClientOptions:      opts,
		ConsumerGroup:      c.ConsumerGroup,
		ResetOffset:        reset,
		Window:             c.Transport.PartitionWindow,
		DrainTimeout:       c.ShutdownTimeout,
		NackResendSleep:    c.Retry.InitialInterval,
		MaxNackResendSleep: c.Retry.MaxInterval,
		Assignment:         assignment,
		Budget:             k.Budget,
		Ordering:           Ordering(c.Transport.Ordering),
		ExactlyOnce:        eos,
	}, logger)
	if err != nil {
		return k, fmt.Errorf("creating the subscriber: %w", err)
	}
	k.Subscriber = subscriber
	if eos != nil {
		k.Publisher = NewFranzTransactionalPublisher(key, eos)
		return k, nil
	}
	publisher, err := NewFranzPublisher(key, producer...)
	if err != nil {
		return k, errors.Join(fmt.Errorf("creating the publisher: %w", err), k.Close())
	}
	k.Publisher = publisher
	return k, nil
}

// TransactionalID is KAFKA_TRANSACTIONAL_ID, or <group>-<host name> when it is empty: a pod's
// host name is its name, so a container restarted in the same pod takes its predecessor's id
// and fences its open transaction at once.
func TransactionalID(configured, group string) string {
	if configured != "" {
		return configured
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "pingpong"
	}
	return group + "-" + host
}

func codec(name string) kgo.CompressionCodec {
	switch name {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}
