package transport

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/budget"
	"github.com/pingpong/pingpong/app/flow"
)

// Read-ahead bounds of the subscriber's fetches. A partition's window (KAFKA_PARTITION_WINDOW,
// 1,024 by default) needs a few kilobytes of read-ahead per partition to stay full. These bounds count
// bytes as written, compressed; what they decode to is bounded by the budget (Budget). A record
// larger than these is still fetched: a broker always returns at least the first batch of a
// partition whole.
const (
	fetchMaxBytes          = 256 << 10
	fetchMaxPartitionBytes = 16 << 10
	pollMaxRecords         = 1000
	fetchMaxWait           = 100 * time.Millisecond
)

// FranzSubscriberConfig configures a FranzSubscriber.
type FranzSubscriberConfig struct {
	// ClientOptions reach the cluster (kafkaclient.Options).
	ClientOptions []kgo.Opt
	ConsumerGroup string
	// ResetOffset is where a new group starts: kgo.NewOffset().AtStart() or .AtEnd().
	ResetOffset kgo.Offset
	// Window is how many messages of one partition may be held at once, counted from the lowest
	// one not yet acked, besides those waiting behind their key (flow.Config.Window).
	Window int
	// NackResendSleep is the pause before a nacked message is delivered again; it doubles with
	// each further nack of the same message, up to MaxNackResendSleep, so that a partition whose
	// answers cannot be published at all (both output topics down) is retried, not hammered.
	NackResendSleep    time.Duration
	MaxNackResendSleep time.Duration
	// DrainTimeout bounds how long Close waits for the messages in flight to be acked.
	DrainTimeout time.Duration
	// Ordering is which messages of a partition wait for each other (KAFKA_ORDERING); the zero
	// value is OrderByKey.
	Ordering Ordering
	// Assignment, when not nil, follows the partitions assigned, revoked and lost.
	Assignment *Assignment
	// Budget bounds the bytes the subscriber holds, decoded: fetched batches once decompressed,
	// and each message in flight together with its answer (MEMORY_BUDGET_BYTES). A batch that
	// decodes to more than the whole budget is not decoded: it is delivered as one message
	// standing for the batch (source.UndecodableBatch) and skipped. Nil means a budget of
	// DefaultBudgetBytes.
	Budget *budget.Budget
	// ExactlyOnce, when not nil, commits answers and offsets in transactions (exactly_once.go);
	// the publisher must be made with NewFranzTransactionalPublisher on the same value.
	ExactlyOnce *ExactlyOnce
}

// Ordering is which messages of a partition are handled one after another, in offset order
// (flow.Ordering). A message waits until the answer of the one before it is queued in the
// producer, not until the broker acknowledged it.
type Ordering = flow.Ordering

const (
	// OrderByKey handles the messages of one record key (the transaction id) one after another
	// and the others concurrently, as Confluent's Parallel Consumer does in its KEY mode. Records
	// without a key wait for nothing.
	OrderByKey = flow.ByKey
	// OrderByPartition handles a partition's messages one after another.
	OrderByPartition = flow.ByPartition
	// OrderNone lets any message of the window run beside any other.
	OrderNone = flow.None
)

// DefaultBudgetBytes is the budget of a subscriber configured without one.
const DefaultBudgetBytes = 32 << 20

// FranzSubscriber is a Watermill subscriber on a franz-go consumer group that lets many messages
// of a partition be in flight at once (the router handles each in its own goroutine) and commits
// a partition's offset only up to the lowest message not yet acked, so at-least-once holds. What
// goes when is decided by app/flow, one engine a partition; this package is its Kafka edge: the
// poll loop (poll.go), rebalances and the drain (rebalance.go), a partition's fetch queue,
// deliveries and acks (partition_worker.go), and records made messages (records.go).
//
// Records are read with watermill-kafka's conventions (headers become metadata, the
// _watermill_message_uuid header the message UUID), so either transport reads what the other
// wrote.
type FranzSubscriber struct {
	cfg    FranzSubscriberConfig
	logger watermill.LoggerAdapter

	mu        sync.Mutex
	closed    bool
	consumers []*consumer
}

