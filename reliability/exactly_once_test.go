package reliability_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/servicetest"
)

// startExactlyOnce runs the built binary in exactly-once mode with its own transactional id: the
// instances of a test share a host name, so the default id would be shared too.
func startExactlyOnce(t *testing.T, brokers []string, id string) *servicetest.Process {
	t.Helper()
	return startBinaryWith(t, brokers, "KAFKA_DELIVERY=exactly-once", "KAFKA_TRANSACTIONAL_ID="+id)
}

// readCommitted reads the answers as the docs tell a client of exactly-once mode to
// (servicetest's reader does, whatever the mode).
func readCommitted(t *testing.T, brokers []string) *servicetest.Reader {
	return servicetest.NewReader(t, brokers)
}

// groupSettled is a waitFor condition: the service's group is stable with members members and
// every partition of the requests assigned. A cooperative rebalance is stable between its two
// rounds too, with the partitions the first round revoked assigned to no one.
func groupSettled(t *testing.T, brokers []string, members int) func() bool {
	adm := kadm.NewClient(servicetest.Client(t, brokers))
	return func() bool {
		groups, err := adm.DescribeGroups(context.Background(), "pingpong")
		if err != nil {
			return false
		}
		g := groups["pingpong"]
		assigned := g.AssignedPartitions()[servicetest.Topics.Requested]
		return g.State == "Stable" && len(g.Members) == members && len(assigned) == partitions
	}
}

// answeredAtLeast is a waitFor condition: reader has read at least want answers.
func answeredAtLeast(t *testing.T, reader *servicetest.Reader, want int) func() bool {
	return func() bool {
		reader.Await(t, nil, 20*time.Millisecond)
		return len(reader.Answers()) >= want
	}
}

// TestExactlyOnceThroughProcessFaults: three instances in exactly-once mode answer keyed pings
// arriving steadily while one is killed (SIGKILL, mid-transaction) and restarted with its
// transactional id, one is stopped (SIGTERM) and restarted, and one is paused (SIGSTOP) past the
// session timeout, its partitions moving on, then continued: a zombie with a transaction open.
// A read_committed reader sees every request answered once, each id's answers in order.
func TestExactlyOnceThroughProcessFaults(t *testing.T) {
	const n, ids = 24_000, 200
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	records := orderedPings(n, ids)
	reader := readCommitted(t, brokers)
	a := startExactlyOnce(t, brokers, "eos-a")
	b := startExactlyOnce(t, brokers, "eos-b")
	c := startExactlyOnce(t, brokers, "eos-c")

	start := time.Now()
	producer := servicetest.Client(t, brokers)
	sent := make(chan error, 1)
	go func() { // 1,000 requests a second
		for i := 0; i < n; i += 100 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := producer.ProduceSync(ctx, records[i:i+100]...).FirstErr()
			cancel()
			if err != nil {
				sent <- err
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		sent <- nil
	}()
	answered := func(want int) func() bool { return answeredAtLeast(t, reader, want) }
	waitFor(t, time.Minute, "2,000 answers", answered(2000))
	// Each fault hits a settled group, so that each is one fault; the randomized fault run, not
	// this test, throws faults at any moment.
	waitFor(t, time.Minute, "the group settled with three members", groupSettled(t, brokers, 3))
	a.Signal(t, syscall.SIGKILL, 10*time.Second) // its open transaction is left to the broker
	startExactlyOnce(t, brokers, "eos-a")        // the same id: it fences the dead one's transaction
	waitFor(t, time.Minute, "6,000 answers", answered(6000))
	waitFor(t, time.Minute, "the group settled with three members", groupSettled(t, brokers, 3))
	if code := b.Signal(t, syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit code %d", code)
	}
	startExactlyOnce(t, brokers, "eos-b")
	waitFor(t, time.Minute, "10,000 answers", answered(10000))
	waitFor(t, time.Minute, "the group settled with three members", groupSettled(t, brokers, 3))
	c.Send(t, syscall.SIGSTOP)
	time.Sleep(13 * time.Second) // past the session timeout (10 s): its partitions move
	c.Send(t, syscall.SIGCONT)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "every request answered", answered(n))
	reader.Await(t, nil, 3*time.Second) // late duplicates
	answers := reader.Answers()
	t.Logf("FIGURES | exactly-once, 3 instances: SIGKILL and restart, SIGTERM and restart, SIGSTOP 13 s and SIGCONT | %d sent | %d answers read committed | %.1f s |",
		n, len(answers), time.Since(start).Seconds())
	if len(answers) != n {
		t.Errorf("%d answers read committed for %d requests", len(answers), n)
	}
	checkOrder(t, answers, ids) // in order, each once
}

