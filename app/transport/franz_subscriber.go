package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/budget"
	"github.com/pingpong/pingpong/source"
)

// Read-ahead bounds of the subscriber's fetches. The window (64 messages of a partition in
// flight) needs a few kilobytes of read-ahead per partition to stay full. These bounds count
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
}

// Ordering is which messages of a partition are handled one after another, in offset order.
type Ordering string

const (
	// OrderByKey handles the messages of one record key (the transaction id) one after another
	// and the others concurrently, as Confluent's Parallel Consumer does in its KEY mode. Records
	// without a key wait for nothing.
	OrderByKey Ordering = "key"
	// OrderByPartition handles a partition's messages one after another.
	OrderByPartition Ordering = "partition"
	// OrderNone lets any message of the window run beside any other.
	OrderNone Ordering = "none"
)

// DefaultBudgetBytes is the budget of a subscriber configured without one.
const DefaultBudgetBytes = 32 << 20

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
	if cfg.Budget == nil {
		cfg.Budget = budget.New(DefaultBudgetBytes)
	}
	if cfg.Ordering == "" {
		cfg.Ordering = OrderByKey
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
		// Only what a partition's acker marks is committed: never past an unacked message.
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Second),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
	)
	opts = append(opts, c.watch.options()...)
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	c.client = client
	c.watch.start(c.pollCtx, client)
	s.consumers = append(s.consumers, c)
	go c.poll()
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

	budget       *budget.Budget
	decompressor *budgetedDecompressor
	// roomWanted wakes resumeWhenRoom: a partition waits for room in the budget.
	roomWanted chan struct{}
	// polled are the records the last poll took from franz-go's buffer (recycleStripped).
	polled []*kgo.Record

	// watch follows the topic's deletion, recreation and new partitions (topicwatch.go).
	watch *topicWatch

	// fetchErrors bounds the fetch errors' log lines (fetchFailed; the poll loop's alone).
	fetchErrors map[int32]fetchErrorLog

	mu         sync.Mutex
	partitions map[int32]*partitionWorker
}

func newConsumer(cfg FranzSubscriberConfig, topic string, logger watermill.LoggerAdapter) *consumer {
	c := &consumer{
		cfg: cfg, topic: topic, logger: logger, budget: cfg.Budget,
		roomWanted:  make(chan struct{}, 1),
		fetchErrors: map[int32]fetchErrorLog{},
		out:         make(chan *message.Message),
		pollDone:    make(chan struct{}),
		partitions:  map[int32]*partitionWorker{},
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
			for _, r := range c.polled {
				c.recycle(r)
			}
			return
		}
		c.recycleStripped(fetches)
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			// Never wait here for one partition's worker: the others would run dry meanwhile.
			if len(p.Records) > 0 {
				c.worker(p.Partition).enqueue(fetched{records: p.Records})
			}
			if p.Err != nil {
				c.fetchFailed(p.Partition, p.Err)
			}
		})
	}
}

// fetchFailed handles a partition's fetch error. A batch that cannot be decoded within the budget
// stops its partition in franz-go until it is skipped: it is handed to the partition's worker as
// one message, after the records before it, and the partition goes on after it.
func (c *consumer) fetchFailed(partition int32, err error) {
	var full *budgetFullError
	if errors.As(err, &full) {
		c.worker(partition).waitForRoom(full.need)
		return
	}
	if errors.Is(err, errUndecodable) {
		c.worker(partition).skipUndecodable()
		return
	}
	if errors.Is(err, context.Canceled) || c.watch.fetchFailed(err) {
		return
	}
	// franz-go fetches the partition again after its backoff, and the same error may come back
	// at every fetch: logged the first time, then at most every fetchErrorLogEvery with a count.
	// Only the poll loop calls this, so c.fetchErrors needs no lock.
	last := c.fetchErrors[partition]
	last.count++
	if !last.at.IsZero() && time.Since(last.at) < fetchErrorLogEvery {
		c.fetchErrors[partition] = last
		return
	}
	c.logger.Error("Fetch failed; franz-go fetches the partition again after its backoff", err,
		watermill.LogFields{"kafka_partition": partition, "failures_since_last_line": last.count})
	c.fetchErrors[partition] = fetchErrorLog{at: time.Now()}
}

// fetchErrorLogEvery bounds how often a partition's fetch errors are logged.
const fetchErrorLogEvery = 30 * time.Second

