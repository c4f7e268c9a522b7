package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/handlers"
)

// The systems under comparison. "service" is the pingpong binary itself, and
// "service-exactly-once" the same binary with KAFKA_DELIVERY=exactly-once
// ("service-exactly-once@20ms" with KAFKA_TRANSACTION_INTERVAL=20ms); the other two run in a
// child process of this program (runChild), so that each has its own memory to measure.
const (
	systemService     = "service"
	systemExactlyOnce = "service-exactly-once"
	systemWatermill   = "watermill-kafka-defaults"
	systemCeiling     = "franz-go-loop"
)

// serviceEnv is the environment the pingpong binary runs system with; false if system is not
// the binary (or not a system at all).
func serviceEnv(system string) ([]string, bool) {
	if system == systemService {
		return nil, true
	}
	name, interval, hasInterval := strings.Cut(system, "@")
	if name != systemExactlyOnce {
		return nil, false
	}
	env := []string{"KAFKA_DELIVERY=exactly-once"}
	if hasInterval {
		if d, err := time.ParseDuration(interval); err != nil || d <= 0 {
			return nil, false
		}
		env = append(env, "KAFKA_TRANSACTION_INTERVAL="+interval)
	}
	return env, true
}

// exactlyOnce tells the systems whose answers are read as read_committed: an answer counts
// once the transaction that wrote it has committed.
func exactlyOnce(system string) bool {
	name, _, _ := strings.Cut(system, "@")
	return name == systemExactlyOnce
}

// knownSystem tells whether the bench can run system.
func knownSystem(system string) bool {
	_, service := serviceEnv(system)
	return service || system == systemWatermill || system == systemCeiling
}

// runChild runs a comparison system until SIGTERM: brokers, topic prefix and group from the
// environment, as the service reads them.
func runChild(system string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	brokers := []string{os.Getenv("KAFKA_BROKERS")}
	prefix, group := os.Getenv("TOPIC_PREFIX"), os.Getenv("KAFKA_CONSUMER_GROUP")
	switch system {
	case systemWatermill:
		return watermillDefaults(ctx, brokers, prefix, group)
	case systemCeiling:
		return franzLoop(ctx, brokers, prefix, group)
	}
	return fmt.Errorf("unknown system %q", system)
}

// answer is the contract without middleware: the answer and its topic.
func answer(prefix string, body []byte) (topic string, value []byte, key string) {
	req, err := handlers.Decode(body, handlers.DefaultMaxRequestBytes)
	switch {
	case err != nil:
		rejection := err.(*handlers.Rejection)
		return prefix + ".failed", rejection.Answer, handlers.TransactionIDKey(rejection.TransactionID)
	case req.Message != "ping":
		return prefix + ".failed", handlers.NotPingAnswer(req.TransactionID), req.Key()
	default:
		return prefix + ".succeeded", handlers.PongAnswer(req.TransactionID), req.Key()
	}
}

// watermillDefaults is the starting point: a Watermill router with watermill-kafka's default
// configuration and one handler that publishes each answer with the synchronous publisher.
func watermillDefaults(ctx context.Context, brokers []string, prefix, group string) error {
	logger := watermill.NopLogger{}
	subConfig := kafka.DefaultSaramaSubscriberConfig()
	subConfig.Consumer.Offsets.Initial = sarama.OffsetOldest // the backlog is already there
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers: brokers, Unmarshaler: kafka.DefaultMarshaler{}, ConsumerGroup: group, OverwriteSaramaConfig: subConfig,
	}, logger)
	if err != nil {
		return err
	}
	// The key is the transaction id, as the service writes it, so the answers can be matched.
	marshaler := kafka.NewWithPartitioningMarshaler(func(_ string, msg *message.Message) (string, error) {
		return msg.Metadata.Get(handlers.TransactionIDMetadataKey), nil
	})
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{Brokers: brokers, Marshaler: marshaler}, logger)
	if err != nil {
		return err
	}
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return err
	}
	router.AddConsumerHandler("pingpong", prefix+".requested", sub, func(msg *message.Message) error {
		topic, value, key := answer(prefix, msg.Payload)
		return pub.Publish(topic, keyed(message.NewMessage(watermill.NewUUID(), value), key))
	})
	return router.Run(ctx)
}

// franzLoop is the practical ceiling: fetch a batch, answer it, wait for the acknowledgements,
// commit, repeat.
func franzLoop(ctx context.Context, brokers []string, prefix, group string) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(prefix+".requested"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.ProducerLinger(0),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fetches.EachRecord(func(r *kgo.Record) {
			topic, value, key := answer(prefix, r.Value)
			rec := &kgo.Record{Topic: topic, Value: value}
			if key != "" {
				rec.Key = []byte(key)
			}
			cl.Produce(ctx, rec, nil)
		})
		if err := cl.Flush(ctx); err != nil {
			return err
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			return err
		}
	}
}

func keyed(msg *message.Message, key string) *message.Message {
	msg.Metadata.Set(handlers.TransactionIDMetadataKey, key)
	return msg
}
