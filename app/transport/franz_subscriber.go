package transport

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/middleware"
)

// Read-ahead bounds of the subscriber's fetches. The window (64 messages of a partition in
// flight) needs a few kilobytes of read-ahead per partition to stay full, and every fetched
// byte is decoded at once into records, several times its size when the batch was compressed:
// each partition holds up to two fetches (see queuedBatches), so 16 KB a partition keeps 16
// partitions within a few MB (docs/performance.md). A record larger than these is still
// fetched: a broker always returns at least the first batch of a partition whole.
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
	// Window is how many messages of one partition may be in flight at once, counted from the
	// lowest one not yet acked; 1 keeps each partition in strict order.
	Window int
	// NackResendSleep is the pause before a nacked message is delivered again; it doubles with
	// each further nack of the same message, up to MaxNackResendSleep, so that a partition whose
	// answers cannot be published at all (both output topics down) is retried, not hammered.
	NackResendSleep    time.Duration
	MaxNackResendSleep time.Duration
	// DrainTimeout bounds how long Close waits for the messages in flight to be acked.
	DrainTimeout time.Duration
	// Assignment, when not nil, follows the partitions assigned, revoked and lost.
	Assignment *Assignment
}

// FranzSubscriber is a Watermill subscriber on a franz-go consumer group that lets many messages
// of a partition be in flight at once (the router handles each in its own goroutine) and commits
// a partition's offset only up to the lowest message not yet acked, so at-least-once holds.
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
	return &FranzSubscriber{cfg: cfg, logger: logger}, nil
}

// Subscribe joins the consumer group on topic and returns its messages.
func (s *FranzSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("franz subscriber: closed")
	}
	c := newConsumer(s.cfg, topic, s.logger.With(watermill.LogFields{"topic": topic, "consumer_group": s.cfg.ConsumerGroup}))
	opts := append(append([]kgo.Opt{}, s.cfg.ClientOptions...),
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
		// Only what a partition's acker marks is committed: never past an unacked message.
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Second),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
	)
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	c.client = client
	s.consumers = append(s.consumers, c)
	go c.poll()
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

// consumer is one Subscribe: a group member reading one topic.
type consumer struct {
	cfg    FranzSubscriberConfig
	topic  string
	logger watermill.LoggerAdapter
	client *kgo.Client
	out    chan *message.Message

	// stopPolling ends the poll loop; hardStop cancels the messages' contexts once the drain
	// timeout has passed.
	stopPolling context.CancelFunc
	pollCtx     context.Context
	hardStop    context.CancelFunc
	msgCtx      context.Context
	pollDone    chan struct{}
	closeOnce   sync.Once
	closeErr    error

	// senders counts the goroutines that may send on out (each partition's dispatcher, and its
	// acker, which resends on a nack); out is closed only once they are all gone.
	senders sync.WaitGroup

	mu         sync.Mutex
	partitions map[int32]*partitionWorker
}

func newConsumer(cfg FranzSubscriberConfig, topic string, logger watermill.LoggerAdapter) *consumer {
	c := &consumer{
		cfg: cfg, topic: topic, logger: logger,
		out:        make(chan *message.Message),
		pollDone:   make(chan struct{}),
		partitions: map[int32]*partitionWorker{},
	}
	c.pollCtx, c.stopPolling = context.WithCancel(context.Background())
	c.msgCtx, c.hardStop = context.WithCancel(context.Background())
	return c
}

func (c *consumer) poll() {
	defer close(c.pollDone)
	for {
		fetches := c.client.PollRecords(c.pollCtx, pollMaxRecords)
		if c.pollCtx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.Canceled) {
				c.logger.Error("Fetch failed; the client retries", err, watermill.LogFields{"kafka_partition": partition})
			}
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			// Never wait here for one partition's worker: the others would run dry meanwhile.
			c.worker(p.Partition).enqueue(p.Records)
		})
	}
}