// fetchErrorLog is when a partition's fetch error was last logged, and how many came since.
type fetchErrorLog struct {
	at    time.Time
	count int
}

// resumeWhenRoom resumes the partitions that wait for room in the budget as room comes back.
func (c *consumer) resumeWhenRoom() {
	for {
		select {
		case <-c.roomWanted:
		case <-c.pollCtx.Done():
			return
		}
		for {
			released := c.budget.Released()
			c.mu.Lock()
			waiting := false
			for _, w := range c.partitions {
				waiting = w.roomFound() || waiting
			}
			c.mu.Unlock()
			if !waiting {
				break
			}
			select {
			case <-released:
			case <-time.After(gcNudge):
				// Room held by a decoded batch that franz-go dropped on an error path without
				// putting it back comes back by a cleanup once the collector frees it, and a
				// process that waits allocates little.
				runtime.GC()
			case <-c.pollCtx.Done():
				return
			}
		}
	}
}

// gcNudge is how long partitions wait for room before the subscriber asks for a collection.
const gcNudge = time.Second

// undecodableWhy is the reason given for an undecodable batch of codec.
func (c *consumer) undecodableWhy(codec kgo.CompressionCodecType, err error) string {
	names := map[kgo.CompressionCodecType]string{kgo.CodecGzip: "gzip", kgo.CodecSnappy: "snappy", kgo.CodecLz4: "lz4", kgo.CodecZstd: "zstd"}
	name, known := names[codec]
	if !known {
		return fmt.Sprintf("its compression codec %d is unknown", codec)
	}
	return fmt.Sprintf("%s: %v", name, err)
}

// OnGroupManageError implements kgo.HookGroupManageError: the client left its group session (or
// could not join one) and backs off before it tries again.
func (c *consumer) OnGroupManageError(err error) {
	if !errors.Is(err, context.Canceled) {
		c.cfg.Assignment.GroupFailed()
		c.logger.Error("Not in the consumer group; joining again", err, nil)
	}
}

// OnFetchRecordBuffered implements kgo.HookFetchRecordBuffered. A record of an uncompressed batch
// holds its bytes in the fetch response, which no decompressor counted: it is counted from here
// until it is recycled.
func (c *consumer) OnFetchRecordBuffered(r *kgo.Record) {
	if r.Attrs.CompressionType() == 0 {
		c.budget.Force(recordBytes(r))
	}
}

// OnFetchRecordUnbuffered implements kgo.HookFetchRecordUnbuffered: a record franz-go drops
// without returning it (its partition revoked or skipped) is recycled here. The records a poll
// takes are kept for recycleStripped: franz-go says "polled" of the records of a paused partition
// too, and then strips them from what the poll returns. It calls this on the polling goroutine
// for those, so c.polled needs no lock.
func (c *consumer) OnFetchRecordUnbuffered(r *kgo.Record, polled bool) {
	if polled {
		c.polled = append(c.polled, r)
		return
	}
	c.recycle(r)
}

// recycleStripped recycles the records a poll took from franz-go's buffer but did not return:
// those of partitions paused meanwhile, which franz-go drops and fetches again on resume.
func (c *consumer) recycleStripped(fetches kgo.Fetches) {
	if returned := fetches.NumRecords(); returned != len(c.polled) {
		kept := make(map[*kgo.Record]struct{}, returned)
		fetches.EachRecord(func(r *kgo.Record) { kept[r] = struct{}{} })
		for _, r := range c.polled {
			if _, ok := kept[r]; !ok {
				c.recycle(r)
			}
		}
	}
	clear(c.polled)
	c.polled = c.polled[:0]
}

// recycle releases what a record holds of the budget once the subscriber is done with it: its
// own bytes when its batch was uncompressed, its share of its decoded batch otherwise.
func (c *consumer) recycle(r *kgo.Record) {
	if r.Attrs.CompressionType() == 0 {
		c.budget.Release(recordBytes(r))
	}
	r.Recycle()
}

