package flow

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pingpong/pingpong/app/budget"
)

// edge records what the engine asks of the Kafka side.
type edge struct {
	delivered []Delivery
	commits   []int64
	budget    *budget.Budget // takes the deliveries' top-ups, when set
}

func (e *edge) Deliver(d Delivery) {
	if e.budget != nil {
		e.budget.Force(d.TopUp())
	}
	e.delivered = append(e.delivered, d)
}
func (e *edge) MarkCommit(_ int32, next int64) { e.commits = append(e.commits, next) }
func (e *edge) committed() int64               { return lastOr(e.commits, 0) }
func lastOr(s []int64, or int64) int64         { return append([]int64{or}, s...)[len(s)] }
func (e *edge) take() []Delivery               { d := e.delivered; e.delivered = nil; return d }
func names(ds []Delivery) string               { return strings.Join(namesOf(ds), " ") }
func namesOf(ds []Delivery) (n []string) {
	for _, d := range ds {
		n = append(n, d.Msg().(string))
	}
	return n
}
func find(ds []Delivery, name string) Delivery {
	return ds[slices.IndexFunc(ds, func(d Delivery) bool { return d.Msg() == name })]
}

// timers holds the engine's pauses until the test fires them.
type timers struct{ pending []func() }

func (t *timers) after(_ time.Duration, f func()) { t.pending = append(t.pending, f) }
func (t *timers) fire() {
	p := t.pending
	t.pending = nil
	for _, f := range p {
		f()
	}
}

type rec struct{ key, name string }

// five is the records of the ordering tests: a b c d e, keys k1 k2 k1 (none) k1.
var five = []rec{{"k1", "a"}, {"k2", "b"}, {"k1", "c"}, {"", "d"}, {"k1", "e"}}

func start(t *testing.T, ordering Ordering, window int, recs []rec) (*Partition, *edge, *timers) {
	t.Helper()
	e, tm := &edge{}, &timers{}
	p := New(Config{Window: window, AfterFunc: tm.after}, e)
	for i, r := range recs {
		key, ordered := OrderingKey(ordering, r.key)
		if !p.Admit(Record{Offset: int64(i), Key: key, Ordered: ordered, Held: 1, Msg: r.name}) {
			t.Fatalf("record %s not admitted", r.name)
		}
	}
	return p, e, tm
}

// A key's next record goes once the answer of the one before it is queued in the producer (or,
// failing a queued signal, once it is answered); records of other keys and records without a
// key do not wait. Partition and none modes for comparison.
func TestARecordWaitsUntilTheAnswerBeforeItIsQueued(t *testing.T) {
	for _, tc := range []struct {
		ordering              Ordering
		first, queue, thenOne string
	}{
		{ByKey, "a b d", "a", "c"},
		{ByPartition, "a", "a", "b"},
		{None, "a b c d e", "a", ""},
	} {
		t.Run(string(tc.ordering), func(t *testing.T) {
			for _, signal := range []string{"queued", "acked"} {
				_, e, _ := start(t, tc.ordering, 8, five)
				first := e.take()
				if got := names(first); got != tc.first {
					t.Fatalf("delivered at once: %q, want %q", got, tc.first)
				}
				d := find(first, tc.queue)
				if signal == "queued" {
					if ok, _ := d.Queue(Destination{Topic: "t"}, nil); !ok {
						t.Fatal("a current delivery's answer refused")
					}
				} else {
					d.Done(true)
				}
				if got := names(e.take()); got != tc.thenOne {
					t.Fatalf("after %s's answer is %s: %q delivered, want %q", tc.queue, signal, got, tc.thenOne)
				}
			}
		})
	}
}

// A handler that fails before it publishes anything keeps the next record of its key waiting;
// the failed record is delivered again after the resend pause, and the key goes on from it.
func TestAFailureBeforeAnyAnswerKeepsTheKeyWaiting(t *testing.T) {
	_, e, tm := start(t, ByKey, 8, five)
	a := find(e.take(), "a")
	a.Done(false)
	if got := names(e.take()); got != "" {
		t.Fatalf("after a's nack: %q delivered, want nothing until the pause", got)
	}
	tm.fire()
	again := e.take()
	if names(again) != "a" || !again[0].Redelivered() {
		t.Fatalf("after the pause: %q delivered, want a again", names(again))
	}
	a.Queue(Destination{Topic: "t"}, nil) // the first delivery's answer comes late: refused, and lets nothing go
	if got := names(e.take()); got != "" {
		t.Fatalf("a stale answer let %q go", got)
	}
	again[0].Queue(Destination{Topic: "t"}, nil)
	if got := names(e.take()); got != "c" {
		t.Fatalf("after a's answer is queued: %q, want c", got)
	}
}

// The offset marked for commit follows the lowest record not answered, whatever order the answers
// come in; the window counts from it.
func TestTheCommitFollowsTheLowestUnansweredRecord(t *testing.T) {
	_, e, _ := start(t, None, 8, five)
	ds := e.take()
	for _, step := range []struct {
		ack  string
		want int64
	}{{"b", 0}, {"c", 0}, {"a", 3}, {"e", 3}, {"d", 5}} {
		find(ds, step.ack).Done(true)
		if got := e.committed(); got != step.want {
			t.Fatalf("after %s is answered: committed %d, want %d (marks %v)", step.ack, got, step.want, e.commits)
		}
	}
}

