package flow

import (
	"context"
	"sync"
	"time"
)

// Transactions decides, for the exactly-once subscriber, which messages go in which Kafka
// transaction and when a transaction ends. It knows no Kafka client: the subscriber begins and
// ends the transactions it says (app/transport), and the partitions' workers join them.
//
// The rules:
//
//   - A transaction admits messages (Join) for Interval from its first one, or until MaxRequests
//     joined; then it closes.
//   - A closed transaction still admits a partition's messages below the highest offset the
//     partition had in it: a message the engine held back (behind its key, or for room) while a
//     later one went ahead. Its offset is committed with this transaction, so it must be
//     answered in it too; otherwise the later message's answer would be committed while the
//     offset stayed behind it, and an abort of the next transaction would answer it again.
//   - It ends (Idle) once every message it admitted is answered and every partition's commit
//     mark (Mark) has passed every offset it admitted; the marks are what it commits (Marks).
//   - A message not answered (Leave false), a failed publish, a rebalance or a shutdown dooms it
//     (Doom): it admits nothing more, the contexts of its messages are canceled so that their
//     retries stop, and it ends as soon as they have all returned, with an abort.
type Transactions struct {
	cfg TransactionsConfig

	mu  sync.Mutex
	cur *Transaction
	// changed is closed, and replaced, whenever a message waiting in Join may now go in.
	changed chan struct{}
}

// TransactionsConfig bounds a transaction.
type TransactionsConfig struct {
	Interval    time.Duration
	MaxRequests int
	// AfterFunc runs f after d; nil means time.AfterFunc (tests replace it).
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
}

// AbortReason says why a transaction aborts; empty, it may commit.
type AbortReason string

// The reasons a transaction aborts, as pingpong_transactions_aborted_total counts them.
const (
	AbortRebalance     AbortReason = "rebalance"      // a partition was revoked or lost
	AbortPublishFailed AbortReason = "publish_failed" // an answer could not be written
	AbortNotAnswered   AbortReason = "not_answered"   // a message was nacked or given up
	AbortCommitFailed  AbortReason = "commit_failed"  // the offsets or the end of the transaction failed
	AbortShutdown      AbortReason = "shutdown"       // the drain timed out before every answer was written
)

// NewTransactions returns the bookkeeping with no transaction open; Open opens one.
func NewTransactions(cfg TransactionsConfig) *Transactions {
	if cfg.MaxRequests < 1 {
		cfg.MaxRequests = 1
	}
	if cfg.AfterFunc == nil {
		cfg.AfterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	return &Transactions{cfg: cfg, changed: make(chan struct{})}
}

// Transaction is one transaction's bookkeeping.
type Transaction struct {
	ts *Transactions

	// The fields below are guarded by ts.mu.
	admitting bool
	requests  int             // messages admitted
	out       int             // messages admitted and not yet returned
	highest   map[int32]int64 // partition -> highest offset admitted
	marks     map[int32]Mark  // partition -> what its engine marked meanwhile
	reason    AbortReason
	started   time.Time
	stopTimer func() bool
	dueOnce   sync.Once
	due       chan struct{}
	idleOnce  sync.Once
	idle      chan struct{}
	closed    bool // Close was called: idle may be signalled

	ctx    context.Context
	cancel context.CancelFunc
}

// Mark is a partition's commit mark: the offset after the last record answered in order, and
// that record's leader epoch.
type Mark struct {
	Epoch int32
	Next  int64
}

// Open opens a new transaction, which admits messages at once; parent is the parent of its
// messages' contexts. The one before must have ended.
func (ts *Transactions) Open(parent context.Context) *Transaction {
	t := &Transaction{
		ts: ts, admitting: true,
		highest: map[int32]int64{}, marks: map[int32]Mark{},
		due: make(chan struct{}), idle: make(chan struct{}),
	}
	t.ctx, t.cancel = context.WithCancel(parent)
	ts.mu.Lock()
	ts.cur = t
	ts.wake()
	ts.mu.Unlock()
	return t
}

// wake lets the messages waiting in Join look again; ts.mu is held.
func (ts *Transactions) wake() {
	close(ts.changed)
	ts.changed = make(chan struct{})
}

// Join admits a message of partition at offset into the open transaction, waiting while none
// admits it; false if stop was closed first.
func (ts *Transactions) Join(partition int32, offset int64, stop <-chan struct{}) (*Transaction, bool) {
	for {
		t, changed := ts.TryJoin(partition, offset)
		if t != nil {
			return t, true
		}
		select {
		case <-changed:
		case <-stop:
			return nil, false
		}
	}
}

// TryJoin admits a message of partition at offset into the open transaction if it admits it;
// otherwise it returns nil and a channel closed once the message may try again. A partition's
// sender must not wait for one message while others it holds could join: a closed transaction
// waits for those below its highest offset.
func (ts *Transactions) TryJoin(partition int32, offset int64) (*Transaction, <-chan struct{}) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t := ts.cur; t != nil && t.admits(partition, offset) {
		t.join(partition, offset)
		return t, nil
	}
	return nil, ts.changed
}

