// Package flow decides, for one partition of the input topic, when each fetched record is handed
// to the handlers and which offset may be committed, and, in exactly-once mode, which messages go
// in which Kafka transaction (Transactions). It knows no Kafka client: the subscriber
// (app/transport) feeds it records in offset order and carries out what it decides through Edge.
//
// The rules, for a partition:
//
//   - Window: at most Window records are held at once, counted from the lowest one not yet
//     answered, and only as many as the memory budget holds (Admit waits for both).
//   - Order: in ByKey mode a record waits for the records of its key before it, in ByPartition
//     mode for every record before it, in None mode for nothing. It waits only until the answer
//     of the one before it is queued in the producer (Delivery.Queue), not until the broker
//     acknowledged it: the producer keeps one partition's records in the order it was given
//     them, and every answer of a key goes to one partition.
//   - Commit: the offset after a record is marked for commit only once it and every record
//     before it are answered (Delivery.Done with acked true).
//   - Rewind: when an answer fails to publish (Delivery.Failed) or its message is nacked after
//     a later message of its key was handed on, the key stops: its deliveries still in the
//     handlers are made stale (their answers are refused: Queue returns false), and once they
//     have all returned, the key is delivered again from the failed record, in order. A record
//     whose answer failed before anything of its key was handed on is not rewound: its next
//     attempt (Retry, the poison queue, or a redelivery after a nack) goes on from it.
package flow

import (
	"sync"
	"time"

	"github.com/pingpong/pingpong/app/budget"
)

// Ordering is which records of a partition are handled one after another, in offset order.
type Ordering string

const (
	// ByKey handles the records of one key one after another and the others concurrently, as
	// Confluent's Parallel Consumer does in its KEY mode. Records without a key wait for nothing.
	ByKey Ordering = "key"
	// ByPartition handles a partition's records one after another.
	ByPartition Ordering = "partition"
	// None lets any record of the window run beside any other.
	None Ordering = "none"
)

// Config configures a Partition.
type Config struct {
	// Window is how many records may be held at once, counted from the lowest one not yet
	// answered (at least 1).
	Window int
	// Budget bounds the bytes the partition's records hold, shared with the other partitions.
	Budget *budget.Budget
	// ResendSleep is the pause before a nacked or rewound record is delivered again; it doubles
	// each time the same record comes back, up to MaxResendSleep.
	ResendSleep, MaxResendSleep time.Duration
	// AfterFunc runs f after d; nil means time.AfterFunc (tests replace it).
	AfterFunc func(d time.Duration, f func())
}

// Edge is what the engine asks of the Kafka side. The Partition calls it with its lock held, so
// its methods must not block and must not call the Partition back.
type Edge interface {
	// Deliver hands d's record to the handlers (again, on a redelivery).
	Deliver(d Delivery)
	// MarkCommit marks next, the offset after the last record answered in order, for the next
	// commit; epoch is that record's leader epoch.
	MarkCommit(epoch int32, next int64)
}

// Record is what the engine holds of a fetched record.
type Record struct {
	// Offset is where the record is; once answered, Offset+1 may be committed. A record that
	// stands for several offsets (an undecodable batch) gives the last.
	Offset int64
	Epoch  int32
	// Key is the ordering key; Ordered says whether the record waits for the earlier records of
	// its key (see OrderingKey).
	Key     string
	Ordered bool
	// Held is the bytes of the budget the record holds from its delivery until it is answered
	// or dropped; Waiting, what it holds before, while it waits behind its key (its message,
	// without the handler's goroutine nor its answer).
	Held, Waiting int64
	// Msg is the edge's message for the record; the engine does not look at it.
	Msg any
}

// OrderingKey is the key a record with key waits on under ordering, and whether it waits at all.
func OrderingKey(ordering Ordering, key string) (string, bool) {
	switch ordering {
	case ByPartition:
		return "", true
	case None:
		return "", false
	}
	return key, key != ""
}

type state uint8

const (
	waiting   state = iota // held, not in the handlers
	delivered              // in the handlers, its answer not queued yet
	queued                 // its answer is queued in the producer: the next of its key may go
	acked                  // answered: its answer acknowledged
)

// entry is a held record.
type entry struct {
	Record
	state    state
	gen      uint32 // the current delivery; older ones are stale
	sleep    time.Duration
	out      int // deliveries of it still in the handlers
	released bool
	taken    int64       // bytes of the budget held
	behind   bool        // admitted behind its key and not delivered yet
	dest     Destination // where its answer was queued
	key      *keyState
	own      keyState // the key of a record that waits for nothing
}

