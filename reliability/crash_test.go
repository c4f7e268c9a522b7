package reliability_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/pingpong/pingpong/app/servicetest"
)

// TestSIGKILLInTheMiddleOfABacklog kills the process (SIGKILL: no shutdown, no last commit) while
// it works through a backlog, and starts it again. What it answered but had not committed yet
// is answered again (duplicates, as at least once allows); nothing is lost.
func TestSIGKILLInTheMiddleOfABacklog(t *testing.T) {
	const n = 150_000 // about two seconds of work: the first commit comes after one
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	reqs := servicetest.Mix("sigkill", n, partitions)
	servicetest.Produce(t, servicetest.Client(t, brokers), reqs)
	reader := servicetest.NewReader(t, brokers)

	start := time.Now()
	firstRun := startBinary(t, brokers)
	var before servicetest.Tally
	adm := kadm.NewClient(servicetest.Client(t, brokers))
	waitFor(t, time.Minute, "a tenth of the backlog answered and some of it committed", func() bool {
		before = reader.Await(t, reqs, 10*time.Millisecond)
		offsets, err := adm.FetchOffsets(context.Background(), "pingpong")
		return before.Answered >= n/10 && err == nil && len(offsets) > 0
	})
	firstRun.Signal(t, syscall.SIGKILL, 10*time.Second) // cannot be caught: nothing is flushed, nothing committed
	before = servicetest.Check(reqs, reader.Answers())
	if before.Answered == n {
		t.Fatalf("the backlog was drained before SIGKILL; the scenario proves nothing: %s", before)
	}

	restarted := time.Now()
	startBinary(t, brokers)
	tally, exhausted := collect(t, reader, reqs)
	figures{scenario: fmt.Sprintf("SIGKILL after %d of %d answered, restarted (drained %.1f s after the restart)", before.Answered, n, time.Since(restarted).Seconds()),
		fault: "process crash", tally: tally, exhausted: exhausted, elapsed: time.Since(start)}.report(t)
}