// NewFranzSubscriber creates the subscriber; it connects on Subscribe.
func NewFranzSubscriber(cfg FranzSubscriberConfig, logger watermill.LoggerAdapter) (*FranzSubscriber, error) {
	if cfg.ConsumerGroup == "" {
		return nil, errors.New("franz subscriber: a consumer group is required")
	}
	if cfg.Window < 1 {
		cfg.Window = 1
	}
	if cfg.NackResendSleep <= 0 {
		cfg.NackResendSleep = 100 * time.Millisecond
	}
	if cfg.MaxNackResendSleep < cfg.NackResendSleep {
		cfg.MaxNackResendSleep = max(cfg.NackResendSleep, 10*time.Second)
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.Budget == nil {
		cfg.Budget = budget.New(DefaultBudgetBytes)
	}
	if cfg.Ordering == "" {
		cfg.Ordering = OrderByKey
	}
	if cfg.ExactlyOnce != nil {
		cfg.ExactlyOnce.init()
	}
	return &FranzSubscriber{cfg: cfg, logger: logger}, nil
}

// Subscribe joins the consumer group on topic and returns its messages.
func (s *FranzSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("franz subscriber: closed")
	}
	if s.cfg.ExactlyOnce != nil && len(s.consumers) > 0 {
		return nil, errors.New("franz subscriber: exactly-once subscribes to one topic, with one transactional id")
	}
	c := newConsumer(s.cfg, topic, s.logger.With(watermill.LogFields{"topic": topic, "consumer_group": s.cfg.ConsumerGroup}))
	c.watch = newTopicWatch(topic, c.logger, s.cfg.Assignment)
	decompressor := newBudgetedDecompressor(s.cfg.Budget)
	c.decompressor = decompressor
	opts := append(append([]kgo.Opt{}, s.cfg.ClientOptions...),
		// Decoded batches are held against the budget until their records are recycled.
		kgo.WithDecompressor(decompressor),
		// Only committed records are answered: a request written in a transaction that is then
		// aborted never was (franz-go's default, like Sarama's, reads uncommitted records).
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.WithPools(decompressor),
		kgo.WithHooks(c),
		kgo.ConsumerGroup(s.cfg.ConsumerGroup),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(s.cfg.ResetOffset),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		// Bounded read-ahead: the window, not the fetch buffer, keeps the partitions busy, and
		// franz-go's default (50 MB a fetch) would hold a whole backlog in memory.
		kgo.FetchMaxBytes(fetchMaxBytes),
		kgo.FetchMaxPartitionBytes(fetchMaxPartitionBytes),
		// A partition whose worker falls behind is paused, and its resume waits for the fetch
		// in flight, which the broker holds this long when the other partitions have nothing
		// new (franz-go's default is 5 s). The worker still has a batch to go on with for that
		// long.
		kgo.FetchMaxWait(fetchMaxWait),
		// A crashed member's partitions move after 10 s (Sarama's default) rather than
		// franz-go's 45 s.
		kgo.SessionTimeout(10*time.Second),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
	)
	opts = append(opts, c.watch.options()...)
	client, err := c.connect(opts)
	if err != nil {
		return nil, err
	}
	c.client = client
	c.watch.start(c.pollCtx, client)
	s.consumers = append(s.consumers, c)
	if c.session != nil {
		go c.pollInTransactions()
	} else {
		go c.poll()
	}
	go c.resumeWhenRoom()
	// As in watermill-kafka, the subscription ends when its context does: the router cancels
	// it on shutdown and then waits for the channel to close.
	go func() {
		select {
		case <-ctx.Done():
			_ = c.close()
		case <-c.pollCtx.Done():
		}
	}()
	return c.out, nil
}

// connect makes the consumer's client: a transactional session in exactly-once mode, which
// commits with its transactions, or a client that commits what the engines mark.
func (c *consumer) connect(opts []kgo.Opt) (*kgo.Client, error) {
	e := c.cfg.ExactlyOnce
	if e == nil {
		// Only what a partition's engine marks is committed: never past an unacked message.
		return kgo.NewClient(append(opts, kgo.AutoCommitMarks(), kgo.AutoCommitInterval(time.Second))...)
	}
	session, err := kgo.NewGroupTransactSession(append(opts, e.transactionalOptions()...)...)
	if err != nil {
		return nil, err
	}
	c.session = session
	e.setProducer(session.Client())
	return session.Client(), nil
}

// Close stops consuming, waits (up to DrainTimeout) for the messages in flight to be acked,
// commits their offsets and leaves the group. The router closes its subscribers as soon as it
// starts closing, while handlers still run, so this drain is what lets a graceful shutdown
// commit everything it answered.
func (s *FranzSubscriber) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	for _, c := range s.consumers {
		err = errors.Join(err, c.close())
	}
	return err
}