func TestTheWindowHoldsAdmissionUntilTheLowestIsAnswered(t *testing.T) {
	e := &edge{}
	p := New(Config{Window: 2}, e)
	p.Admit(Record{Offset: 0, Held: 1, Msg: "a"})
	p.Admit(Record{Offset: 1, Held: 1, Msg: "b"})
	admitted := make(chan bool)
	go func() { admitted <- p.Admit(Record{Offset: 2, Held: 1, Msg: "c"}) }()
	ds := e.take()
	find(ds, "b").Done(true)
	select {
	case <-admitted:
		t.Fatal("a third record admitted past a window of 2 while the lowest is not answered")
	case <-time.After(50 * time.Millisecond):
	}
	find(ds, "a").Done(true)
	if !<-admitted {
		t.Fatal("not admitted")
	}
	if p.Held() != 1 {
		t.Fatalf("%d held, want c alone", p.Held())
	}
}

// Admission waits for room in the budget, except for a partition that holds nothing.
func TestAdmissionWaitsForTheBudget(t *testing.T) {
	b := budget.New(100)
	e := &edge{}
	p := New(Config{Window: 8, Budget: b}, e)
	if !p.Admit(Record{Offset: 0, Held: 150, Msg: "a"}) {
		t.Fatal("a record larger than the budget refused while nothing is held: it would wait for ever")
	}
	admitted := make(chan bool)
	go func() { admitted <- p.Admit(Record{Offset: 1, Held: 10, Msg: "b"}) }()
	select {
	case <-admitted:
		t.Fatal("admitted past the budget")
	case <-time.After(50 * time.Millisecond):
	}
	e.take()[0].Done(true)
	if !<-admitted || b.Used() != 10 {
		t.Fatalf("budget used %d, want b's 10", b.Used())
	}
	p.Stop()
	e.take()[0].Done(false)
	<-p.Idle()
	if b.Used() != 0 {
		t.Fatalf("%d bytes held after the partition stopped and its deliveries returned", b.Used())
	}
}

// A failed publish after the key's next record was handed on rewinds the key: the later
// deliveries' answers are refused, and once every delivery of the key is back the key is
// delivered again from the failed record. Other keys go on; the commit does not pass it.
func TestAFailedAnswerRewindsItsKey(t *testing.T) {
	_, e, tm := start(t, ByKey, 8, five)
	ds := e.take()
	a := find(ds, "a")
	a.Queue(Destination{Topic: "t"}, nil)
	c := e.take()[0]
	c.Queue(Destination{Topic: "t"}, nil)
	ev := e.take()[0]
	a.Failed()
	if ok, _ := ev.Queue(Destination{Topic: "t"}, nil); ok || !ev.Stale() {
		t.Fatal("an answer of the key after the failed one was let into the producer")
	}
	find(ds, "b").Done(true)
	find(ds, "d").Done(true)
	a.Done(true) // a retry published a's answer after the failure: stale, so a is answered again
	c.Done(false)
	tm.fire()
	if got := names(e.take()); got != "" {
		t.Fatalf("%q delivered while e's stale delivery is still in the handlers", got)
	}
	ev.Done(false)
	if len(e.commits) != 0 {
		t.Fatalf("committed %v while a was not answered", e.commits)
	}
	tm.fire()
	var order []string
	for range 3 {
		d := e.take()
		if len(d) != 1 {
			t.Fatalf("after the rewind %v delivered at once (so far %v), want one at a time", namesOf(d), order)
		}
		order = append(order, d[0].Msg().(string))
		d[0].Queue(Destination{Topic: "t"}, nil)
		d[0].Done(true)
	}
	if strings.Join(order, " ") != "a c e" {
		t.Fatalf("redelivered %v, want a c e", order)
	}
	if e.committed() != 5 {
		t.Fatalf("committed %d, want 5", e.committed())
	}
}

// A failed publish before anything of its key was handed on is not a rewind: the key waits for
// the record's next attempt (Retry, the poison queue).
func TestAFailedAnswerWithNothingAfterItWaitsForTheNextAttempt(t *testing.T) {
	_, e, _ := start(t, ByPartition, 8, five)
	a := e.take()[0]
	a.Failed() // nothing handed on yet
	if got := names(e.take()); got != "" {
		t.Fatalf("after a failed answer %q delivered", got)
	}
	if ok, _ := a.Queue(Destination{Topic: "t"}, nil); !ok || names(e.take()) != "b" {
		t.Fatal("a's retried answer did not let b go")
	}
}

