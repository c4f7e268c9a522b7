package transport

import (
	"testing"
	"time"

	"github.com/pingpong/pingpong/app/budget"
)

// A delivery waiting for the rest of its room goes on once the partition has nothing left in the
// router, even if nothing was released: its messages acked behind an unanswered one free no room
// until that one is answered, and it may be the one waiting here.
func TestAWaitForRoomEndsWhenThePartitionsRouterIsEmpty(t *testing.T) {
	b := budget.New(10)
	b.Force(10)
	w := &partitionWorker{consumer: &consumer{budget: b}, stop: make(chan struct{}), routerEmpty: make(chan struct{}, 1)}
	w.inRouter.Store(1)
	reserved := make(chan bool)
	go func() { reserved <- w.reserve(5) }()
	select {
	case <-reserved:
		t.Fatal("room taken past the budget while a message of the partition was in the router")
	case <-time.After(50 * time.Millisecond):
	}
	w.returned() // acked, behind an unanswered message: no room released
	select {
	case ok := <-reserved:
		if !ok || b.Used() != 15 {
			t.Fatalf("reserved %v, budget used %d; want the room taken", ok, b.Used())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting for room with nothing of the partition in the router")
	}
}
