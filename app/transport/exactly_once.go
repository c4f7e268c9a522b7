package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/app/flow"
	"github.com/pingpong/pingpong/source"
)

// ExactlyOnce makes the franz-go subscriber and publisher commit answers and input offsets in one
// Kafka transaction (KAFKA_DELIVERY=exactly-once). They share one transactional client, a
// kgo.GroupTransactSession: its offsets are committed with the group's generation (KIP-447), so
// a member that lost its partitions cannot commit them, and a revoke or a lost partition aborts
// the open transaction. What a transaction holds is decided by flow.Transactions; the poll loop
// begins and ends them (pollInTransactions), since franz-go forbids a poll during either.
type ExactlyOnce struct {
	TransactionalID string
	// Timeout is the producer's transaction timeout: the broker aborts a transaction open longer.
	Timeout     time.Duration
	Interval    time.Duration
	MaxRequests int
	// ProducerOptions tune the shared client's producer, as the publisher's own otherwise.
	ProducerOptions []kgo.Opt
	Metrics         *TransactionMetrics
	// RetryInterval and MaxRetryInterval space the transactions after one aborted on a failed
	// write or an unanswered request: the wait doubles with each such abort in a row, as Retry's
	// between the attempts of one request (RETRY_INITIAL_INTERVAL, RETRY_MAX_INTERVAL), so that
	// an outage shorter than the retries does not poison requests, nor hammer the broker.
	RetryInterval, MaxRetryInterval time.Duration
	// PoisonTopic is the poison queue's topic. A failed answer there does not count against its
	// request: at-least-once does not retry a poison record either, it redelivers the request
	// until the poison queue takes it, and so does an abort.
	PoisonTopic string

	txns   *flow.Transactions
	mu     sync.Mutex
	client *kgo.Client // the shared client, once the subscriber has connected
	// failed counts, per partition and offset of a request, the transactions that aborted
	// because its answer could not be written (middleware.GiveUpAfterAbortedAnswers); forgotten
	// once the request's offset is committed.
	failed map[int32]map[int64]int
}

// answerFailed counts a write of src's answer to topic that failed: its transaction aborts.
func (e *ExactlyOnce) answerFailed(src source.Source, topic string) {
	if topic == e.PoisonTopic {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failed == nil {
		e.failed = map[int32]map[int64]int{}
	}
	offsets := e.failed[src.Partition]
	if offsets == nil {
		offsets = map[int64]int{}
		e.failed[src.Partition] = offsets
	}
	if len(offsets) >= maxFailedAnswers {
		clear(offsets) // a bound on memory; the requests then take their retries again
	}
	offsets[src.Offset]++
}

// maxFailedAnswers bounds the requests of a partition whose failed answers are counted: a
// partition whose every answer fails counts at most its window's worth between two commits.
const maxFailedAnswers = 16 << 10

// abortedAnswers is how many transactions aborted on a failed answer to the request at offset.
func (e *ExactlyOnce) abortedAnswers(partition int32, offset int64) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.failed[partition][offset]
}

// committed forgets the failed answers of the requests a transaction committed.
func (e *ExactlyOnce) committed(marks map[int32]flow.Mark) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for p, m := range marks {
		for offset := range e.failed[p] {
			if offset < m.Next {
				delete(e.failed[p], offset)
			}
		}
	}
}

func (e *ExactlyOnce) init() {
	e.txns = flow.NewTransactions(flow.TransactionsConfig{Interval: e.Interval, MaxRequests: e.MaxRequests})
	if e.Metrics == nil {
		e.Metrics = NewTransactionMetrics()
	}
}

// producer is the shared client, for the publisher; nil before the subscriber connected.
func (e *ExactlyOnce) producer() *kgo.Client {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.client
}

func (e *ExactlyOnce) setProducer(cl *kgo.Client) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.client = cl
}

// errNotSubscribed refuses a publish in exactly-once mode before the subscriber connected: an
// answer is written in the transaction of the request it answers.
var errNotSubscribed = errors.New("exactly-once: nothing to answer before the subscriber has connected")