// admits says whether the message may join; ts.mu is held.
func (t *Transaction) admits(partition int32, offset int64) bool {
	if t.reason != "" {
		return false
	}
	if t.admitting {
		return true
	}
	highest, ok := t.highest[partition]
	return ok && offset < highest
}

// join counts the message in; ts.mu is held.
func (t *Transaction) join(partition int32, offset int64) {
	if t.requests == 0 {
		t.started = time.Now()
		t.stopTimer = t.ts.cfg.AfterFunc(t.ts.cfg.Interval, t.intervalOver)
	}
	t.requests++
	t.out++
	if h, ok := t.highest[partition]; !ok || offset > h {
		t.highest[partition] = offset
	}
	if t.requests >= t.ts.cfg.MaxRequests {
		t.stopAdmitting()
	}
}

func (t *Transaction) intervalOver() {
	t.ts.mu.Lock()
	defer t.ts.mu.Unlock()
	t.stopAdmitting()
}

// stopAdmitting closes the transaction to new messages and says it is due; ts.mu is held.
func (t *Transaction) stopAdmitting() {
	t.admitting = false
	t.dueOnce.Do(func() { close(t.due) })
}

// Due is closed once the transaction should end: its interval has passed since its first
// message, MaxRequests joined, or it was doomed. It admits no new messages from then on.
func (t *Transaction) Due() <-chan struct{} { return t.due }

// Started is when the first message joined; zero if none did.
func (t *Transaction) Started() time.Time {
	t.ts.mu.Lock()
	defer t.ts.mu.Unlock()
	return t.started
}

// Requests is how many messages joined.
func (t *Transaction) Requests() int {
	t.ts.mu.Lock()
	defer t.ts.mu.Unlock()
	return t.requests
}

// Context is the parent of the transaction's messages' contexts: canceled when it is doomed or
// has ended.
func (t *Transaction) Context() context.Context { return t.ctx }

// Leave reports that a message of the transaction returned from the handlers: answered or not.
// One not answered dooms the transaction: what it published cannot be taken back otherwise.
func (t *Transaction) Leave(answered bool) {
	t.ts.mu.Lock()
	defer t.ts.mu.Unlock()
	t.out--
	if !answered {
		t.doom(AbortNotAnswered)
	}
	t.checkIdle()
}

// Mark records a partition's commit mark, made while the transaction is the open one.
func (ts *Transactions) Mark(partition int32, m Mark) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t := ts.cur; t != nil {
		t.marks[partition] = m
		t.checkIdle()
	}
}

// Doom makes the transaction abort, for reason (the first reason given is kept).
func (t *Transaction) Doom(reason AbortReason) {
	t.ts.mu.Lock()
	defer t.ts.mu.Unlock()
	t.doom(reason)
	t.checkIdle()
}

// Doom dooms the open transaction, if any.
func (ts *Transactions) Doom(reason AbortReason) {
	ts.mu.Lock()
	t := ts.cur
	ts.mu.Unlock()
	if t != nil {
		t.Doom(reason)
	}
}

func (t *Transaction) doom(reason AbortReason) {
	if t.reason == "" {
		t.reason = reason
		t.cancel()
		t.stopAdmitting()
	}
}

// Reason is why the transaction must abort; empty if it may commit.
func (t *Transaction) Reason() AbortReason {
	t.ts.mu.Lock()
	defer t.ts.mu.Unlock()
	return t.reason
}

// Close stops admitting new messages (those below a partition's highest offset still join) and
// returns a channel closed once the transaction may end (see the package rules).
func (t *Transaction) Close() <-chan struct{} {
	t.ts.mu.Lock()
	defer t.ts.mu.Unlock()
	t.stopAdmitting()
	t.closed = true
	t.checkIdle()
	return t.idle
}

// checkIdle signals idle once the closed transaction may end; ts.mu is held.
func (t *Transaction) checkIdle() {
	if !t.closed || t.out > 0 {
		return
	}
	if t.reason == "" {
		for p, highest := range t.highest {
			if m, ok := t.marks[p]; !ok || m.Next <= highest {
				return // a message held back below a later one has yet to join and be answered
			}
		}
	}
	t.idleOnce.Do(func() { close(t.idle) })
}

// Marks are the commit marks made while the transaction was open: what it commits.
func (t *Transaction) Marks() map[int32]Mark {
	t.ts.mu.Lock()
	defer t.ts.mu.Unlock()
	marks := make(map[int32]Mark, len(t.marks))
	for p, m := range t.marks {
		marks[p] = m
	}
	return marks
}

// End forgets the transaction once it has been committed or aborted: its messages' contexts
// are canceled, and Join waits for the next one.
func (t *Transaction) End() {
	t.ts.mu.Lock()
	defer t.ts.mu.Unlock()
	if t.stopTimer != nil {
		t.stopTimer()
	}
	t.cancel()
	t.stopAdmitting()
	if t.ts.cur == t {
		t.ts.cur = nil
	}
	t.ts.wake()
}
