package transport

import (
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/budget"
	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/kafkaclient"
	"github.com/pingpong/pingpong/middleware"
)

// Kafka is the router's connection to Kafka.
type Kafka struct {
	Subscriber message.Subscriber
	Publisher  message.Publisher
	// Source tells where the subscriber's messages came from.
	Source middleware.SourceFunc
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
// rebalances are reported to assignment (nil for none).
func New(c config.Service, logger watermill.LoggerAdapter, assignment *Assignment) (Kafka, error) {
	if c.Transport.Name == config.TransportWatermill {
		return newWatermillKafka(c, logger, assignment)
	}
	return newFranz(c, logger, assignment)
}

func newWatermillKafka(c config.Service, logger watermill.LoggerAdapter, assignment *Assignment) (k Kafka, err error) {
	k.Source = SaramaSource
	if k.Subscriber, err = SaramaSubscriber(c, logger, assignment); err != nil {
		return k, fmt.Errorf("connecting the subscriber to %s: %w", c.Kafka.Brokers, err)
	}
	if k.Publisher, err = SaramaPublisher(c, logger); err != nil {
		return k, errors.Join(fmt.Errorf("connecting the publisher to %s: %w", c.Kafka.Brokers, err), k.Close())
	}
	return k, nil
}

func newFranz(c config.Service, logger watermill.LoggerAdapter, assignment *Assignment) (k Kafka, err error) {
	k.Source = FranzSource
	opts, err := kafkaclient.Options(c.Kafka)
	if err != nil {
		return k, err
	}
	reset := kgo.NewOffset().AtStart()
	if c.ConsumerOffset == config.OffsetLatest {
		reset = kgo.NewOffset().AtEnd()
	}
	if k.Subscriber, err = NewFranzSubscriber(FranzSubscriberConfig{
		ClientOptions:      opts,
		ConsumerGroup:      c.ConsumerGroup,
		ResetOffset:        reset,
		Window:             c.Transport.PartitionWindow,
		DrainTimeout:       c.ShutdownTimeout,
		NackResendSleep:    c.Retry.InitialInterval,
		MaxNackResendSleep: c.Retry.MaxInterval,
		Assignment:         assignment,
		Budget:             budget.New(int64(c.Transport.MemoryBudgetBytes)),
	}, logger); err != nil {
		return k, err
	}
	producer := append(append([]kgo.Opt{}, opts...),
		kgo.RequiredAcks(kgo.AllISRAcks()), // the default, said out loud: an answer is durable before its request is committed
		kgo.ProducerBatchMaxBytes(int32(c.Transport.ProducerBatchBytes)),
		kgo.ProducerBatchCompression(codec(c.Transport.ProducerCompression), kgo.NoCompression()),
		// A publish that cannot be delivered fails in bounded time, so Retry and the poison
		// queue get their turn; the request stays uncommitted until something is published.
		kgo.RecordDeliveryTimeout(max(c.Kafka.Timeout, 1e9)),
	)
	if k.Publisher, err = NewFranzPublisher(c.Transport.ProducerLinger, producer...); err != nil {
		return k, errors.Join(fmt.Errorf("creating the publisher: %w", err), k.Close())
	}
	return k, nil
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