// TransactionMetrics counts the transactions' outcomes.
type TransactionMetrics struct {
	committed prometheus.Counter
	aborted   *prometheus.CounterVec
	duration  *prometheus.HistogramVec
}

// NewTransactionMetrics makes the transactions' series; register its Collectors.
func NewTransactionMetrics() *TransactionMetrics {
	m := &TransactionMetrics{
		committed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pingpong_transactions_committed_total",
			Help: "Kafka transactions committed (KAFKA_DELIVERY=exactly-once): their answers and input offsets are visible to read_committed readers.",
		}),
		aborted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pingpong_transactions_aborted_total",
			Help: "Kafka transactions aborted, by reason; their requests are read and answered again.",
		}, []string{"reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pingpong_transaction_duration_seconds",
			Help:    "Time from a transaction's first request to its commit or abort.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"outcome"}),
	}
	for _, r := range []flow.AbortReason{flow.AbortRebalance, flow.AbortPublishFailed, flow.AbortNotAnswered, flow.AbortCommitFailed, flow.AbortShutdown} {
		m.aborted.WithLabelValues(string(r))
	}
	return m
}

// Collectors are the series to register.
func (m *TransactionMetrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.committed, m.aborted, m.duration}
}

// transactionalOptions are the shared client's options beyond the subscriber's own.
func (e *ExactlyOnce) transactionalOptions() []kgo.Opt {
	return append(append([]kgo.Opt{}, e.ProducerOptions...),
		kgo.TransactionalID(e.TransactionalID),
		kgo.TransactionTimeout(e.Timeout),
	)
}

// pollInTransactions is the poll loop in exactly-once mode: each turn begins a transaction,
// polls until it is due, and ends it.
func (c *consumer) pollInTransactions() {
	defer close(c.pollDone)
	e := c.cfg.ExactlyOnce
	var backoff time.Duration
	for {
		if err := c.session.Begin(); err != nil {
			c.transactionsFailed(fmt.Errorf("beginning a transaction: %w", err))
			return
		}
		txn := e.txns.Open(c.msgCtx)
		stopped := c.pollUntilDue(txn)
		reason := c.endTransaction(txn, stopped)
		if stopped {
			for _, r := range c.polled {
				c.recycle(r)
			}
			return
		}
		backoff = e.nextBackoff(backoff, reason)
		if backoff > 0 {
			select {
			case <-time.After(backoff):
			case <-c.pollCtx.Done():
			}
		}
	}
}

// nextBackoff is the wait before the next transaction after one that ended for reason ("" for
// a commit): it grows while answers fail, and is gone after a commit or another abort.
func (e *ExactlyOnce) nextBackoff(last time.Duration, reason flow.AbortReason) time.Duration {
	if reason != flow.AbortPublishFailed && reason != flow.AbortNotAnswered {
		return 0
	}
	if last == 0 {
		return e.RetryInterval
	}
	return min(2*last, max(e.MaxRetryInterval, e.RetryInterval))
}

// pollUntilDue polls and hands the records over until txn is due; true if the subscriber is
// closing.
func (c *consumer) pollUntilDue(txn *flow.Transaction) (stopped bool) {
	for {
		ctx, cancel := context.WithCancel(c.pollCtx)
		go func() {
			select {
			case <-txn.Due():
				cancel()
			case <-ctx.Done():
			}
		}()
		fetches := c.session.PollRecords(ctx, pollMaxRecords)
		cancel()
		if c.pollCtx.Err() != nil || fetches.IsClientClosed() {
			return true
		}
		c.recycleStripped(fetches)
		fetches.EachPartition(c.handOver)
		select {
		case <-txn.Due():
			return false
		default:
		}
	}
}

