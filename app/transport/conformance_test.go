package transport_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/transport"
	"github.com/pingpong/pingpong/handlers"
)

// Watermill's own Pub/Sub test suite, the check every Watermill Pub/Sub runs on itself, against
// both transports on an in-process broker. The suite's messages carry no transaction id, so with
// the service's key (the transaction id) their records have no key and no order; the ordered
// runs give every record one key, as watermill-kafka's own ordered run does with its
// partitioning marshaler.
//
// Features switched off, and why:
//   - ExactlyOnceDelivery: delivery is at least once (a rebalance or restart answers again).
//   - NewSubscriberReceivesOldMessages: every subscriber is a member of a consumer group, and a
//     new member of a group goes on from the group's commits; only a new group starts over.
//   - GuaranteedOrder in the unordered runs: records without a key are spread over the
//     partitions, and KAFKA_ORDERING=key lets them run side by side.
//   - RestartServiceCommand (TestReconnect): kfake runs in the test's process; reconnection is
//     tested by the reliability package, which restarts its broker.
//
// ForceShort: the suite's smaller counts (100 messages rather than 5,000 to 10,000), so that
// it stays a few seconds of go test ./...

var conformanceFeatures = tests.Features{
	ConsumerGroups:      true,
	ExactlyOnceDelivery: false,
	GuaranteedOrder:     false,
	Persistent:          true,
	ForceShort:          true,
}

func orderedFeatures() tests.Features {
	f := conformanceFeatures
	f.GuaranteedOrder = true
	return f
}

// sameKey gives every record one key: one partition, one ordering key.
func sameKey(*message.Message) string { return "one" }

var transactionKey = transport.KeyFromMetadata(handlers.TransactionIDMetadataKey)

func TestFranzPassesWatermillsPubSubSuite(t *testing.T) {
	brokers := conformanceBroker(t)
	tests.TestPubSub(t, conformanceFeatures, franzPubSub(brokers, transport.OrderByKey, transactionKey), franzGroupPubSub(brokers, transport.OrderByKey, transactionKey))
}

func TestFranzPassesWatermillsPubSubSuiteInOrder(t *testing.T) {
	for _, ordering := range []transport.Ordering{transport.OrderByKey, transport.OrderByPartition} {
		t.Run(string(ordering), func(t *testing.T) {
			brokers := conformanceBroker(t)
			tests.TestPubSub(t, orderedFeatures(), franzPubSub(brokers, ordering, sameKey), franzGroupPubSub(brokers, ordering, sameKey))
		})
	}
}

func TestWatermillKafkaPassesWatermillsPubSubSuite(t *testing.T) {
	brokers := conformanceBroker(t)
	tests.TestPubSub(t, conformanceFeatures, saramaPubSub(brokers, transactionKey), saramaGroupPubSub(brokers, transactionKey))
}

func TestWatermillKafkaPassesWatermillsPubSubSuiteInOrder(t *testing.T) {
	brokers := conformanceBroker(t)
	tests.TestPubSub(t, orderedFeatures(), saramaPubSub(brokers, sameKey), saramaGroupPubSub(brokers, sameKey))
}

// conformanceBroker is an in-process broker that creates the suite's topics as they are used.
func conformanceBroker(t *testing.T) []string {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	return cluster.ListenAddrs()
}

// suiteGroup is one consumer group per test of the suite: the suite's subscribers of one test
// share it (TestContinueAfterSubscribeClose reads on where the last one committed), and the
// tests, run in parallel, do not rebalance each other.
func suiteGroup(t *testing.T) string {
	name := t.Name()
	if i := strings.Index(name, "/Test"); i >= 0 {
		name = name[i+1:]
	}
	return "conformance-" + strings.NewReplacer("/", "-", " ", "-").Replace(name)
}

func franzPubSub(brokers []string, ordering transport.Ordering, key transport.RecordKey) tests.PubSubConstructor {
	group := franzGroupPubSub(brokers, ordering, key)
	return func(t *testing.T) (message.Publisher, message.Subscriber) { return group(t, suiteGroup(t)) }
}

func franzGroupPubSub(brokers []string, ordering transport.Ordering, key transport.RecordKey) tests.ConsumerGroupPubSubConstructor {
	return func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		t.Helper()
		pub, err := transport.NewFranzPublisher(key, kgo.SeedBrokers(brokers...), kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		sub, err := transport.NewFranzSubscriber(transport.FranzSubscriberConfig{
			ClientOptions:      []kgo.Opt{kgo.SeedBrokers(brokers...)},
			ConsumerGroup:      group,
			ResetOffset:        kgo.NewOffset().AtStart(),
			Window:             64,
			NackResendSleep:    10 * time.Millisecond,
			MaxNackResendSleep: 50 * time.Millisecond,
			DrainTimeout:       time.Second,
			Ordering:           ordering,
		}, watermill.NopLogger{})
		if err != nil {
			t.Fatal(err)
		}
		return pub, sub
	}
}

func saramaPubSub(brokers []string, key transport.RecordKey) tests.PubSubConstructor {
	group := saramaGroupPubSub(brokers, key)
	return func(t *testing.T) (message.Publisher, message.Subscriber) { return group(t, suiteGroup(t)) }
}

func saramaGroupPubSub(brokers []string, key transport.RecordKey) tests.ConsumerGroupPubSubConstructor {
	return func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		t.Helper()
		fs := pflag.NewFlagSet("pingpong", pflag.ContinueOnError)
		c := config.ServiceFlags(fs)
		if err := fs.Parse(nil); err != nil {
			t.Fatal(err)
		}
		c.Kafka.Brokers = strings.Join(brokers, ",")
		c.ConsumerGroup = group
		pub, err := transport.SaramaPublisher(*c, watermill.NopLogger{}, key)
		if err != nil {
			t.Fatal(err)
		}
		return pub, &groupPerTopic{group: group, subscribe: func(group string) (message.Subscriber, error) {
			c := *c
			c.ConsumerGroup = group
			return transport.SaramaSubscriber(c, watermill.NopLogger{}, nil)
		}}
	}
}

// groupPerTopic subscribes each topic in a group of its own, as the service does (one group, one
// topic). TestTopic subscribes one subscriber to two topics and reads the first topic's channel
// before the second's: in one group, watermill-kafka's member of the second topic cannot end its
// session for the rebalance while its message waits on the unread channel, so the group's
// rebalance, and the first topic, wait for that member's session to time out. A broker's initial
// rebalance delay (group.initial.rebalance.delay.ms) usually hides this; kfake has none. It also
// hides watermill-kafka's SubscribeInitialize, which needs topic details the service never
// gives (its topics are made by pingpong topics create; here, by the broker).
type groupPerTopic struct {
	group     string
	subscribe func(group string) (message.Subscriber, error)
	mu        sync.Mutex
	subs      []message.Subscriber
}

func (g *groupPerTopic) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	sub, err := g.subscribe(g.group + "." + topic)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.subs = append(g.subs, sub)
	g.mu.Unlock()
	return sub.Subscribe(ctx, topic)
}

func (g *groupPerTopic) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var err error
	for _, sub := range g.subs {
		err = errors.Join(err, sub.Close())
	}
	return err
}
