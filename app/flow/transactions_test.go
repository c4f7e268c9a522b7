package flow_test

import (
	"context"
	"testing"
	"time"

	"github.com/pingpong/pingpong/app/flow"
)

// manualTimer is a TransactionsConfig.AfterFunc the test fires by hand.
type manualTimer struct {
	fire  func()
	after time.Duration
}

func (m *manualTimer) afterFunc(d time.Duration, f func()) func() bool {
	m.fire, m.after = f, d
	return func() bool { return true }
}

func newTransactions(maxRequests int) (*flow.Transactions, *manualTimer) {
	timer := &manualTimer{}
	return flow.NewTransactions(flow.TransactionsConfig{Interval: time.Second, MaxRequests: maxRequests, AfterFunc: timer.afterFunc}), timer
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// joins reports whether a message of partition at offset joins within a short wait.
func joins(ts *flow.Transactions, partition int32, offset int64) (*flow.Transaction, bool) {
	stop := make(chan struct{})
	time.AfterFunc(50*time.Millisecond, func() { close(stop) })
	return ts.Join(partition, offset, stop)
}

func TestATransactionIsDueOnceItsIntervalHasPassedSinceItsFirstMessage(t *testing.T) {
	ts, timer := newTransactions(100)
	txn := ts.Open(context.Background())
	if timer.fire != nil {
		t.Fatal("the interval started before any message joined")
	}
	if _, ok := joins(ts, 0, 0); !ok {
		t.Fatal("the open transaction did not admit a message")
	}
	if closed(txn.Due()) {
		t.Fatal("due before its interval")
	}
	timer.fire()
	if !closed(txn.Due()) {
		t.Fatal("not due once its interval passed")
	}
	if _, ok := joins(ts, 0, 1); ok {
		t.Error("a due transaction admitted a message after the highest offset of its partition")
	}
	if _, ok := joins(ts, 1, 0); ok {
		t.Error("a due transaction admitted a message of a partition it had none of")
	}
}

func TestATransactionIsDueOnceMaxRequestsJoined(t *testing.T) {
	ts, _ := newTransactions(2)
	txn := ts.Open(context.Background())
	joins(ts, 0, 0)
	if closed(txn.Due()) {
		t.Fatal("due after one of two requests")
	}
	joins(ts, 0, 1)
	if !closed(txn.Due()) {
		t.Fatal("not due once its most requests joined")
	}
	if n := txn.Requests(); n != 2 {
		t.Errorf("requests %d, want 2", n)
	}
}

// The offset a transaction commits must cover every answer it commits: a message held back
// below a later one of its partition still joins the closed transaction, and the transaction
// ends only once its partition's mark has passed the later one.
func TestAClosedTransactionWaitsForTheMessagesHeldBackBelowItsHighestOffset(t *testing.T) {
	ts, _ := newTransactions(100)
	txn := ts.Open(context.Background())
	later, _ := joins(ts, 0, 7) // offset 5 waits behind its key meanwhile
	idle := txn.Close()
	ts.Mark(0, flow.Mark{Next: 5}) // 7 is answered; the mark stays below 5
	later.Leave(true)
	if closed(idle) {
		t.Fatal("idle while offset 5, below the answered 7, has not been answered: 7's answer would be committed without its offset")
	}
	held, ok := joins(ts, 0, 5)
	if !ok {
		t.Fatal("the closed transaction did not admit a message below its partition's highest offset")
	}
	if _, ok := joins(ts, 0, 8); ok {
		t.Fatal("the closed transaction admitted a message past its partition's highest offset")
	}
	ts.Mark(0, flow.Mark{Next: 8})
	held.Leave(true)
	if !closed(idle) {
		t.Fatal("not idle once every message was answered and the mark passed them")
	}
	if m := txn.Marks()[0]; m.Next != 8 {
		t.Errorf("commits offset %d, want 8", m.Next)
	}
	if txn.Reason() != "" {
		t.Errorf("aborts (%s) a transaction whose messages were all answered", txn.Reason())
	}
}

func TestAMessageNotAnsweredDoomsItsTransaction(t *testing.T) {
	ts, _ := newTransactions(100)
	txn := ts.Open(context.Background())
	a, _ := joins(ts, 0, 0)
	b, _ := joins(ts, 0, 1)
	a.Leave(false)
	if txn.Reason() != flow.AbortNotAnswered {
		t.Fatalf("reason %q, want %q", txn.Reason(), flow.AbortNotAnswered)
	}
	if txn.Context().Err() == nil {
		t.Error("the doomed transaction's messages' contexts go on: their retries would hold the abort up")
	}
	if !closed(txn.Due()) {
		t.Error("a doomed transaction is not due")
	}
	if _, ok := joins(ts, 0, 0); ok {
		t.Error("a doomed transaction admitted a message")
	}
	idle := txn.Close()
	if closed(idle) {
		t.Fatal("idle while a message is still in the handlers")
	}
	b.Leave(true)
	if !closed(idle) {
		t.Fatal("a doomed transaction waits for marks once its messages returned")
	}
}

func TestTheFirstReasonToAbortIsKept(t *testing.T) {
	ts, _ := newTransactions(100)
	txn := ts.Open(context.Background())
	ts.Doom(flow.AbortRebalance)
	txn.Doom(flow.AbortShutdown)
	if txn.Reason() != flow.AbortRebalance {
		t.Errorf("reason %q, want %q", txn.Reason(), flow.AbortRebalance)
	}
}

func TestMessagesWaitForTheNextTransaction(t *testing.T) {
	ts, timer := newTransactions(100)
	first := ts.Open(context.Background())
	joins(ts, 0, 0)
	timer.fire()
	got := make(chan *flow.Transaction, 1)
	go func() {
		txn, _ := ts.Join(0, 1, make(chan struct{}))
		got <- txn
	}()
	select {
	case <-got:
		t.Fatal("a message joined a closed transaction past its partition's highest offset")
	case <-time.After(50 * time.Millisecond):
	}
	first.End()
	if first.Context().Err() == nil {
		t.Error("an ended transaction's messages' contexts go on")
	}
	second := ts.Open(context.Background())
	select {
	case txn := <-got:
		if txn != second {
			t.Error("the waiting message joined another transaction than the next one")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting message did not join the next transaction")
	}
}

func TestAJoinGivesUpWhenItsPartitionStops(t *testing.T) {
	ts, _ := newTransactions(100)
	stop := make(chan struct{})
	close(stop)
	if _, ok := ts.Join(0, 0, stop); ok {
		t.Error("joined with no transaction open")
	}
}

// A transaction closes early by what its first request had waited since it was written and what
// the last one took from its close to its commit, so that a request is committed about Interval
// after it was written; never more than half the Interval early.
func TestATransactionClosesEarlyByItsFirstRequestsWaitAndTheLastEnding(t *testing.T) {
	for _, tc := range []struct {
		waited, ending, want time.Duration
	}{
		{0, 0, time.Second},
		{100 * time.Millisecond, 0, 900 * time.Millisecond},
		{100 * time.Millisecond, 50 * time.Millisecond, 850 * time.Millisecond},
		{time.Hour, 0, 500 * time.Millisecond}, // a backlog: at most half the interval early
		{-time.Second, 0, time.Second},         // a clock ahead of ours
	} {
		ts, timer := newTransactions(100)
		ts.Ended(tc.ending)
		ts.Open(context.Background())
		if txn, _ := ts.TryJoin(0, 0, tc.waited); txn == nil {
			t.Fatal("the open transaction did not admit a message")
		}
		if timer.after != tc.want {
			t.Errorf("waited %v, last ending %v: closes after %v, want %v", tc.waited, tc.ending, timer.after, tc.want)
		}
	}
}
