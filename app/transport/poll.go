package transport

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/budget"
)

// consumer is one Subscribe: a group member reading one topic.
type consumer struct {
	cfg    FranzSubscriberConfig
	topic  string
	logger watermill.LoggerAdapter
	client *kgo.Client
	// session is the client's transactional session in exactly-once mode, nil otherwise.
	session *kgo.GroupTransactSession
	out     chan *message.Message

	// stopPolling ends the poll loop; hardStop cancels the messages' contexts once the drain
	// timeout has passed.
	stopPolling context.CancelFunc
	pollCtx     context.Context
	hardStop    context.CancelFunc
	msgCtx      context.Context
	pollDone    chan struct{}
	closeOnce   sync.Once
	closeErr    error

	// senders counts each partition's goroutines (run, which admits its records, and sendReady,
	// which sends on out); out is closed only once they are all gone.
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
	// owned is the partitions assigned and not revoked or lost since: a poll may return records
	// of a partition revoked meanwhile, which must not start it again here.
	owned map[int32]bool
}

func newConsumer(cfg FranzSubscriberConfig, topic string, logger watermill.LoggerAdapter) *consumer {
	c := &consumer{
		cfg: cfg, topic: topic, logger: logger, budget: cfg.Budget,
		roomWanted:  make(chan struct{}, 1),
		fetchErrors: map[int32]fetchErrorLog{},
		out:         make(chan *message.Message),
		pollDone:    make(chan struct{}),
		partitions:  map[int32]*partitionWorker{},
		owned:       map[int32]bool{},
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
		fetches.EachPartition(c.handOver)
	}
}

// handOver hands a partition's polled records to its worker, and its fetch error to fetchFailed.
func (c *consumer) handOver(p kgo.FetchTopicPartition) {
	// Never wait here for one partition's worker: the others would run dry meanwhile.
	if len(p.Records) > 0 {
		if w := c.worker(p.Partition); w != nil {
			w.enqueue(fetched{records: p.Records})
		} else { // revoked or lost since the poll
			for _, r := range p.Records {
				c.recycle(r)
			}
		}
	}
	if p.Err != nil {
		c.fetchFailed(p.Partition, p.Err)
	}
}

// fetchFailed handles a partition's fetch error. A batch that cannot be decoded within the budget
// stops its partition in franz-go until it is skipped: it is handed to the partition's worker as
// one message, after the records before it, and the partition goes on after it.
func (c *consumer) fetchFailed(partition int32, err error) {
	var full *budgetFullError
	if errors.As(err, &full) {
		if w := c.worker(partition); w != nil {
			w.waitForRoom(full.need)
		}
		return
	}
	if errors.Is(err, errUndecodable) {
		if w := c.worker(partition); w != nil {
			w.skipUndecodable()
		}
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

// OnGroupManageError implements kgo.HookGroupManageError: the client left its group session (or
// could not join one) and backs off before it tries again.
func (c *consumer) OnGroupManageError(err error) {
	if !errors.Is(err, context.Canceled) {
		c.cfg.Assignment.GroupFailed()
		c.logger.Error("Not in the consumer group; joining again", err, nil)
	}
}