// worker returns the partition's worker, starting one if the partition is new.
func (c *consumer) worker(partition int32) *partitionWorker {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.partitions[partition]
	if !ok {
		w = newPartitionWorker(c, partition)
		c.partitions[partition] = w
		c.senders.Add(2)
		go w.run()
		go w.ackInOrder()
	}
	return w
}

func (c *consumer) assigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	_, generation := cl.GroupMetadata()
	c.cfg.Assignment.Assigned(generation, assigned)
	c.logger.Info("Partitions assigned", watermill.LogFields{"partitions": assigned[c.topic]})
}

// revoked stops the revoked partitions, lets their messages in flight finish and commits them,
// so the next owner starts after what this member answered.
func (c *consumer) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	workers := c.detach(revoked[c.topic])
	_, generation := cl.GroupMetadata()
	c.cfg.Assignment.Revoked(generation, revoked)
	c.logger.Info("Partitions revoked: finishing the messages in flight", watermill.LogFields{"partitions": revoked[c.topic]})
	c.drain(workers, c.cfg.DrainTimeout)
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		c.logger.Error("Committing the revoked partitions failed; their next owner may answer some requests again", err, nil)
	}
}

// lost stops the lost partitions without committing: another member owns them already.
func (c *consumer) lost(_ context.Context, cl *kgo.Client, lost map[string][]int32) {
	c.detach(lost[c.topic])
	_, generation := cl.GroupMetadata()
	c.cfg.Assignment.Revoked(generation, lost)
	c.logger.Info("Partitions lost: their next owner answers what was in flight", watermill.LogFields{"partitions": lost[c.topic]})
}

func (c *consumer) detach(partitions []int32) []*partitionWorker {
	c.mu.Lock()
	defer c.mu.Unlock()
	var workers []*partitionWorker
	for _, p := range partitions {
		if w, ok := c.partitions[p]; ok {
			close(w.stop)
			w.resume() // a pause outlives the assignment: the next owner of p here must fetch it
			delete(c.partitions, p)
			workers = append(workers, w)
		}
	}
	return workers
}

// drain waits until the workers' messages in flight are acked or the timeout passes.
func (c *consumer) drain(workers []*partitionWorker, timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		for _, w := range workers {
			w.inFlight.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		c.logger.Info("Gave up waiting for messages in flight; they will be delivered again", watermill.LogFields{"timeout": timeout})
	}
}

// close ends the subscription once: stop polling, drain, commit, leave the group, close the
// channel.
func (c *consumer) close() error {
	c.closeOnce.Do(func() { c.closeErr = c.shutdown() })
	return c.closeErr
}

func (c *consumer) shutdown() error {
	c.stopPolling()
	<-c.pollDone
	c.mu.Lock()
	all := make([]int32, 0, len(c.partitions))
	for p := range c.partitions {
		all = append(all, p)
	}
	c.mu.Unlock()
	c.drain(c.detach(all), c.cfg.DrainTimeout)
	c.hardStop() // what is still in flight gives up: it was not acked, so it is delivered again
	c.senders.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.client.CommitMarkedOffsets(ctx)
	c.client.Close() // leaves the group
	close(c.out)
	return err
}

// partitionWorker delivers one partition's records in offset order, with at most Window of them
// in flight, and commits them in offset order as they are acked.
//
// The window counts from the lowest message not yet acked: a message holds its slot until it
// and every message before it are acked. So a message that cannot be answered (its publishes
// failing, its nacks redelivered) stalls its partition after Window more messages, instead of
// letting the uncommitted stretch behind it grow without bound, and a restart answers at most
// Window messages of a partition again.
type partitionWorker struct {
	consumer  *consumer
	partition int32
	stop      chan struct{} // closed when the partition is revoked, lost or the consumer closes

	// queue holds the partition's fetched records not yet dispatched; queued signals that it is
	// not empty. The poll loop never waits for a worker: with queuedBatches queued it pauses
	// the partition's fetches instead, and the worker resumes them as it takes the batches.
	queueMu sync.Mutex
	queue   [][]*kgo.Record
	paused  bool
	queued  chan struct{}

	slots chan struct{} // the window: a message holds a slot until it can be committed
	// delivered queues the messages in flight, in offset order, for the acker; the dispatcher
	// closes it when it stops.
	delivered chan deliveredMessage
	inFlight  sync.WaitGroup
	// mark is the acker's argument to MarkCommitOffsets, kept to save two maps per message.
	mark map[string]map[int32]kgo.EpochOffset
}