// keyState is the held records of one ordering key, in offset order.
type keyState struct {
	entries []*entry
	// out counts the key's deliveries in the handlers; a rewind waits for it to reach 0.
	out int
	// waiting is the bytes held by the key's records admitted behind it, not delivered yet.
	waiting int64
	// rewinding: stopped after a failure, waiting for its stale deliveries to return.
	// scheduled: a redelivery is waiting for its pause.
	rewinding, scheduled bool
}

// Partition is the engine of one partition. Use New.
type Partition struct {
	cfg  Config
	edge Edge

	mu      sync.Mutex
	entries []*entry // held, in offset order, from the lowest record not yet answered
	behind  int      // entries admitted behind their key, not delivered yet
	keys    map[string]*keyState
	stopped bool
	out     int           // deliveries in the handlers
	idle    chan struct{} // closed once stopped with nothing in the handlers
	freed   chan struct{} // closed when a slot of the window frees
	changed chan struct{} // closed when a delivery returns
	stop    chan struct{} // closed by Stop
}

// New returns the engine of a partition.
func New(cfg Config, edge Edge) *Partition {
	cfg.Window = max(cfg.Window, 1)
	if cfg.ResendSleep <= 0 {
		cfg.ResendSleep = 100 * time.Millisecond
	}
	cfg.MaxResendSleep = max(cfg.MaxResendSleep, cfg.ResendSleep)
	if cfg.AfterFunc == nil {
		cfg.AfterFunc = func(d time.Duration, f func()) { time.AfterFunc(d, f) }
	}
	if cfg.Budget == nil {
		cfg.Budget = budget.New(1 << 62)
	}
	return &Partition{cfg: cfg, edge: edge, keys: map[string]*keyState{}, stop: make(chan struct{})}
}

// Admit holds rec, in offset order (one goroutine admits), and delivers it unless it waits for
// its key; false if the partition stopped first. It waits first for the window: at most Window
// of the partition's records held, not counting those that wait behind their key. So records of
// other keys behind a key's backlog go on: the look-ahead past a busy key is bounded by bytes,
// the budget and the key's fair share of it, not by the window. A record that waits behind its
// key holds rec.Waiting bytes of the budget, and rec.Held from its delivery; a key's waiting
// records hold at most a FairShare of the budget, so that one key cannot take it all, and none
// is admitted behind its key once the budget is half used (LookAheadShare). A partition
// holding nothing takes its room without waiting: what fills the budget may be its own fetched
// batch, freed only as its records are admitted, so every partition can always move.
func (p *Partition) Admit(rec Record) bool {
	b := p.cfg.Budget
	for {
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return false
		}
		k := p.keyOf(rec)
		behind := rec.Ordered && k != nil && k.busy()
		cost := rec.Held
		if behind {
			cost = min(rec.Waiting, rec.Held)
		}
		room := len(p.entries)-p.behind < p.cfg.Window &&
			(!behind || b.Used()+cost <= b.Limit()/LookAheadShare &&
				(k.waiting == 0 || k.waiting+cost <= b.Limit()/FairShare))
		alone := len(p.entries) == 0
		if room {
			released := b.Released()
			if alone {
				b.Force(cost)
			} else if !b.TryAcquire(cost) {
				p.mu.Unlock()
				select {
				case <-released:
				case <-p.stop:
					return false
				}
				continue
			}
			p.add(rec, k, behind, cost)
			p.mu.Unlock()
			return true
		}
		if p.freed == nil {
			p.freed = make(chan struct{})
		}
		freed := p.freed
		released := b.Released()
		p.mu.Unlock()
		select {
		case <-freed:
		case <-released:
		case <-p.stop:
			return false
		}
	}
}

// FairShare is the part of the budget one key's waiting records may hold: a quarter.
const FairShare = 4

// LookAheadShare is the part of the budget past which no record is admitted behind its key:
// half, so that the records handed on keep room for the rest of theirs (Delivery.TopUp).
const LookAheadShare = 2

func (p *Partition) keyOf(rec Record) *keyState {
	if !rec.Ordered {
		return nil
	}
	return p.keys[rec.Key]
}

// busy tells whether a record of k admitted now would wait for it.
func (k *keyState) busy() bool {
	if k.rewinding || k.scheduled {
		return true
	}
	for _, e := range k.entries {
		if e.state != queued && e.state != acked {
			return true
		}
	}
	return false
}