// TestExactlyOnceThroughClusterFaults: two instances in exactly-once mode on three brokers
// answer a steady mix of requests while the group and transaction coordinators move, every
// write of answers fails for a second, and requests written in aborted transactions arrive
// among the others. A read_committed reader sees every request answered once and no aborted
// request answered.
func TestExactlyOnceThroughClusterFaults(t *testing.T) {
	cluster := threeBrokers(t)
	brokers := cluster.ListenAddrs()
	exactlyOnce := func(id string) func(*config.Service) {
		return func(c *config.Service) {
			c.Transport.Delivery.Mode = config.DeliveryExactlyOnce
			c.Transport.Delivery.TransactionalID = id
		}
	}
	cfg := serviceConfig(t, brokers, exactlyOnce("eos-1"))
	first := servicetest.Start(t, cfg)
	second := servicetest.Start(t, serviceConfig(t, brokers, exactlyOnce("eos-2")))
	reader := readCommitted(t, brokers)

	start := time.Now()
	ld := backlogThenLoad(t, brokers, "eos-cluster")
	aborted := abortedRequests(t, brokers)
	waitFor(t, 30*time.Second, "a quarter of the load answered", func() bool { return handled(t, first, second) >= backlog/4 })
	from := cluster.CoordinatorFor(cfg.ConsumerGroup)
	for i := 0; cluster.CoordinatorFor(cfg.ConsumerGroup) == from; i++ {
		if i == 100 {
			t.Fatalf("the coordinator stays on broker %d", from)
		}
		cluster.RehashCoordinators()
	}
	time.Sleep(time.Second)
	fault := faultyProduce(cluster, servicetest.Topics.Succeeded)
	waitFor(t, 30*time.Second, "the fault to fail a write", func() bool { return fault.Hits() > 0 })
	time.Sleep(time.Second) // the fault's length, not a wait for a result
	fault.Remove()
	reqs := ld.finish(t, time.Minute)
	abortedIDs := aborted()
	tally, exhausted := collect(t, reader, reqs)
	aborts := 0.0
	for _, s := range []*servicetest.Running{first, second} {
		aborts += metric(t, s, "pingpong_transactions_aborted_total")
	}
	figures{scenario: fmt.Sprintf("exactly-once, 2 instances: coordinators moved, writes of .succeeded failing 1 s (%d produce requests failed), %d requests in aborted transactions; %.0f transactions aborted",
		fault.Hits(), len(abortedIDs), aborts),
		fault: "coordinator change; transient publish failure", tally: tally, exhausted: exhausted, elapsed: time.Since(start),
		felt: []*servicetest.Running{first, second}, exactlyOnce: true}.report(t)
	for _, a := range reader.Answers() {
		if abortedIDs[a.Key] {
			t.Fatalf("a request of an aborted transaction was answered: %s", a.Value)
		}
	}
	if aborts == 0 {
		t.Error("no transaction aborted: the faults were not felt, the scenario proves nothing")
	}
}

// abortedRequests writes pings in transactions that abort, in the background, until the returned
// function is called; it returns their transaction ids.
func abortedRequests(t *testing.T, brokers []string) func() map[string]bool {
	t.Helper()
	producer := servicetest.Client(t, brokers, kgo.TransactionalID("aborted-requests"))
	ids := map[string]bool{}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			id := fmt.Sprintf("aborted-%d", i)
			if producer.BeginTransaction() == nil && producer.ProduceSync(ctx, &kgo.Record{
				Topic: servicetest.Topics.Requested, Partition: int32(i % partitions), Key: []byte(id),
				Value: []byte(`{"transaction-id": "` + id + `", "payload": {"message": "ping"}}`),
			}).FirstErr() == nil {
				ids[id] = true
			}
			_ = producer.EndTransaction(ctx, kgo.TryAbort)
			cancel()
		}
	}()
	return func() map[string]bool {
		close(stop)
		<-done
		return ids
	}
}

