package transport

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/budget"
	"github.com/pingpong/pingpong/app/flow"
	"github.com/pingpong/pingpong/source"
)

// brokerlessWorker is a partition's worker with its sender and ack watcher running and no client:
// what it delivers goes to the consumer's out, which the test reads (or not) as the router.
func brokerlessWorker(t *testing.T, b *budget.Budget) (*consumer, *partitionWorker) {
	t.Helper()
	c := newConsumer(FranzSubscriberConfig{Window: 8, Budget: b, Ordering: OrderByKey, NackResendSleep: time.Hour, MaxNackResendSleep: time.Hour}, "t", watermill.NopLogger{})
	w := newPartitionWorker(c, 0)
	c.senders.Add(2)
	go w.sendReady()
	go w.awaitAcks()
	return c, w
}

// admitKeyed admits a record of key holding 100 bytes of the budget once delivered, 10 while it
// waits behind its key.
func admitKeyed(t *testing.T, c *consumer, w *partitionWorker, offset int64, key string) {
	t.Helper()
	msg := message.NewMessage(watermill.NewUUID(), nil)
	ctx := c.newMessageContext(source.Source{Topic: "t", Offset: offset, Key: []byte(key)})
	msg.SetContext(ctx)
	if !w.engine.Admit(flow.Record{Offset: offset, Key: key, Ordered: true, Held: 100, Waiting: 10, Msg: &outgoing{msg: msg, ctx: ctx, key: key}}) {
		t.Fatalf("offset %d not admitted", offset)
	}
}

func routed(t *testing.T, c *consumer) *message.Message {
	t.Helper()
	select {
	case m := <-c.out:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("nothing delivered")
		return nil
	}
}

func deliveryOf(m *message.Message) flow.Delivery {
	return *m.Context().Value(deliveryKey{}).(*flow.Delivery)
}

func idleWithin(t *testing.T, w *partitionWorker) {
	t.Helper()
	select {
	case <-w.engine.Idle():
	case <-time.After(5 * time.Second):
		t.Fatal("the stopped partition never idle: a delivery of it is counted in the handlers for ever, and a drain waits its whole timeout")
	}
}

// A revoke gives back the deliveries the partition released and never sent to the router. One
// that waited behind its key takes the rest of its room only when it is sent (its top-up); given
// back unsent, the engine releases its whole room, so the top-up it never took must be taken
// first, or the budget counts less than is held from then on.
func TestARevokeGivesBackTheBudgetOfUnsentDeliveriesExactly(t *testing.T) {
	b := budget.New(1 << 20)
	c, w := brokerlessWorker(t, b)
	admitKeyed(t, c, w, 0, "k")
	a := routed(t, c)
	admitKeyed(t, c, w, 1, "u")                                  // delivered; the router does not take it: the sender waits
	admitKeyed(t, c, w, 2, "k")                                  // behind a
	deliveryOf(a).Queue(flow.Destination{Topic: "answers"}, nil) // the offset-2 record is released, unsent
	w.halt()
	a.Nack()
	idleWithin(t, w)
	if used := b.Used(); used != 0 {
		t.Fatalf("budget used %d once the revoked partition is idle, want 0", used)
	}
}

// A revoke stops the partition while its deliveries still come back and its answers are still
// queued: an answer queued as the revoke begins releases its key's next record. That delivery
// must reach the sender, which gives it back, or it is counted in the handlers for ever: the
// partition is never idle (every drain of it waits its whole timeout) and its room is never
// released.
func TestAKeysNextRecordReleasedAsTheRevokeBeginsIsGivenBack(t *testing.T) {
	b := budget.New(1 << 20)
	c, w := brokerlessWorker(t, b)
	admitKeyed(t, c, w, 0, "k")
	a := routed(t, c)
	admitKeyed(t, c, w, 1, "k") // behind a
	inQueue, proceed := make(chan struct{}), make(chan struct{})
	go deliveryOf(a).Queue(flow.Destination{Topic: "answers"}, func() { close(inQueue); <-proceed })
	<-inQueue // a's answer is being queued
	halted := make(chan struct{})
	go func() { w.halt(); close(halted) }()
	select { // the revoke has begun: the sender may be gone already
	case <-w.sendDone:
	case <-time.After(200 * time.Millisecond):
	}
	close(proceed) // a's answer is queued: the offset-1 record is released
	<-halted
	a.Nack()
	idleWithin(t, w)
	if used := b.Used(); used != 0 {
		t.Fatalf("budget used %d once the revoked partition is idle, want 0", used)
	}
}

