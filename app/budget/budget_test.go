package budget

import "testing"

func TestAHolderFitsWithinTheLimitOrAlone(t *testing.T) {
	b := New(100)
	if !b.TryAcquire(60) || !b.TryAcquire(40) {
		t.Fatal("100 bytes in two holders do not fit a budget of 100")
	}
	if b.TryAcquire(1) {
		t.Fatal("a byte past the limit fits")
	}
	b.Release(100)
	if !b.TryAcquire(500) {
		t.Fatal("a holder larger than the whole budget is refused while nothing else is held: it would wait for ever")
	}
	if b.Fits(1) || b.Used() != 500 {
		t.Fatalf("used %d, fits another byte %v", b.Used(), b.Fits(1))
	}
}

func TestReleaseWakesWhoWaitsForRoom(t *testing.T) {
	b := New(10)
	b.Force(10)
	released := b.Released()
	select {
	case <-released:
		t.Fatal("woken before anything was released")
	default:
	}
	b.Force(5) // Force takes room past the limit
	if b.Used() != 15 {
		t.Fatalf("used %d after forcing 5 more, want 15", b.Used())
	}
	b.Release(10)
	select {
	case <-released:
	default:
		t.Fatal("a release did not wake the waiter")
	}
	if !b.TryAcquire(5) || b.TryAcquire(1) {
		t.Fatalf("used %d: want exactly 5 more bytes to fit", b.Used())
	}
}