// endTransaction waits until txn may end, then commits it with the offsets its partitions
// marked, or aborts it; an aborted transaction's partitions are read again from their committed
// offsets. It returns why it aborted, "" if it committed.
func (c *consumer) endTransaction(txn *flow.Transaction, stopping bool) flow.AbortReason {
	e := c.cfg.ExactlyOnce
	defer txn.End()
	if txn.Requests() == 0 {
		// Nothing produced nor marked (doomed by a rebalance, or closing): the transaction was
		// never begun at the broker, but the session resets the client to the committed
		// offsets all the same.
		if _, err := c.session.End(context.Background(), kgo.TryAbort); err != nil {
			c.logger.Error("Ending an empty transaction failed", err, nil)
		}
		c.restartPartitions()
		return txn.Reason()
	}
	// A transaction must end well within its timeout, or the broker aborts it under us.
	wait := e.Timeout / 2
	reason := flow.AbortNotAnswered
	if stopping {
		wait, reason = min(wait, c.cfg.DrainTimeout), flow.AbortShutdown
	}
	closed := time.Now()
	idle := txn.Close()
	select {
	case <-idle:
	case <-time.After(wait):
		txn.Doom(reason) // their contexts are canceled: they return at once
		select {
		case <-idle:
		case <-time.After(5 * time.Second):
			c.logger.Error("Messages still in the handlers after their transaction was aborted", nil, nil)
		}
	}
	marks := txn.Marks()
	commit := txn.Reason() == ""
	ctx := kgo.PreTxnCommitFnContext(context.Background(), func(req *kmsg.TxnOffsetCommitRequest) error {
		commitMarks(req, c.topic, marks)
		return nil
	})
	committed, err := c.session.End(ctx, kgo.TransactionEndTry(commit))
	took := time.Since(txn.Started()).Seconds()
	if committed {
		e.txns.Ended(time.Since(closed))
		e.committed(marks)
		e.Metrics.committed.Inc()
		e.Metrics.duration.WithLabelValues("committed").Observe(took)
		return ""
	}
	reason = txn.Reason()
	if reason == "" {
		reason = flow.AbortCommitFailed
	}
	e.Metrics.aborted.WithLabelValues(string(reason)).Inc()
	e.Metrics.duration.WithLabelValues("aborted").Observe(took)
	fields := watermill.LogFields{"reason": string(reason), "requests": txn.Requests()}
	if err != nil {
		c.logger.Error("Transaction aborted; its requests are read and answered again", err, fields)
		c.abortAgain()
	} else {
		c.logger.Info("Transaction aborted; its requests are read and answered again", fields)
	}
	// The session has reset the client to the committed offsets; what the workers hold past
	// them is dropped, and read again.
	c.restartPartitions()
	return reason
}

// abortAgain ends a transaction whose end failed as an abort, as franz-go asks (EndTransaction):
// the retry reloads the producer id, bumping its epoch, which also recovers a producer whose
// transaction the broker aborted while this instance was paused past its timeout. If that fails
// too, the next Begin says so and the subscription stops.
func (c *consumer) abortAgain() {
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ExactlyOnce.Timeout)
		_, err := c.session.End(ctx, kgo.TryAbort)
		cancel()
		if err == nil {
			return
		}
		c.logger.Error("Aborting the transaction again failed", err, nil)
	}
}

// commitMarks makes the transaction's offset commit the partitions' marks: franz-go would commit
// the offsets after the records polled, and the subscriber polls ahead of what it answered.
func commitMarks(req *kmsg.TxnOffsetCommitRequest, topic string, marks map[int32]flow.Mark) {
	topics := req.Topics[:0]
	for _, t := range req.Topics {
		if t.Topic != topic {
			continue
		}
		partitions := t.Partitions[:0]
		for _, p := range t.Partitions {
			m, ok := marks[p.Partition]
			if !ok {
				continue // nothing answered in this transaction
			}
			p.Offset, p.LeaderEpoch = m.Next, m.Epoch
			partitions = append(partitions, p)
		}
		if len(partitions) > 0 {
			t.Partitions = partitions
			topics = append(topics, t)
		}
	}
	req.Topics = topics
}

// transactionsFailed stops the subscription on an error franz-go cannot recover from (the
// producer fenced by another instance with the same transactional id): the service stops, and
// its restart joins with a new producer epoch.
func (c *consumer) transactionsFailed(err error) {
	c.logger.Error("Exactly-once delivery cannot go on; stopping the subscription (is KAFKA_TRANSACTIONAL_ID shared by two running instances? A restart takes a new producer epoch)", err, nil)
	go func() { _ = c.close() }()
}