// TestExactlyOnceSIGKILLMidTransaction kills one of two instances (SIGKILL) while its
// transactions are open and requests keep coming to every partition, and does not restart it.
// The survivor takes its partitions once the session times out, and reads them once the dead
// instance's open transaction is aborted by the broker (KAFKA_TRANSACTION_TIMEOUT); it answers
// what the dead one had answered in its open transaction, once. The figure is how long the dead
// instance's partitions went unanswered.
func TestExactlyOnceSIGKILLMidTransaction(t *testing.T) {
	const n, ids = 12_000, 200
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	records := orderedPings(n, ids)
	reader := readCommitted(t, brokers)
	victim := startExactlyOnce(t, brokers, "eos-victim")
	startExactlyOnce(t, brokers, "eos-survivor")
	producer := servicetest.Client(t, brokers)
	send := func(recs []*kgo.Record) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return producer.ProduceSync(ctx, recs...).FirstErr()
	}
	produce := func(recs []*kgo.Record) {
		if err := send(recs); err != nil {
			t.Fatal(err)
		}
	}
	answered := func(want int) func() bool { return answeredAtLeast(t, reader, want) }
	half := n / 2
	for i := 0; i < half; i += 500 {
		produce(records[i : i+500])
	}
	waitFor(t, time.Minute, "the first half answered", answered(half))
	// Requests keep coming while the victim dies: its transactions are open when it does.
	during := make(chan error, 1)
	go func() { during <- send(records[half : half+2000]) }()
	time.Sleep(50 * time.Millisecond)
	victim.Signal(t, syscall.SIGKILL, 10*time.Second)
	killed := time.Now()
	if err := <-during; err != nil {
		t.Fatal(err)
	}
	produce(records[half+2000:])
	waitFor(t, time.Minute, "every request answered", answered(n))
	waited := time.Since(killed)
	reader.Await(t, nil, 2*time.Second) // late duplicates
	t.Logf("FIGURES | exactly-once, SIGKILL of 1 of 2 instances mid-transaction, not restarted | every request answered %.1f s after the kill (session timeout 10 s, transaction timeout 10 s) |", waited.Seconds())
	if got := len(reader.Answers()); got != n {
		t.Errorf("%d answers read committed for %d requests", got, n)
	}
	checkOrder(t, reader.Answers(), ids)
}

// TestExactlyOnceTwoInstancesWithOneTransactionalID: a second instance started with the first's
// transactional id fences it (a configuration mistake, or a pod replaced while the old one still
// runs). The fenced one stops, naming the setting, rather than answering on; every request is
// still answered once.
func TestExactlyOnceTwoInstancesWithOneTransactionalID(t *testing.T) {
	const n, ids = 6_000, 200
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	records := orderedPings(n, ids)
	reader := readCommitted(t, brokers)
	first := startExactlyOnce(t, brokers, "eos-shared")
	producer := servicetest.Client(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := producer.ProduceSync(ctx, records[:n/2]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the first half answered", answeredAtLeast(t, reader, n/2))
	startExactlyOnce(t, brokers, "eos-shared")
	for i := n / 2; i < n; i += 100 {
		if err := producer.ProduceSync(ctx, records[i:i+100]...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, time.Minute, "every request answered", answeredAtLeast(t, reader, n))
	waitFor(t, 30*time.Second, "the fenced instance to exit", func() bool {
		_, exited := first.Exited()
		return exited
	})
	if err, _ := first.Exited(); err == nil {
		t.Error("the fenced instance exited 0: an orchestrator would not know it failed")
	}
	if !strings.Contains(first.Output.String(), "KAFKA_TRANSACTIONAL_ID") {
		t.Error("the fenced instance did not name KAFKA_TRANSACTIONAL_ID")
	}
	reader.Await(t, nil, 2*time.Second)
	checkOrder(t, reader.Answers(), ids)
	if got := len(reader.Answers()); got != n {
		t.Errorf("%d answers read committed for %d requests", got, n)
	}
}

// TestExactlyOnceAnswersThatCannotBeWrittenArePoisoned: in exactly-once mode a failed write
// aborts its transaction, and the request is delivered again in the next; once its answer has
// failed in more transactions than RETRY_MAX_RETRIES it is poisoned as retries exhausted, and
// its partition moves on, as in at-least-once mode (TestPublishToSucceededFailsForGood). Each
// request is answered once.
func TestExactlyOnceAnswersThatCannotBeWrittenArePoisoned(t *testing.T) {
	publishToSucceededFailsForGood(t, true)
}