// add holds rec, which holds cost bytes of the budget, and delivers it if its key lets it.
func (p *Partition) add(rec Record, k *keyState, behind bool, cost int64) {
	e := &entry{Record: rec, sleep: p.cfg.ResendSleep, taken: cost, behind: behind}
	if rec.Ordered {
		if k == nil {
			k = &keyState{}
			p.keys[rec.Key] = k
		}
		e.key = k
	} else {
		e.key = &e.own
	}
	if behind {
		p.behind++
		k.waiting += cost
	}
	e.key.entries = append(e.key.entries, e)
	p.entries = append(p.entries, e)
	p.release(e.key)
}

// Stop ends the partition: nothing more is admitted or delivered, and what waits is dropped.
// The deliveries in the handlers may still be answered, and marked for commit in order.
func (p *Partition) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	close(p.stop)
	p.idle = make(chan struct{})
	for _, e := range p.entries {
		p.dropIfStopped(e)
	}
	p.checkIdle()
}

// Idle is closed once the partition is stopped and none of its deliveries is in the handlers.
func (p *Partition) Idle() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idle == nil {
		return nil // not stopped
	}
	return p.idle
}

// Held is how many records the partition holds.
func (p *Partition) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}

// Delivery is one handing of a record to the handlers. Its methods tell the engine what became
// of it; a stale delivery (its record rewound or redelivered since) counts only as returned.
type Delivery struct {
	p     *Partition
	e     *entry
	gen   uint32
	topUp int64
}

// TopUp is the bytes of the budget the edge must take for the delivery before it hands it over
// (Budget.TryAcquire, waiting for room; Force when it gives up): a record that waited behind its
// key held only its Waiting bytes, and the engine counts its whole room from its delivery.
func (d Delivery) TopUp() int64 { return d.topUp }

// Msg is the edge's message for the record.
func (d Delivery) Msg() any { return d.e.Msg }

// Offset is the record's offset (an undecodable batch's last).
func (d Delivery) Offset() int64 { return d.e.Offset }

// Redelivered tells whether the record was delivered before.
func (d Delivery) Redelivered() bool { return d.gen > 0 }

// Queue runs enqueue, which queues the record's answer to dest in the producer, unless the
// delivery is stale; then the next record of its key may be delivered. False (enqueue not run)
// when stale: the answer must not be published, since an earlier answer of its key failed.
//
// The producer keeps the order of one partition's records only, and an answer's partition
// follows its topic and its key (the transaction id): an answer whose key an earlier answer of
// the record key, not yet acknowledged, has on another topic would race it. Then Queue runs
// nothing and returns a channel to wait on before asking again. Answers with other keys are not
// ordered with each other (the promise is per transaction id), so they never wait.
func (d Delivery) Queue(dest Destination, enqueue func()) (ok bool, wait <-chan struct{}) {
	p := d.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if d.gen != d.e.gen {
		return false, nil
	}
	for _, x := range d.e.key.entries {
		if x == d.e {
			break
		}
		if x.state == queued && x.dest.Key == dest.Key && x.dest.Topic != dest.Topic && x.out > 0 { // one returned unacked never will be
			if p.changed == nil {
				p.changed = make(chan struct{})
			}
			return false, p.changed
		}
	}
	if enqueue != nil {
		enqueue()
	}
	if d.e.state == delivered {
		d.e.state = queued
		d.e.dest = dest
		p.release(d.e.key)
	}
	return true, nil
}

// Destination is where an answer goes: its topic, and its record key, which picks its partition.
type Destination struct {
	Topic, Key string
}

// Stale tells whether the delivery's answers would be refused.
func (d Delivery) Stale() bool {
	d.p.mu.Lock()
	defer d.p.mu.Unlock()
	return d.gen != d.e.gen
}

// Failed reports that an answer queued for the delivery failed to publish: if a later record of
// its key was handed on meanwhile, the key rewinds to this record; otherwise the key waits for
// this record's next attempt.
func (d Delivery) Failed() {
	p := d.p
	p.mu.Lock()
	defer p.mu.Unlock()
	e := d.e
	if d.gen != e.gen || e.state == acked {
		return
	}
	if p.laterHandedOn(e) {
		p.rewind(e)
	} else if e.state == queued {
		e.state = delivered
	}
}

