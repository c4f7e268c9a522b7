package flow

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pingpong/pingpong/app/budget"
)

// The engine's promises under random events: deliveries answered, nacked or failing in any
// order, a producer that fails an answer and every answer of its key queued after it (as
// franz-go fails every record buffered behind a failed one of its partition), and partitions
// revoked and taken over from their committed offset:
//
//   - a commit never passes a record without an acknowledged answer;
//   - the answers that reach the topic leave in request order per key: when the answer of a
//     record lands, every earlier record of its key has had an answer land before it (answers
//     given again after a rewind or a takeover count: they repeat, they do not overtake);
//   - every record is answered in the end, the commit reaches the end, and the budget is all
//     given back.
func TestPropertyAnswersKeepTheirKeysOrderAndCommitsNeverPassAnUnansweredRecord(t *testing.T) {
	for _, ordering := range []Ordering{ByKey, ByPartition} {
		for seed := range uint64(300) {
			t.Run(fmt.Sprintf("%s/%d", ordering, seed), func(t *testing.T) {
				t.Parallel()
				runModel(t, ordering, rand.New(rand.NewPCG(seed, 7)))
			})
		}
	}
}

// answer is an answer in the modelled producer.
type answer struct {
	offset  int64
	key     string
	d       *inFlight
	pending bool
}

// inFlight is a delivery in the modelled handlers.
type inFlight struct {
	d         Delivery
	offset    int64
	answers   int // pending answers
	succeeded bool
}

type model struct {
	t        *testing.T
	r        *rand.Rand
	ordering Ordering
	keys     []string
	// landed is, per key, the offsets whose answers reached the topic, in order.
	landed   map[string][]int64
	answered map[int64]bool // offsets with an acknowledged answer
	producer []*answer      // answers queued, in order; pending until they land or fail
	handlers []*inFlight
	timers   timers
	commit   int64 // the group's committed offset
	next     int64 // the next offset to admit
	p        *Partition
	window   int
	budget   *budget.Budget
}

func (m *model) Deliver(d Delivery) {
	m.budget.Force(d.TopUp())
	m.handlers = append(m.handlers, &inFlight{d: d, offset: d.e.Offset})
}

func (m *model) MarkCommit(_ int32, next int64) {
	for o := m.commit; o < next; o++ {
		if !m.answered[o] {
			m.t.Fatalf("commit %d passes offset %d, which has no acknowledged answer", next, o)
		}
	}
	if next < m.commit {
		m.t.Fatalf("commit went back from %d to %d", m.commit, next)
	}
	m.commit = next
}

func runModel(t *testing.T, ordering Ordering, r *rand.Rand) {
	const n = 60
	m := &model{t: t, r: r, ordering: ordering, landed: map[string][]int64{}, answered: map[int64]bool{}, window: 1 + r.IntN(8), budget: budget.New(1 << 20)}
	for range n {
		m.keys = append(m.keys, fmt.Sprintf("k%d", r.IntN(4)))
	}
	m.takeOver()
	for step := 0; step < 20_000 && !m.finished(n); step++ {
		switch x := r.IntN(100); {
		case x < 20 && m.next < n && m.p.Held() < m.window:
			key, ordered := OrderingKey(ordering, m.keys[m.next])
			m.p.Admit(Record{Offset: m.next, Key: key, Ordered: ordered, Held: 5, Waiting: 2})
			m.next++
		case x < 45:
			m.handle()
		case x < 70:
			m.produce(r.IntN(10) == 0)
		case x < 75:
			m.timers.fire()
		case x == 75:
			m.revoke()
		}
	}
	if !m.finished(n) {
		t.Fatalf("not finished: committed %d of %d, %d in the handlers, %d answers pending", m.commit, n, len(m.handlers), len(m.producer))
	}
	for o := range int64(n) {
		if !m.answered[o] {
			t.Fatalf("offset %d never answered", o)
		}
	}
	if used := m.budget.Used(); used != 0 {
		t.Fatalf("%d bytes of the budget still held once everything was answered", used)
	}
}

func (m *model) finished(n int64) bool { return m.commit == n }

// takeOver starts the partition again from its committed offset, as its next owner.
func (m *model) takeOver() {
	m.p = New(Config{Window: m.window, AfterFunc: m.timers.after, Budget: m.budget}, m)
	m.next = m.commit
}

// handle moves a delivery on: it publishes its answer, or returns (acked once its answer landed,
// nacked otherwise: its handler failed, or its publish did).
func (m *model) handle() {
	if len(m.handlers) == 0 {
		return
	}
	i := m.r.IntN(len(m.handlers))
	h := m.handlers[i]
	switch {
	case h.answers > 0:
		return // waits for its publish
	case h.succeeded:
		h.d.Done(true)
	case m.r.IntN(4) == 0:
		h.d.Done(false)
	default:
		key := m.keys[h.offset]
		if ok, _ := h.d.Queue(Destination{Topic: "answers"}, func() { m.producer = append(m.producer, &answer{offset: h.offset, key: key, d: h, pending: true}) }); ok {
			h.answers++
		}
		return
	}
	m.handlers = slices.Delete(m.handlers, i, i+1)
}

// produce lands the oldest pending answer, or fails it and every answer of its key queued
// after it.
func (m *model) produce(fail bool) {
	if len(m.producer) == 0 {
		return
	}
	a := m.producer[0]
	if !fail {
		m.producer = m.producer[1:]
		a.d.answers--
		a.d.succeeded = true
		m.answered[a.offset] = true
		m.check(a)
		m.landed[a.key] = append(m.landed[a.key], a.offset)
		return
	}
	var failed []*answer
	m.producer = slices.DeleteFunc(m.producer, func(b *answer) bool {
		if b.key == a.key {
			failed = append(failed, b)
			return true
		}
		return false
	})
	for _, b := range failed {
		b.d.answers--
		b.d.d.Failed()
	}
}

// check fails the test if a lands before an earlier record of its key has an answer on the topic.
func (m *model) check(a *answer) {
	if m.ordering == None {
		return
	}
	for o := int64(0); o < a.offset; o++ {
		if m.keys[o] != a.key { // each key's answers go to one partition of the answer topics
			continue
		}
		if !slices.Contains(m.landed[a.key], o) {
			m.t.Fatalf("the answer of %d (key %s) lands before any answer of %d; landed %v", a.offset, a.key, o, m.landed)
		}
	}
}

// revoke stops the partition, lets its deliveries finish, and starts it again from the commit.
func (m *model) revoke() {
	m.p.Stop()
	for len(m.handlers) > 0 || len(m.producer) > 0 {
		m.produce(m.r.IntN(5) == 0)
		m.handle()
	}
	select {
	case <-m.p.Idle():
	default:
		m.t.Fatal("not idle once every delivery returned")
	}
	m.takeOver()
}
