package transport

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/flow"
	"github.com/pingpong/pingpong/source"
)

// partitionWorker is the Kafka edge of one partition's engine (flow.Partition): it hands the
// engine the partition's fetched records, in offset order, delivers the messages the engine
// releases to the router, tells it of their acks and nacks, and marks for commit what it says.
//
// The window counts from the lowest message not yet acked: a message that cannot be answered
// (its publishes failing, its nacks redelivered) stalls its partition after Window more
// messages, instead of letting the uncommitted stretch behind it grow without bound, and a
// restart answers at most Window messages of a partition again.
type partitionWorker struct {
	consumer  *consumer
	partition int32
	stop      chan struct{} // closed when the partition is revoked, lost or the consumer closes

	engine  *flow.Partition
	fetches *flow.Fetches[fetched]
	// position is the offset after the last record handed to the worker, -1 before the first.
	position atomic.Int64

	// ready holds the deliveries the engine released, in its order, for sendReady.
	readyMu sync.Mutex
	ready   []flow.Delivery
	wake    chan struct{}

	// sent queues the deliveries sent to the router, in the order sent, for awaitAcks: one
	// goroutine a partition waits for their acks in turn, rather than one a message. Its
	// capacity bounds what is in the router (the window and the deliveries of keys ahead of it).
	sent     chan sentMessage
	sendDone chan struct{} // closed when sendReady returns
	inRouter atomic.Int64  // messages sent and not yet acked or nacked
	// routerEmpty wakes reserve when inRouter drops to 0.
	routerEmpty chan struct{}

	// halted is set once the partition stops (halt).
	halted atomic.Bool

	// mark is the argument to MarkCommitOffsets, kept to save two maps per message; only the
	// engine, under its lock, uses it.
	mark map[string]map[int32]kgo.EpochOffset
}

func newPartitionWorker(c *consumer, partition int32) *partitionWorker {
	w := &partitionWorker{
		consumer:  c,
		partition: partition,
		stop:      make(chan struct{}),
		wake:      make(chan struct{}, 1),
		mark:      map[string]map[int32]kgo.EpochOffset{c.topic: {partition: {}}},
	}
	w.sent = make(chan sentMessage, max(c.cfg.Window, 1)*2)
	w.sendDone = make(chan struct{})
	w.routerEmpty = make(chan struct{}, 1)
	w.position.Store(-1)
	w.fetches = flow.NewFetches[fetched](w)
	w.engine = flow.New(flow.Config{
		Window:         c.cfg.Window,
		Budget:         c.budget,
		ResendSleep:    c.cfg.NackResendSleep,
		MaxResendSleep: c.cfg.MaxNackResendSleep,
	}, w)
	return w
}

// fetched is what a partition's worker is handed: the records of one fetch, or a batch that
// could not be decoded.
type fetched struct {
	records     []*kgo.Record
	undecodable *source.UndecodableBatch
	epoch       int32 // the undecodable batch's leader epoch
}

// outgoing is a record made a message, as the engine holds it: the message, and the context the
// subscriber gave it, for a redelivery (the router and the middleware replace the message's own).
type outgoing struct {
	msg *message.Message
	ctx *messageContext
	key string // the record key, shared with the source
}

// Pause implements flow.Pauser.
func (w *partitionWorker) Pause() { w.consumer.client.PauseFetchPartitions(w.topicPartition()) }

// Resume implements flow.Pauser.
func (w *partitionWorker) Resume() { w.consumer.client.ResumeFetchPartitions(w.topicPartition()) }

func (w *partitionWorker) topicPartition() map[string][]int32 {
	return map[string][]int32{w.consumer.topic: {w.partition}}
}

// enqueue hands the worker a fetched batch, at once; the poll loop never waits for a worker
// (flow.Fetches pauses the partition's fetches instead). A pause made while records of the
// partition were buffered in the client drops them there, and they are fetched again on resume.
func (w *partitionWorker) enqueue(batch fetched) {
	if n := len(batch.records); n > 0 {
		w.position.Store(batch.records[n-1].Offset + 1)
	} else if batch.undecodable != nil {
		w.position.Store(batch.undecodable.LastOffset + 1)
	}
	if !w.fetches.Push(batch) {
		w.discard(batch)
	}
}