func newPartitionWorker(c *consumer, partition int32) *partitionWorker {
	return &partitionWorker{
		consumer:  c,
		partition: partition,
		stop:      make(chan struct{}),
		queued:    make(chan struct{}, 1),
		slots:     make(chan struct{}, c.cfg.Window),
		delivered: make(chan deliveredMessage, c.cfg.Window),
		mark:      map[string]map[int32]kgo.EpochOffset{c.topic: {partition: {}}},
	}
}

// deliveredMessage is a message in flight and what its acker needs of its record: the position
// to commit once it is acked, and the context the subscriber gave it, for a redelivery. Holding
// the record itself would keep its whole fetched batch (franz-go decodes a batch's records into
// one slice, over one buffer) in memory for as long as the message is in flight.
type deliveredMessage struct {
	msg    *message.Message
	offset kgo.EpochOffset
	ctx    context.Context
}

// queuedBatches is how many fetched batches a partition may have waiting, besides the one its
// worker is dispatching, before its fetches pause: one, so that the worker goes on while the
// next fetch is on its way, and memory stays at about two fetches a partition.
const queuedBatches = 1

// enqueue hands the worker a fetched batch, at once; with queuedBatches waiting, it pauses the
// partition's fetches until the worker catches up. A pause made while records of the partition
// were buffered in the client drops them there, and they are fetched again on resume.
func (w *partitionWorker) enqueue(batch []*kgo.Record) {
	w.queueMu.Lock()
	defer w.queueMu.Unlock()
	w.queue = append(w.queue, batch)
	if len(w.queue) >= queuedBatches && !w.paused {
		w.paused = true
		w.consumer.client.PauseFetchPartitions(w.topicPartition())
	}
	select {
	case w.queued <- struct{}{}:
	default: // the worker has a signal waiting already
	}
}

// next takes the oldest queued batch, resuming the partition's fetches once there is room.
func (w *partitionWorker) next() []*kgo.Record {
	w.queueMu.Lock()
	defer w.queueMu.Unlock()
	if len(w.queue) == 0 {
		return nil
	}
	batch := w.queue[0]
	w.queue[0] = nil
	w.queue = w.queue[1:]
	if w.paused && len(w.queue) < queuedBatches {
		w.paused = false
		w.consumer.client.ResumeFetchPartitions(w.topicPartition())
	}
	return batch
}

// resume lifts the partition's pause, if any.
func (w *partitionWorker) resume() {
	w.queueMu.Lock()
	defer w.queueMu.Unlock()
	if w.paused {
		w.paused = false
		w.consumer.client.ResumeFetchPartitions(w.topicPartition())
	}
}

func (w *partitionWorker) topicPartition() map[string][]int32 {
	return map[string][]int32{w.consumer.topic: {w.partition}}
}

// run dispatches the partition's records until the partition stops.
func (w *partitionWorker) run() {
	defer w.consumer.senders.Done()
	defer close(w.delivered)
	for {
		select {
		case <-w.stop:
			return
		case <-w.queued:
			for batch := w.next(); batch != nil; batch = w.next() {
				for _, rec := range batch {
					if !w.dispatch(rec) {
						return
					}
				}

			}
		}
	}
}