// Done reports that the delivery returned from the handlers: answered (acked) or not (nacked, or
// given up). A nacked record is delivered again after a pause, or its key rewound to it if a
// later record of its key was handed on.
func (d Delivery) Done(answered bool) {
	p := d.p
	p.mu.Lock()
	defer p.mu.Unlock()
	e, k := d.e, d.e.key
	e.out--
	k.out--
	p.out--
	switch {
	case d.gen != e.gen: // stale: a rewind waits for it
	case answered:
		e.state = acked
		p.release(k)
		p.commit()
	case p.stopped:
		// given up: not answered, so it and everything after it are read again by the next owner
	case p.laterHandedOn(e):
		p.rewind(e)
	default:
		e.gen++
		e.state = waiting
		p.schedule(k, e)
	}
	// A rewind goes on once the key's last delivery is back, stale or not: a current delivery
	// of a record before the rewound one may be the last.
	if k.rewinding && k.out == 0 {
		k.rewinding = false
		if i := p.firstUnanswered(k); i >= 0 {
			p.schedule(k, k.entries[i])
		}
	}
	p.dropIfStopped(e)
	p.checkIdle()
	if p.changed != nil {
		close(p.changed)
		p.changed = nil
	}
}

// release delivers the first record of k not yet handed on, unless k is stopped or the record
// is in the handlers.
func (p *Partition) release(k *keyState) {
	if k.rewinding || k.scheduled || p.stopped {
		return
	}
	for _, e := range k.entries {
		switch e.state {
		case queued, acked:
			continue
		case waiting:
			p.deliver(e)
		}
		return
	}
}

func (p *Partition) deliver(e *entry) {
	var more int64
	if e.behind {
		// From now on it holds its whole room; the edge takes the rest of it (TopUp) before it
		// hands the message over, since the engine cannot wait here.
		e.behind = false
		p.behind--
		e.key.waiting -= e.taken
		more = max(e.Held-e.taken, 0)
		e.taken += more
		p.wakeAdmission()
	}
	e.state = delivered
	e.out++
	e.key.out++
	p.out++
	p.edge.Deliver(Delivery{p: p, e: e, gen: e.gen, topUp: more})
}

// laterHandedOn tells whether a record of e's key after e has been handed to the handlers.
func (p *Partition) laterHandedOn(e *entry) bool {
	k := e.key
	for i := len(k.entries) - 1; i >= 0 && k.entries[i] != e; i-- {
		if k.entries[i].state != waiting {
			return true
		}
	}
	return false
}

// rewind stops e's key and makes e and the records of its key after it wait again, their
// deliveries stale; once none of the key's deliveries is in the handlers, the key is delivered
// again from e.
func (p *Partition) rewind(e *entry) {
	k := e.key
	from := false
	for _, x := range k.entries {
		from = from || x == e
		if from {
			x.gen++
			x.state = waiting
		}
	}
	if k.out > 0 {
		k.rewinding = true
		return
	}
	p.schedule(k, e)
}

// firstUnanswered is the index of the first record of k not handed on yet, -1 if none.
func (p *Partition) firstUnanswered(k *keyState) int {
	for i, e := range k.entries {
		if e.state == waiting {
			return i
		}
	}
	return -1
}

// schedule delivers k again from e after e's pause, which doubles for its next return.
func (p *Partition) schedule(k *keyState, e *entry) {
	if p.stopped {
		return
	}
	k.scheduled = true
	sleep := e.sleep
	e.sleep = min(2*e.sleep, p.cfg.MaxResendSleep)
	p.cfg.AfterFunc(sleep, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		k.scheduled = false
		p.release(k)
	})
}

// commit pops the answered records at the start of the window, releases their room and marks
// the offset after the last for commit.
func (p *Partition) commit() {
	n := 0
	for n < len(p.entries) && p.entries[n].state == acked {
		e := p.entries[n]
		k := e.key
		k.entries[0] = nil
		k.entries = k.entries[1:] // the lowest offset of the partition is the lowest of its key
		if len(k.entries) == 0 && k != &e.own {
			delete(p.keys, e.Key)
		}
		if !e.released {
			e.released = true
			p.cfg.Budget.Release(e.taken)
		}
		e.Msg = nil // a delivery kept in an answer's context must not keep the request alive
		n++
	}
	if n == 0 {
		return
	}
	last := p.entries[n-1]
	clear(p.entries[:n])
	p.entries = p.entries[n:]
	p.edge.MarkCommit(last.Epoch, last.Offset+1)
	p.wakeAdmission()
}

// wakeAdmission wakes an Admit waiting for the window or its key's fair share.
func (p *Partition) wakeAdmission() {
	if p.freed != nil {
		close(p.freed)
		p.freed = nil
	}
}

// dropIfStopped releases e's room once the partition stopped and e is out of the handlers.
func (p *Partition) dropIfStopped(e *entry) {
	if p.stopped && e.out == 0 && !e.released {
		e.released = true
		e.Msg = nil
		p.cfg.Budget.Release(e.taken)
	}
}

func (p *Partition) checkIdle() {
	if p.stopped && p.out == 0 && p.idle != nil {
		select {
		case <-p.idle:
		default:
			close(p.idle)
		}
	}
}