// Stopping drops what waits, lets what is in the handlers finish and still marks it for commit.
func TestAStoppedPartitionDrainsItsDeliveries(t *testing.T) {
	p, e, _ := start(t, ByKey, 8, five)
	ds := e.take()
	p.Stop()
	if p.Admit(Record{Offset: 5, Msg: "f"}) {
		t.Fatal("admitted after Stop")
	}
	a := find(ds, "a")
	a.Queue(Destination{Topic: "t"}, nil)
	if got := names(e.take()); got != "" {
		t.Fatalf("%q delivered after Stop", got)
	}
	select {
	case <-p.Idle():
		t.Fatal("idle with deliveries in the handlers")
	default:
	}
	for _, d := range ds {
		d.Done(true)
	}
	<-p.Idle()
	if e.committed() != 2 {
		t.Fatalf("committed %d, want 2 (a and b answered; c never delivered)", e.committed())
	}
}

// Answers of one transaction id to different topics have no order in the producer: an answer
// to another topic waits until the earlier answers with its key are acknowledged. Answers with
// another key are not ordered with it, and do not wait.
func TestAnAnswerToAnotherTopicWaitsForTheEarlierOnesAck(t *testing.T) {
	_, e, _ := start(t, ByKey, 8, five)
	a := find(e.take(), "a")
	a.Queue(Destination{Topic: "succeeded", Key: "tx"}, nil)
	c := e.take()[0]
	ok, wait := c.Queue(Destination{Topic: "failed", Key: "tx"}, func() { t.Fatal("queued beside an unacknowledged answer of its key to another topic") })
	if ok || wait == nil {
		t.Fatal("not told to wait")
	}
	a.Done(true)
	<-wait
	if ok, _ := c.Queue(Destination{Topic: "failed", Key: "tx"}, nil); !ok {
		t.Fatal("refused once the earlier answer was acknowledged")
	}
}

func TestAnAnswerWithAnotherKeyToAnotherTopicDoesNotWait(t *testing.T) {
	_, e, _ := start(t, ByKey, 8, five)
	a := find(e.take(), "a")
	a.Queue(Destination{Topic: "succeeded", Key: "tx-1"}, nil)
	c := e.take()[0]
	queued := false
	if ok, wait := c.Queue(Destination{Topic: "failed", Key: "tx-2"}, func() { queued = true }); !ok || wait != nil || !queued {
		t.Fatalf("an answer of another transaction id: queued %v, ok %v, told to wait %v", queued, ok, wait != nil)
	}
}

// Records waiting behind a busy key do not count in the window: the records of other keys behind
// a key's backlog go on, as far as the budget and the key's fair share of it let them.
func TestOtherKeysGoOnPastAKeysBacklog(t *testing.T) {
	hot := []rec{{"hot", "h0"}, {"hot", "h1"}, {"hot", "h2"}, {"hot", "h3"}, {"hot", "h4"}, {"cold", "c"}}
	_, e, _ := start(t, ByKey, 2, hot)
	if got := names(e.take()); got != "h0 c" {
		t.Fatalf("delivered %q with a window of 2, want h0 and c past the hot key's backlog", got)
	}
}

func TestAKeysBacklogHoldsAtMostItsFairShareOfTheBudget(t *testing.T) {
	b := budget.New(400) // a key's waiting records: at most 100 bytes
	e := &edge{budget: b}
	p := New(Config{Window: 100, Budget: b}, e)
	admit := func(i int) bool {
		return p.Admit(Record{Offset: int64(i), Key: "hot", Ordered: true, Held: 50, Waiting: 40, Msg: strconv.Itoa(i)})
	}
	for i := range 3 { // one delivered, two behind it
		admit(i)
	}
	if used := b.Used(); used != 50+40+40 {
		t.Fatalf("budget used %d, want 130 (the delivered record's 50, 40 each behind it)", used)
	}
	admitted := make(chan bool)
	go func() { admitted <- admit(3) }()
	select {
	case <-admitted:
		t.Fatal("a third record admitted behind the key past its fair share")
	case <-time.After(50 * time.Millisecond):
	}
	first := e.take()[0]
	first.Queue(Destination{Topic: "t"}, nil) // the second goes: one behind left
	if !<-admitted {
		t.Fatal("not admitted")
	}
	if used := b.Used(); used != 50+50+40+40 {
		t.Fatalf("budget used %d, want 180", used)
	}
}

// A rewind waits for every delivery of its key to come back; the last one back may be a current
// delivery of a record before the failed one (its answer, to another transaction id, still on
// its way when the failed one's was refused), and the key must still start over from the failed
// record, or it and the partition's commit stop for good.
func TestARewindGoesOnWhenTheLastDeliveryBackIsOfAnEarlierRecord(t *testing.T) {
	_, e, tm := start(t, ByKey, 8, []rec{{"k", "x"}, {"k", "a"}, {"k", "c"}})
	x := e.take()[0]
	x.Queue(Destination{Topic: "t", Key: "tx-1"}, nil)
	a := e.take()[0]
	a.Queue(Destination{Topic: "t", Key: "tx-2"}, nil)
	c := e.take()[0]
	a.Failed() // tx-2's partition refused a's answer; x's is still on its way
	a.Done(false)
	c.Done(false)
	x.Done(true) // x's answer acknowledged: the last of the key's deliveries back
	tm.fire()
	if got := names(e.take()); got != "a" {
		t.Fatalf("after the rewind, once every delivery of the key is back: %q delivered, want a again", got)
	}
}