// dispatch delivers rec once a slot of the window is free; false when the partition stopped.
func (w *partitionWorker) dispatch(rec *kgo.Record) bool {
	select {
	case w.slots <- struct{}{}:
	case <-w.stop:
		return false
	}
	msg := w.consumer.toMessage(rec)
	// The context is the one the subscriber gave the message (its source), kept for a
	// redelivery: the router and the middleware replace the message's own.
	d := deliveredMessage{msg: msg, offset: kgo.EpochOffset{Epoch: rec.LeaderEpoch, Offset: rec.Offset}, ctx: msg.Context()}
	w.inFlight.Add(1)
	if !w.deliver(msg) {
		w.inFlight.Done()
		return false
	}
	w.delivered <- d // never blocks: the queue holds a window, and d holds a slot
	return true
}

func (w *partitionWorker) deliver(msg *message.Message) bool {
	select {
	case <-w.stop:
		return false // stopping: prefer not to start another message
	default:
	}
	select {
	case w.consumer.out <- msg:
		return true
	case <-w.stop:
		return false
	}
}

// ackInOrder waits for the messages in flight in offset order and marks each acked one's offset
// for the next commit. Waiting in order costs one goroutine a partition instead of one a message,
// and the offset to commit is simply the one after the message just acked. Once a message is
// given up (see awaitAck), nothing after it is marked: it was not answered, so it and everything
// after it are delivered again after the restart or rebalance.
func (w *partitionWorker) ackInOrder() {
	defer w.consumer.senders.Done()
	committing := true
	for d := range w.delivered {
		acked := w.awaitAck(d)
		committing = committing && acked
		if committing {
			next := d.offset
			next.Offset++ // a committed offset is the next one to read
			w.mark[w.consumer.topic][w.partition] = next
			w.consumer.client.MarkCommitOffsets(w.mark)
		}
		<-w.slots
		w.inFlight.Done()
	}
}

// awaitAck waits for the message's ack and delivers it again after each nack, with a growing
// pause. False if it gives up: the partition stopped before a redelivery, or the drain timed out.
func (w *partitionWorker) awaitAck(d deliveredMessage) bool {
	msg := d.msg
	// An ack wins over a drain that timed out meanwhile (select would pick either), and under
	// load the messages behind a slow one are often acked already.
	select {
	case <-msg.Acked():
		return true
	default:
	}
	resendSleep := w.consumer.cfg.NackResendSleep
	for {
		select {
		case <-msg.Acked():
			return true
		case <-msg.Nacked():
			select {
			case <-time.After(resendSleep):
				resendSleep = min(2*resendSleep, w.consumer.cfg.MaxNackResendSleep)
			case <-w.stop:
				return false
			}
			msg = msg.Copy()
			msg.SetContext(d.ctx)
			if !w.deliver(msg) {
				return false
			}
		case <-w.consumer.msgCtx.Done():
			return false
		}
	}
}

type franzSourceKey struct{}

func (c *consumer) messageContext(rec *kgo.Record) context.Context {
	src := middleware.Source{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp, Key: bytes.Clone(rec.Key)}
	return context.WithValue(c.msgCtx, franzSourceKey{}, src)
}

// toMessage reads a record with watermill-kafka's DefaultMarshaler conventions. The value is
// copied: a record's value points into its whole fetched batch, which would otherwise stay in
// memory for as long as any of its messages is in flight.
func (c *consumer) toMessage(rec *kgo.Record) *message.Message {
	var uuid string
	metadata := make(message.Metadata, len(rec.Headers))
	for _, h := range rec.Headers {
		if h.Key == uuidHeader {
			uuid = string(h.Value)
			continue
		}
		metadata.Set(h.Key, string(h.Value))
	}
	msg := message.NewMessage(uuid, bytes.Clone(rec.Value))
	msg.Metadata = metadata
	msg.SetContext(c.messageContext(rec))
	return msg
}

// FranzSource tells where a FranzSubscriber's message came from.
func FranzSource(msg *message.Message) middleware.Source {
	if src, ok := msg.Context().Value(franzSourceKey{}).(middleware.Source); ok {
		return src
	}
	return middleware.Source{Topic: message.SubscribeTopicFromCtx(msg.Context())}
}
