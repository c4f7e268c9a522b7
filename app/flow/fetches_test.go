package flow

import "testing"

type pauser struct{ pauses, resumes int }

func (p *pauser) Pause()  { p.pauses++ }
func (p *pauser) Resume() { p.resumes++ }

// A partition's fetches pause only while its dispatcher is busy and a batch waits besides, or
// while it waits for room or skips a batch; an idle dispatcher's next batch pauses nothing.
func TestFetchesPauseOnlyWhenTheQueueIsFullOrRoomIsWanted(t *testing.T) {
	pz := &pauser{}
	f := NewFetches[int](pz)
	f.Push(1)
	if f.Paused() {
		t.Fatal("paused for a batch an idle dispatcher is about to take")
	}
	f.Next()
	f.Push(2)
	if !f.Paused() {
		t.Fatal("not paused with a batch waiting behind a busy dispatcher")
	}
	f.Next()
	if f.Paused() {
		t.Fatal("still paused once the waiting batch was taken")
	}
	f.Next() // idle
	f.WaitForRoom(100)
	if !f.Paused() || !f.RoomFound(func(n int64) bool { return n < 100 }) {
		t.Fatal("not waiting for 100 bytes of room")
	}
	if f.RoomFound(func(int64) bool { return true }) || f.Paused() {
		t.Fatal("still paused once room was found")
	}
	if !f.Skipping(true) || f.Skipping(true) || !f.Paused() {
		t.Fatal("skipping twice at once, or not paused while skipping")
	}
	f.Push(3)
	if left := f.Stop(); len(left) != 1 || f.Paused() || f.Push(4) {
		t.Fatalf("stop left %v and paused %v", left, f.Paused())
	}
	if pz.pauses != pz.resumes {
		t.Fatalf("%d pauses, %d resumes", pz.pauses, pz.resumes)
	}
}
