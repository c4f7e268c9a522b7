// Package budget bounds the bytes of requests an instance holds at once: the records it fetched
// and decoded, the messages it is handling and their answers not yet acknowledged. Every
// partition the instance is assigned draws on the one budget, so the process's memory follows
// the budget rather than the number of partitions, the compression ratio of what was written, or
// the backlog.
//
// A holder that does not fit waits for room (Released) rather than the process growing. Two rules
// keep a wait from lasting for ever: a single holder larger than the whole budget is let in when
// nothing else is held, and Force takes room without waiting, for a holder that must go on for
// others to release theirs (see the subscriber).
package budget

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Budget is a count of bytes held against a limit. Use New.
type Budget struct {
	limit int64

	mu   sync.Mutex
	used int64
	// released is closed by the next Release, to wake whoever waits for room; made on demand,
	// so that a Release nobody waits for costs no allocation.
	released chan struct{}
}

// New returns a budget of limit bytes.
func New(limit int64) *Budget { return &Budget{limit: limit} }

// Limit is the budget's size in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Used is the bytes held now.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// TryAcquire holds n bytes if they fit now: with what is held, within the limit, or alone.
func (b *Budget) TryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fits(n) {
		b.used += n
		return true
	}
	return false
}

// Fits tells whether n bytes would fit now.
func (b *Budget) Fits(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fits(n)
}

func (b *Budget) fits(n int64) bool { return b.used == 0 || b.used+n <= b.limit }

// Released returns a channel that the next Release closes. Take it before trying for room, so
// that a Release in between is not missed.
func (b *Budget) Released() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released == nil {
		b.released = make(chan struct{})
	}
	return b.released
}

// Force holds n bytes at once, room or not: for a holder that must go on so that others can
// release theirs.
func (b *Budget) Force(n int64) {
	b.mu.Lock()
	b.used += n
	b.mu.Unlock()
}

// Release gives back n bytes held by TryAcquire or Force, and wakes the waiters.
func (b *Budget) Release(n int64) {
	b.mu.Lock()
	b.used -= n
	if b.released != nil {
		close(b.released)
		b.released = nil
	}
	b.mu.Unlock()
}

// Collectors are the budget's gauges: its size and what is held of it.
func (b *Budget) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pingpong_memory_budget_bytes",
			Help: "Bytes of requests the instance may hold at once, counted decoded (MEMORY_BUDGET_BYTES).",
		}, func() float64 { return float64(b.Limit()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pingpong_memory_budget_used_bytes",
			Help: "Bytes of requests the instance holds now: fetched batches decoded, messages in flight and their answers.",
		}, func() float64 { return float64(b.Used()) }),
	}
}