// A rebalance may revoke a partition while the poll loop still hands over what its last poll
// returned (franz-go: the revoke "can be called at any time you are polling or processing
// records"). Those records must not start the partition again here: the member no longer owns
// it, and the new worker's commits, in order from its first record only, would mark past the
// revoked worker's unanswered records, which the revoke's commit then writes.
func TestRecordsPolledBeforeARevokeAreNotDeliveredAfterIt(t *testing.T) {
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1")) // never reached: no group, no fetch
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	c := newConsumer(FranzSubscriberConfig{Window: 8, Budget: budget.New(1 << 20), Ordering: OrderByKey}, "t", watermill.NopLogger{})
	c.client = cl
	ctx := context.Background()
	polled := func(offset int64) kgo.FetchTopicPartition {
		return kgo.FetchTopicPartition{Topic: "t", FetchPartition: kgo.FetchPartition{Partition: 0, Records: []*kgo.Record{
			{Topic: "t", Partition: 0, Offset: offset, Key: []byte("k" + strconv.FormatInt(offset, 10)), Value: []byte("v")},
		}}}
	}
	c.assigned(ctx, cl, map[string][]int32{"t": {0}})
	c.handOver(polled(0))
	first := routed(t, c)
	c.lost(ctx, cl, map[string][]int32{"t": {0}})
	c.handOver(polled(1)) // returned by the poll before the partition was lost
	select {
	case m := <-c.out:
		t.Fatalf("offset %d of a partition lost before it was handed over was delivered", offsetOf(m))
	case <-time.After(200 * time.Millisecond):
	}
	first.Nack()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.partitions) != 0 {
		t.Fatalf("a worker for partitions %v, which this member does not own", c.partitions)
	}
}

func offsetOf(m *message.Message) int64 { return FranzSource(m).Offset }

// releases records what the engine asks of a stress test's edge.
type releases struct{ delivered []flow.Delivery }

func (r *releases) Deliver(d flow.Delivery) { r.delivered = append(r.delivered, d) }
func (r *releases) MarkCommit(int32, int64) {}

// The ack watcher tells the engine of every message the sender sent, even one sent just before
// the sender returned: left in sent, it would be counted in the handlers for ever (the partition
// never idle, its room never released). The sender's last send and its return race the watcher's
// look at sent; this repeats that race.
func TestTheAckWatcherSeesEveryMessageSentBeforeTheSenderReturned(t *testing.T) {
	for i := range 20_000 {
		edge := &releases{}
		engine := flow.New(flow.Config{Window: 2}, edge)
		for o := range int64(2) {
			engine.Admit(flow.Record{Offset: o, Held: 1})
		}
		c := &consumer{msgCtx: context.Background()}
		w := &partitionWorker{consumer: c, sent: make(chan sentMessage, 2), sendDone: make(chan struct{}), routerEmpty: make(chan struct{}, 1)}
		c.senders.Add(1)
		go w.awaitAcks()
		for _, d := range edge.delivered {
			msg := message.NewMessage(watermill.NewUUID(), nil)
			msg.Ack()
			w.inRouter.Add(1)
			w.sent <- sentMessage{d: d, msg: msg, cancel: func() {}}
		}
		close(w.sendDone)
		c.senders.Wait()
		engine.Stop()
		select {
		case <-engine.Idle():
		default:
			t.Fatalf("run %d: a message sent before the sender returned was never reported: the partition is never idle", i)
		}
	}
}