// recordBytes is the bytes a record's key, value and headers take.
func recordBytes(r *kgo.Record) int64 {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
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
	if err := cl.CommitMarkedOffsets(ctx); err != nil && !c.watch.commitFailed(err) {
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
	queue   []fetched
	queued  chan struct{}
	// The partition's fetches are paused while its queue is full, or while it waits for room in
	// the budget for its next batch (roomWanted bytes of it, 0 when not known). The queue is full
	// only while the worker is busy with a batch it took: pausing for a batch an idle worker is
	// about to take made every fetch at light load pause and resume its partition, and a resumed
	// partition waits for the fetch in flight without it (up to fetchMaxWait).
	paused, waitingForRoom, busy bool
	roomWanted                   int64
	// skipping: the partition is paused while its undecodable batch is read and skipped.
	skipping bool
	// position is the offset after the last record handed to the worker, -1 before the first.
	position int64

	slots chan struct{} // the window: a message holds a slot until it can be committed
	// delivered queues the messages in flight, in offset order, for the acker; the dispatcher
	// closes it when it stops.
	delivered chan *deliveredMessage
	inFlight  sync.WaitGroup
	// mark is the acker's argument to MarkCommitOffsets, kept to save two maps per message.
	mark map[string]map[int32]kgo.EpochOffset

	// keys holds, for each ordering key with a message in flight, the messages of that key that
	// wait for it, in offset order (Ordering).
	keysMu sync.Mutex
	keys   map[string][]*deliveredMessage
}

func newPartitionWorker(c *consumer, partition int32) *partitionWorker {
	return &partitionWorker{
		consumer:  c,
		partition: partition,
		stop:      make(chan struct{}),
		queued:    make(chan struct{}, 1),
		slots:     make(chan struct{}, c.cfg.Window),
		delivered: make(chan *deliveredMessage, c.cfg.Window),
		keys:      map[string][]*deliveredMessage{},
		position:  -1,
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
	// cancel ends ctx once the message is acked or given up, as Watermill's subscribers do.
	cancel context.CancelFunc
	// held is what the message holds of the budget until it is acked.
	held int64
	// ordered messages wait for the earlier messages of their key (Ordering); sent says whether
	// the message has been delivered yet.
	key           string
	ordered, sent bool
}

// fetched is what a partition's worker is handed: the records of one fetch, or a batch that
// could not be decoded.
type fetched struct {
	records     []*kgo.Record
	undecodable *source.UndecodableBatch
	epoch       int32 // the undecodable batch's leader epoch
}

// queuedBatches is how many fetched batches a partition may have waiting, besides the one its
// worker is dispatching, before its fetches pause: one, so that the worker goes on while the
// next fetch is on its way, and memory stays at about two fetches a partition.
const queuedBatches = 1

// enqueue hands the worker a fetched batch, at once; with queuedBatches waiting, it pauses the
// partition's fetches until the worker catches up. A pause made while records of the partition
// were buffered in the client drops them there, and they are fetched again on resume.
func (w *partitionWorker) enqueue(batch fetched) {
	w.queueMu.Lock()
	defer w.queueMu.Unlock()
	w.queue = append(w.queue, batch)
	if n := len(batch.records); n > 0 {
		w.position = batch.records[n-1].Offset + 1
	} else if batch.undecodable != nil {
		w.position = batch.undecodable.LastOffset + 1
	}
	w.updatePause()
	select {
	case w.queued <- struct{}{}:
	default: // the worker has a signal waiting already
	}
}

// next takes the oldest queued batch, resuming the partition's fetches once there is room.
func (w *partitionWorker) next() (fetched, bool) {
	w.queueMu.Lock()
	defer w.queueMu.Unlock()
	if len(w.queue) == 0 {
		w.busy = false
		return fetched{}, false
	}
	w.busy = true
	batch := w.queue[0]
	w.queue[0] = fetched{}
	w.queue = w.queue[1:]
	w.updatePause()
	return batch, true
}

// updatePause pauses or resumes the partition's fetches as its queue and its wait for room say;
// w.queueMu is held.
func (w *partitionWorker) updatePause() {
	switch want := w.busy && len(w.queue) >= queuedBatches || w.waitingForRoom || w.skipping; {
	case want && !w.paused:
		w.paused = true
		w.consumer.client.PauseFetchPartitions(w.topicPartition())
	case !want && w.paused:
		w.paused = false
		w.consumer.client.ResumeFetchPartitions(w.topicPartition())
	}
}

// waitForRoom pauses the partition until the budget has room for its next batch, of n bytes
// decoded (0 when not known yet).
func (w *partitionWorker) waitForRoom(n int64) {
	w.queueMu.Lock()
	w.waitingForRoom, w.roomWanted = true, n
	w.updatePause()
	w.queueMu.Unlock()
	select {
	case w.consumer.roomWanted <- struct{}{}:
	default:
	}
}

// roomFound resumes the partition if it waits for room and the budget has it now.
func (w *partitionWorker) roomFound() (stillWaiting bool) {
	w.queueMu.Lock()
	defer w.queueMu.Unlock()
	if !w.waitingForRoom {
		return false
	}
	if !w.consumer.budget.Fits(max(w.roomWanted, 1)) {
		return true
	}
	w.waitingForRoom = false
	w.updatePause()
	return false
}

// discardQueued recycles the records still queued when the partition stops: they were not
// delivered, so the next owner reads them again.
func (w *partitionWorker) discardQueued() {
	for batch, ok := w.next(); ok; batch, ok = w.next() {
		for _, rec := range batch.records {
			w.consumer.recycle(rec)
		}
	}
}

// resume lifts the partition's pause, if any.
func (w *partitionWorker) resume() {
	w.queueMu.Lock()
	defer w.queueMu.Unlock()
	w.waitingForRoom = false
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
	defer w.discardQueued()
	for {
		select {
		case <-w.stop:
			return
		case <-w.queued:
			for batch, ok := w.next(); ok; batch, ok = w.next() {
				if batch.undecodable != nil {
					if !w.dispatchUndecodable(batch) {
						return
					}
					continue
				}
				for i, rec := range batch.records {
					if !w.dispatch(rec) {
						for _, rest := range batch.records[i:] {
							w.consumer.recycle(rest)
						}
						return
					}
				}
			}
		}
	}
}

// MessageOverheadBytes is what a message in flight is counted at beyond its request's bytes
// (counted twice: the request, and its answer, which echoes the request's id or, on the poison
// queue, carries the request): its handler's goroutine and stack, Watermill's message and
// contexts, the answer's record in the producer, and the Go heap's room to grow between
// collections. About 11 KiB a message is live (a drain with 4,096 messages in flight peaked
// 46 MiB above one with 256); counted at 32 KiB, the default budget holds about 1,000 messages in
// flight, which keeps the 100,000-request drains within 64 MiB at every partition count with a
// 0, 2 or 10 ms write (docs/performance.md).
const MessageOverheadBytes = 32 << 10

// dispatch delivers rec once a slot of the window is free and the budget has room for the
// message and its answer; false when the partition stopped. The record itself is recycled here:
// the message has copies of all it needs.
func (w *partitionWorker) dispatch(rec *kgo.Record) bool {
	select {
	case w.slots <- struct{}{}:
	case <-w.stop:
		return false
	}
	size := recordBytes(rec)
	held := 2*size + MessageOverheadBytes // the request, and its answer
	if !w.hold(held) {
		return false
	}
	msg := w.consumer.toMessage(rec)
	d := &deliveredMessage{msg: msg, offset: kgo.EpochOffset{Epoch: rec.LeaderEpoch, Offset: rec.Offset}, held: held}
	d.key, d.ordered = w.orderingKey(rec.Key)
	w.consumer.recycle(rec)
	return w.send(d)
}

// dispatchUndecodable delivers the message that stands for an undecodable batch; its offset is
// the batch's last, so that once it is acked the partition is committed past the batch.
func (w *partitionWorker) dispatchUndecodable(batch fetched) bool {
	select {
	case w.slots <- struct{}{}:
	case <-w.stop:
		return false
	}
	w.consumer.budget.Force(MessageOverheadBytes)
	src := source.Source{Topic: w.consumer.topic, Partition: w.partition, Offset: batch.undecodable.FirstOffset, Undecodable: batch.undecodable}
	msg := message.NewMessage(watermill.NewUUID(), nil)
	msg.SetContext(context.WithValue(w.consumer.msgCtx, franzSourceKey{}, src))
	d := &deliveredMessage{msg: msg, offset: kgo.EpochOffset{Epoch: batch.epoch, Offset: batch.undecodable.LastOffset}, held: MessageOverheadBytes}
	d.ordered = w.consumer.cfg.Ordering == OrderByPartition
	return w.send(d)
}

// hold takes n bytes of the budget for a message about to be delivered; false if the partition
// stopped first. A partition with nothing else in flight takes its room without waiting: what
// holds the budget then may be its own decoded batch, released only as its records are
// delivered, so each partition can always move.
func (w *partitionWorker) hold(n int64) bool {
	b := w.consumer.budget
	for {
		released := b.Released()
		if len(w.slots) == 1 { // the acker frees a slot before it releases its room
			b.Force(n)
			return true
		}
		if b.TryAcquire(n) {
			return true
		}
		select {
		case <-released:
		case <-w.stop:
			return false
		}
	}
}

// orderingKey is the key whose earlier messages a record's message waits for, if any.
func (w *partitionWorker) orderingKey(key []byte) (string, bool) {
	switch w.consumer.cfg.Ordering {
	case OrderByPartition:
		return "", true
	case OrderByKey:
		return string(key), len(key) > 0
	}
	return "", false
}

// send delivers d's message, or queues it behind the message of its key in flight; its room in
// the budget is released once it is acked or given up (ackInOrder).
func (w *partitionWorker) send(d *deliveredMessage) bool {
	// The context is the one the subscriber gave the message (its source), kept for a
	// redelivery: the router and the middleware replace the message's own.
	d.ctx, d.cancel = context.WithCancel(d.msg.Context())
	d.msg.SetContext(d.ctx)
	w.inFlight.Add(1)
	if d.ordered && w.waitForKey(d) {
		w.delivered <- d // the acker delivers it once the one before it is done
		return true
	}
	d.sent = true
	if !w.deliver(d.msg) {
		d.cancel()
		w.inFlight.Done()
		w.consumer.budget.Release(d.held)
		return false
	}
	w.delivered <- d // never blocks: the queue holds a window, and d holds a slot
	return true
}

// waitForKey tells whether d must wait for an earlier message of its key, queueing it if so.
func (w *partitionWorker) waitForKey(d *deliveredMessage) bool {
	w.keysMu.Lock()
	defer w.keysMu.Unlock()
	waiting, busy := w.keys[d.key]
	if busy {
		w.keys[d.key] = append(waiting, d)
	} else {
		w.keys[d.key] = nil // in flight, nothing waits for it yet
	}
	return busy
}

// keyDone is called once d is done with: the next message of its key, if any, is delivered
// now, unless the partition stops.
func (w *partitionWorker) keyDone(d *deliveredMessage, goOn bool) {
	w.keysMu.Lock()
	waiting := w.keys[d.key]
	if len(waiting) == 0 {
		delete(w.keys, d.key)
		w.keysMu.Unlock()
		return
	}
	next := waiting[0]
	waiting[0] = nil
	w.keys[d.key] = waiting[1:]
	w.keysMu.Unlock()
	if goOn {
		next.sent = w.deliver(next.msg)
	}
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
		acked := d.sent && w.awaitAck(d) // an unsent message waited for its key until the partition stopped
		d.cancel()
		committing = committing && acked
		if d.ordered {
			w.keyDone(d, acked)
		}
		if committing {
			next := d.offset
			next.Offset++ // a committed offset is the next one to read
			w.mark[w.consumer.topic][w.partition] = next
			w.consumer.client.MarkCommitOffsets(w.mark)
		}
		<-w.slots
		w.consumer.budget.Release(d.held) // after the slot: a dispatcher waiting for room sees both
		w.inFlight.Done()
	}
}

// awaitAck waits for the message's ack and delivers it again after each nack, with a growing
// pause. False if it gives up: the partition stopped before a redelivery, or the drain timed out.
func (w *partitionWorker) awaitAck(d *deliveredMessage) bool {
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
	src := source.Source{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp, Key: bytes.Clone(rec.Key)}
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
		// Copies of the key and value: the record's bytes go back to franz-go (Recycle).
		metadata.Set(strings.Clone(h.Key), string(h.Value))
	}
	msg := message.NewMessage(uuid, bytes.Clone(rec.Value))
	msg.Metadata = metadata
	msg.SetContext(c.messageContext(rec))
	return msg
}

// FranzSource tells where a FranzSubscriber's message came from.
func FranzSource(msg *message.Message) source.Source {
	if src, ok := msg.Context().Value(franzSourceKey{}).(source.Source); ok {
		return src
	}
	return source.Source{Topic: message.SubscribeTopicFromCtx(msg.Context())}
}

// formatBytes writes n in MiB when it is a whole number of them, in bytes otherwise.
func formatBytes(n int64) string {
	if n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
