package flow

import "sync"

// Pauser pauses and resumes a partition's fetches. Fetches calls it with its lock held: it must
// not block nor call Fetches back.
type Pauser interface {
	Pause()
	Resume()
}

// QueuedBatches is how many fetched batches a partition may have waiting, besides the one being
// admitted, before its fetches pause: one, so that admission goes on while the next fetch is on
// its way, and memory stays at about two fetches a partition.
const QueuedBatches = 1

// Fetches is a partition's queue of fetched batches, handed over by the poll loop (which must
// never wait for one partition) and taken by the partition's dispatcher, and the pause it asks
// of the fetches. A partition is paused while its queue is full, while it waits for room in the
// budget for its next batch, or while it skips a batch. The queue is full only while the
// dispatcher is busy with a batch it took: pausing for a batch an idle dispatcher is about to
// take made every fetch at light load pause and resume its partition, and a resumed partition
// waits for the fetch in flight without it.
type Fetches[T any] struct {
	pauser Pauser

	mu                                     sync.Mutex
	queue                                  []T
	signal                                 chan struct{}
	stopped                                bool
	paused, busy, waitingForRoom, skipping bool
	roomWanted                             int64
}

// NewFetches returns an empty queue whose pauses go to pauser.
func NewFetches[T any](pauser Pauser) *Fetches[T] {
	return &Fetches[T]{pauser: pauser, signal: make(chan struct{}, 1)}
}

// Push queues a batch, at once, pausing the fetches when the queue is full; false once stopped
// (the batch is not taken).
func (f *Fetches[T]) Push(batch T) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	f.queue = append(f.queue, batch)
	f.updatePause()
	select {
	case f.signal <- struct{}{}:
	default: // the dispatcher has a signal waiting already
	}
	return true
}

// Signal receives when batches were pushed.
func (f *Fetches[T]) Signal() <-chan struct{} { return f.signal }

// Next takes the oldest batch, resuming the fetches once there is room; false when empty, and
// the dispatcher is idle from then.
func (f *Fetches[T]) Next() (T, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var zero T
	if len(f.queue) == 0 {
		f.busy = false
		return zero, false
	}
	f.busy = true
	batch := f.queue[0]
	f.queue[0] = zero
	f.queue = f.queue[1:]
	f.updatePause()
	return batch, true
}

// WaitForRoom pauses the fetches until RoomFound says the budget has room for n bytes (0 when
// not known).
func (f *Fetches[T]) WaitForRoom(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waitingForRoom, f.roomWanted = true, n
	f.updatePause()
}

// RoomFound resumes the fetches if they wait for room and fits says it is there now; true if
// they still wait.
func (f *Fetches[T]) RoomFound(fits func(int64) bool) (stillWaiting bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.waitingForRoom {
		return false
	}
	if !fits(max(f.roomWanted, 1)) {
		return true
	}
	f.waitingForRoom = false
	f.updatePause()
	return false
}

// Skipping pauses the fetches while a batch is skipped (on) and lifts that pause (off); turning
// it on returns false if it was on already.
func (f *Fetches[T]) Skipping(on bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if on && f.skipping {
		return false
	}
	f.skipping = on
	f.updatePause()
	return true
}

// Stop lifts every pause for good (a pause outlives the assignment: the partition's next owner
// here must fetch it) and returns the batches never taken.
func (f *Fetches[T]) Stop() []T {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	f.waitingForRoom = false
	if f.paused {
		f.paused = false
		f.pauser.Resume()
	}
	left := f.queue
	f.queue = nil
	return left
}

// Paused tells whether the fetches are paused.
func (f *Fetches[T]) Paused() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.paused
}

func (f *Fetches[T]) updatePause() {
	if f.stopped {
		return
	}
	switch want := f.busy && len(f.queue) >= QueuedBatches || f.waitingForRoom || f.skipping; {
	case want && !f.paused:
		f.paused = true
		f.pauser.Pause()
	case !want && f.paused:
		f.paused = false
		f.pauser.Resume()
	}
}