// waitForRoom pauses the partition until the budget has room for its next batch, of n bytes
// decoded (0 when not known yet).
func (w *partitionWorker) waitForRoom(n int64) {
	w.fetches.WaitForRoom(n)
	select {
	case w.consumer.roomWanted <- struct{}{}:
	default:
	}
}

// roomFound resumes the partition if it waits for room and the budget has it now.
func (w *partitionWorker) roomFound() (stillWaiting bool) {
	return w.fetches.RoomFound(w.consumer.budget.Fits)
}

// halt stops the partition: nothing more is delivered, its pauses are lifted (a pause outlives
// the assignment: the next owner of the partition here must fetch it), and what was fetched and
// not delivered is dropped, to be read again by the next owner.
func (w *partitionWorker) halt() {
	// The engine first: it delivers nothing once stopped, so every delivery it made is in ready
	// before sendReady sees stop and gives back what it did not send.
	w.halted.Store(true)
	w.engine.Stop()
	close(w.stop)
	for _, batch := range w.fetches.Stop() {
		w.discard(batch)
	}
}

func (w *partitionWorker) discard(batch fetched) {
	for _, rec := range batch.records {
		w.consumer.recycle(rec)
	}
}

// run admits the partition's records into its engine until the partition stops.
func (w *partitionWorker) run() {
	defer w.consumer.senders.Done()
	for {
		select {
		case <-w.stop:
			return
		case <-w.fetches.Signal():
			for batch, ok := w.fetches.Next(); ok; batch, ok = w.fetches.Next() {
				if batch.undecodable != nil {
					if !w.admitUndecodable(batch) {
						return
					}
					continue
				}
				for i, rec := range batch.records {
					if !w.admit(rec) {
						w.discard(fetched{records: batch.records[i+1:]})
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

// WaitingOverheadBytes is what a message waiting behind its key is counted at beyond its
// request's bytes: its Watermill message, metadata, context and the engine's entry (under 1 KiB
// live), with room for the heap to grow. It takes MessageOverheadBytes and its answer's room
// once delivered.
const WaitingOverheadBytes = 2 << 10

// admit hands rec to the engine, which delivers it once its window, the budget and its key let
// it; false when the partition stopped. The record itself is recycled here: the message has
// copies of all it needs.
func (w *partitionWorker) admit(rec *kgo.Record) bool {
	size := recordBytes(rec)
	out := w.consumer.toMessage(rec)
	offset, epoch := rec.Offset, rec.LeaderEpoch
	w.consumer.recycle(rec) // before a wait for room: its fetched batch may be all that holds it
	key, ordered := flow.OrderingKey(w.consumer.cfg.Ordering, out.key)
	return w.engine.Admit(flow.Record{
		Offset: offset, Epoch: epoch, Key: key, Ordered: ordered,
		Held:    2*size + MessageOverheadBytes, // the request, and its answer
		Waiting: size + WaitingOverheadBytes,
		Msg:     out,
	})
}

// admitUndecodable hands over the message that stands for an undecodable batch; its offset is
// the batch's last, so that once it is acked the partition is committed past the batch.
func (w *partitionWorker) admitUndecodable(batch fetched) bool {
	src := source.Source{Topic: w.consumer.topic, Partition: w.partition, Offset: batch.undecodable.FirstOffset, Undecodable: batch.undecodable}
	msg := message.NewMessage(watermill.NewUUID(), nil)
	ctx := w.consumer.newMessageContext(src)
	msg.SetContext(ctx)
	return w.engine.Admit(flow.Record{
		Offset: batch.undecodable.LastOffset, Epoch: batch.epoch,
		Ordered: w.consumer.cfg.Ordering == OrderByPartition,
		Held:    MessageOverheadBytes,
		Msg:     &outgoing{msg: msg, ctx: ctx},
	})
}

// Deliver implements flow.Edge: the delivery goes to sendReady, in the engine's order.
func (w *partitionWorker) Deliver(d flow.Delivery) {
	w.readyMu.Lock()
	w.ready = append(w.ready, d)
	w.readyMu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// MarkCommit implements flow.Edge. In exactly-once mode the mark goes to the open transaction,
// which commits it; a stopped worker's marks are dropped there, since the partition is read again
// from its committed offset.
func (w *partitionWorker) MarkCommit(epoch int32, next int64) {
	if e := w.consumer.cfg.ExactlyOnce; e != nil {
		if !w.halted.Load() {
			e.txns.Mark(w.partition, flow.Mark{Epoch: epoch, Next: next})
		}
		return
	}
	w.mark[w.consumer.topic][w.partition] = kgo.EpochOffset{Epoch: epoch, Offset: next}
	w.consumer.client.MarkCommitOffsets(w.mark)
}

// sendReady sends the released deliveries to the router, and watches each for its ack, until the
// partition stops; what it can no longer send is given back to the engine as not answered.
func (w *partitionWorker) sendReady() {
	defer w.consumer.senders.Done()
	defer close(w.sendDone)
	var batch, parked []flow.Delivery
	var retry <-chan struct{} // closed when the parked deliveries may try to join again
	for {
		select {
		case <-w.wake:
		case <-retry:
		case <-w.stop:
			w.readyMu.Lock()
			batch, w.ready = w.ready, nil
			w.readyMu.Unlock()
			for _, d := range append(parked, batch...) {
				w.giveBack(d)
			}
			return
		}
		w.readyMu.Lock()
		if len(parked) == 0 { // the two slices swap, allocating nothing
			batch, w.ready = w.ready, batch[:0]
		} else {
			batch, w.ready = append(parked, w.ready...), batch[:0]
		}
		w.readyMu.Unlock()
		parked, retry = nil, nil
		for i, d := range batch {
			txn, wait, joined := w.join(d)
			if !joined {
				// Another delivery may still join: the open transaction waits for those
				// below its highest offset (flow.Transactions). The engine releases one
				// delivery of a key at a time, so these may go in any order.
				parked, retry = append(parked, d), wait
				continue
			}
			if !w.send(d, txn) {
				d.Done(false) // send took its top-up
				for _, rest := range append(parked, batch[i+1:]...) {
					w.giveBack(rest)
				}
				clear(batch)
				w.readyMu.Lock()
				rest := w.ready
				w.ready = nil
				w.readyMu.Unlock()
				for _, d := range rest {
					w.giveBack(d)
				}
				return
			}
		}
		clear(batch)
	}
}

// join admits d into the open transaction in exactly-once mode; when it cannot join yet, wait is
// closed once it may try again. Without transactions every delivery goes at once.
func (w *partitionWorker) join(d flow.Delivery) (txn *flow.Transaction, wait <-chan struct{}, joined bool) {
	e := w.consumer.cfg.ExactlyOnce
	if e == nil {
		return nil, nil, true
	}
	var waited time.Duration
	if src, ok := d.Msg().(*outgoing).ctx.src.(source.Source); ok && !src.Timestamp.IsZero() {
		waited = time.Since(src.Timestamp)
	}
	txn, wait = e.txns.TryJoin(w.partition, d.Offset(), waited)
	return txn, wait, txn != nil
}

// giveBack tells the engine that d, never sent, was not answered. The engine releases the whole
// room of its record, so the top-up of a delivery that waited behind its key is taken first.
func (w *partitionWorker) giveBack(d flow.Delivery) {
	w.consumer.budget.Force(d.TopUp())
	d.Done(false)
}

// send delivers d's message (a copy, on a redelivery: a Watermill message is acked once) and
// watches it; false if the partition stopped first. In exactly-once mode d has joined txn, which
// a message not sent leaves unanswered.
func (w *partitionWorker) send(d flow.Delivery, txn *flow.Transaction) bool {
	notSent := func() bool {
		if txn != nil {
			txn.Leave(false)
		}
		return false
	}
	select {
	case <-w.stop:
		w.consumer.budget.Force(d.TopUp()) // for the engine's count, which releases it
		return notSent()                   // stopping: prefer not to start another message
	default:
	}
	if n := d.TopUp(); n > 0 && !w.reserve(n) {
		return notSent()
	}
	out := d.Msg().(*outgoing)
	msg := out.msg
	ctx := out.ctx
	if d.Redelivered() {
		msg = msg.Copy()
		ctx = ctx.redelivery()
	}
	ctx.delivery = d
	parent := w.consumer.msgCtx
	if txn != nil {
		parent = txn.Context() // canceled if the transaction aborts: its retries stop
	}
	// Watermill's promise (its pub/sub suite's TestMessageCtx): a message's context is canceled
	// once the message is acked or nacked.
	var cancel context.CancelFunc
	ctx.Context, cancel = context.WithCancel(parent)
	msg.SetContext(ctx)
	select {
	case w.consumer.out <- msg:
	case <-w.stop:
		cancel()
		return notSent()
	}
	w.inRouter.Add(1)
	w.sent <- sentMessage{d, msg, cancel, txn}
	return true
}

// reserve takes n bytes of the budget for a message about to be handed over, waiting for room
// unless none of the partition's messages is in the router (then nothing of its own would free
// any: it takes the room at once, so every partition can always move). If the partition stops
// first it takes the room anyway, for the engine's count, which releases it, and says false.
func (w *partitionWorker) reserve(n int64) bool {
	b := w.consumer.budget
	for {
		released := b.Released()
		if b.TryAcquire(n) {
			return true
		}
		if w.inRouter.Load() == 0 {
			b.Force(n)
			return true
		}
		select {
		case <-released:
		case <-w.routerEmpty:
		case <-w.stop:
			b.Force(n)
			return false
		}
	}
}

// sentMessage is a delivery in the router.
type sentMessage struct {
	d      flow.Delivery
	msg    *message.Message
	cancel context.CancelFunc // of the message's context
	txn    *flow.Transaction  // exactly-once: the transaction it was answered in
}

// awaitAcks tells the engine, for each message sent to the router in turn, whether it was acked
// or nacked; a message still in the router when the drain times out is given up. Waiting in the
// order sent costs one goroutine a partition instead of one a message; under load the messages
// behind a slow one are mostly acked already when their turn comes. The engine needs no earlier
// word: a key's next message goes when the answer is queued, and a rewind or the commit waits
// for these in any case.
func (w *partitionWorker) awaitAcks() {
	defer w.consumer.senders.Done()
	for {
		var s sentMessage
		select {
		case s = <-w.sent:
		default:
			select {
			case s = <-w.sent:
			case <-w.sendDone:
				// sendReady is gone; its last send may have come after the look above, and
				// select picks either of two ready cases.
				if len(w.sent) == 0 {
					return // everything it sent is seen to
				}
				continue
			}
		}
		acked := w.acked(s.msg)
		s.d.Done(acked) // marks its offset, if it is the lowest not yet answered
		if s.txn != nil {
			s.txn.Leave(acked)
		}
		s.cancel()
		w.returned()
	}
}

// returned counts a message out of the router, and wakes reserve once none is left.
func (w *partitionWorker) returned() {
	if w.inRouter.Add(-1) == 0 {
		select {
		case w.routerEmpty <- struct{}{}:
		default: // reserve has a wake-up waiting already
		}
	}
}

// acked waits for msg's ack or nack, or the drain's end.
func (w *partitionWorker) acked(msg *message.Message) bool {
	select {
	case <-msg.Acked():
		return true
	default:
	}
	select {
	case <-msg.Acked():
		return true
	case <-msg.Nacked():
		return false
	case <-w.consumer.msgCtx.Done():
		select { // an ack wins over a drain that timed out meanwhile
		case <-msg.Acked():
			return true
		default:
			return false
		}
	}
}

var _ context.Context = (*messageContext)(nil)
