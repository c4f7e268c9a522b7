package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestWriteFiguresReplacesOnlyItsBlock: a run rewrites the figures of its produce latency and
// leaves the prose and the other run's figures as they are.
func TestWriteFiguresReplacesOnlyItsBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "performance.md")
	if err := os.WriteFile(path, []byte("# Performance\n\nprose\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		latency time.Duration
		figures string
	}{{0, "fast v1\n"}, {2 * time.Millisecond, "slow v1\n"}, {0, "fast v2\n"}} {
		if err := writeFigures(path, "", step.latency, step.figures); err != nil {
			t.Fatal(err)
		}
	}
	doc, _ := os.ReadFile(path)
	text := string(doc)
	for _, want := range []string{"prose", "fast v2", "slow v1"} {
		if !strings.Contains(text, want) {
			t.Errorf("%q is missing:\n%s", want, text)
		}
	}
	if strings.Contains(text, "fast v1") || strings.Count(text, "written by go run ./bench") != 2 {
		t.Errorf("the first block was not replaced in place:\n%s", text)
	}
}

func TestSummarizeTakesTheMedianAndTheMeanCostAndKeepsEveryLoss(t *testing.T) {
	got := summarize([]result{
		{system: "service", partitions: 4, perSecond: 50_000, peakRSS: 40 << 20, cpuPerRequest: 10 * time.Microsecond, answersPerProduce: 8},
		{system: "service", partitions: 4, perSecond: 10_000, peakRSS: 44 << 20, dups: 2, cpuPerRequest: 20 * time.Microsecond, answersPerProduce: 9},
		{system: "service", partitions: 4, perSecond: 52_000, peakRSS: 41 << 20, lost: 1, wrong: 3, cpuPerRequest: 30 * time.Microsecond, answersPerProduce: 10},
	})
	if got.perSecond != 50_000 || got.peakRSS != 44<<20 || got.lost != 1 || got.dups != 2 || got.wrong != 3 || got.runs != 3 {
		t.Errorf("summary %+v: want the median 50000/s, the highest RSS, and every loss, duplicate and wrong answer", got)
	}
	if got.cpuPerRequest != 20*time.Microsecond || got.answersPerProduce != 9 {
		t.Errorf("summary %+v: want the mean CPU and answers a produce request", got)
	}
	if even := summarize([]result{{perSecond: 10}, {perSecond: 20}}); even.perSecond != 15 {
		t.Errorf("median of two drains %v, want 15", even.perSecond)
	}
}

func TestOnlyTheSystemsWritesAreDelayed(t *testing.T) {
	request := func(topics ...string) *kmsg.ProduceRequest {
		req := kmsg.NewPtrProduceRequest()
		for _, topic := range topics {
			req.Topics = append(req.Topics, kmsg.ProduceRequestTopic{Topic: topic})
		}
		return req
	}
	if !writesRequestsOnly(request("bench1.requested")) {
		t.Error("the load generator's write would be delayed")
	}
	for _, req := range []*kmsg.ProduceRequest{request("bench1.succeeded"), request("bench1.failed", "bench1.requested"), request()} {
		if writesRequestsOnly(req) {
			t.Errorf("a write of the system under test (%v) would not be delayed", req.Topics)
		}
	}
}

// The records a produce request carries are counted from franz-go's own record batches, as
// kfake receives them.
func TestRecordsInCountsTheRecordsOfAProduceRequest(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "a.succeeded", "a.failed"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	var counted produceCounter
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		counted.count(req.(*kmsg.ProduceRequest))
		return nil, nil, false
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range 7 {
		recs = append(recs, &kgo.Record{Topic: []string{"a.succeeded", "a.failed"}[i%2], Key: []byte{byte(i)}, Value: []byte("answer")})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := counted.records.Load(); got != 7 {
		t.Errorf("counted %d records, want 7", got)
	}
	if n := counted.requests.Load(); n < 1 || counted.perRequest() != 7/float64(n) {
		t.Errorf("%d requests, %v answers a request", n, counted.perRequest())
	}
}

// The waiter closes once every request of its run has a first answer: duplicates, other runs'
// answers and keys that are not the benchmark's count for nothing.
func TestWaiterCountsEachRequestOnce(t *testing.T) {
	reqs := requests("bench7", 3, 1)
	w := &waiter{run: "bench7", answered: make([]bool, len(reqs)), unanswered: len(reqs), allAnswered: make(chan struct{})}
	for _, key := range []string{reqs[0].Tag, reqs[0].Tag, "bench7-warm-1", "bench77-2", "bench7-x", "bench7-3", "", reqs[2].Tag} {
		w.tick(key)
	}
	select {
	case <-w.allAnswered:
		t.Fatal("closed with a request unanswered")
	default:
	}
	w.tick(reqs[1].Tag)
	select {
	case <-w.allAnswered:
	default:
		t.Fatal("not closed with every request answered")
	}
}

// A drain with a produce latency is given as its share of the same system's drain at zero
// latency; the zero-latency table has no share to give.
func TestRenderGivesTheKeptShareOnlyWithALatency(t *testing.T) {
	o := options{rate: 1000, latencyFor: 8 * time.Second, warmUp: 3 * time.Second, requests: 100}
	delayed := render(o, 2*time.Millisecond, []result{{system: systemService, partitions: 4, perSecond: 30_000, kept: 0.75}})
	if !strings.Contains(delayed, "| service | 4 | 30000 | 75% |") || !strings.Contains(delayed, "adding 2ms to every produce request") {
		t.Errorf("the 2 ms table does not give the kept share:\n%s", delayed)
	}
	atOnce := render(o, 0, []result{{system: systemService, partitions: 4, perSecond: 40_000}})
	if !strings.Contains(atOnce, "| service | 4 | 40000 | – |") || strings.Contains(atOnce, "Kept is") {
		t.Errorf("the zero-latency table gives a kept share:\n%s", atOnce)
	}
}

func TestOnlyKeepsTheAllowedSystemsInOrder(t *testing.T) {
	got := only([]string{systemService, systemWatermill, systemCeiling}, []string{systemCeiling, systemService})
	if strings.Join(got, ",") != systemService+","+systemCeiling {
		t.Errorf("got %v", got)
	}
}

// The hot-key table gives, for each latency and ordering, the other keys' latencies, the hot
// backlog's drain and the service's CPU a request, as measured.
func TestRenderHotKeyGivesEachRunsFigures(t *testing.T) {
	o := hotKeyOptions{records: 3000, rate: 20, minFor: 3 * time.Second}
	table := renderHotKey(o, []hotKeyResult{
		{ordering: "key", latency: 2 * time.Millisecond, others: 180, p50: 800 * time.Millisecond, p99: 5100 * time.Millisecond, most: 5200 * time.Millisecond,
			hotDrain: 8400 * time.Millisecond, cpuPerRequest: 30 * time.Microsecond, peakRSS: 40 << 20},
		{ordering: "none", latency: 5 * time.Millisecond, others: 60, p50: 6 * time.Millisecond, p99: 12 * time.Millisecond, most: 14 * time.Millisecond,
			hotDrain: 300 * time.Millisecond, cpuPerRequest: 25 * time.Microsecond, peakRSS: 38 << 20, lost: 1},
	})
	for _, row := range []string{
		"| 2ms | key | 180 | 800.00 ms | 5100.00 ms | 5200.00 ms | 8.40 s | 30.0 µs | 40.0 MiB | 0 | 0 | 0 |",
		"| 5ms | none | 60 | 6.00 ms | 12.00 ms | 14.00 ms | 0.30 s | 25.0 µs | 38.0 MiB | 1 | 0 | 0 |",
	} {
		if !strings.Contains(table, row) {
			t.Errorf("row %q missing:\n%s", row, table)
		}
	}
	if !strings.Contains(table, "3000 requests of one record key") || !strings.Contains(table, "at 20/s") {
		t.Errorf("the table does not say what was measured:\n%s", table)
	}
}

// The hot-key block has markers of its own: writing it leaves the drains' blocks as they are.
func TestWriteBlockKeepsTheOtherBlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "performance.md")
	if err := os.WriteFile(path, []byte("# Performance\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, write := range []func() error{
		func() error { return writeFigures(path, "", 0, "drains\n") },
		func() error { return writeBlock(path, hotKeyBlock, "hot v1\n") },
		func() error { return writeBlock(path, hotKeyBlock, "hot v2\n") },
	} {
		if err := write(); err != nil {
			t.Fatal(err)
		}
	}
	doc, _ := os.ReadFile(path)
	text := string(doc)
	if !strings.Contains(text, "drains") || !strings.Contains(text, "<!-- figures, hot key: written by go run ./bench -->\nhot v2\n<!-- end of figures, hot key -->") || strings.Contains(text, "hot v1") {
		t.Errorf("blocks not kept apart:\n%s", text)
	}
}

func TestAnEmptyLatencyListIsNone(t *testing.T) {
	if d := durations("hot-key", ""); len(d) != 0 {
		t.Errorf("%v, want none", d)
	}
	if d := durations("hot-key", "0, 2ms"); len(d) != 2 || d[0] != 0 || d[1] != 2*time.Millisecond {
		t.Errorf("%v, want 0 and 2ms", d)
	}
}

// The exactly-once system is the service's binary with KAFKA_DELIVERY=exactly-once, and @ sets
// its transaction interval; anything else is not a system.
func TestExactlyOnceSystemsRunTheServiceInTransactions(t *testing.T) {
	for system, want := range map[string]string{
		systemService:               "",
		systemExactlyOnce:           "KAFKA_DELIVERY=exactly-once",
		systemExactlyOnce + "@20ms": "KAFKA_DELIVERY=exactly-once KAFKA_TRANSACTION_INTERVAL=20ms",
		systemExactlyOnce + "@1s":   "KAFKA_DELIVERY=exactly-once KAFKA_TRANSACTION_INTERVAL=1s",
	} {
		env, ok := serviceEnv(system)
		if !ok || strings.Join(env, " ") != want {
			t.Errorf("%s: env %q (%v), want %q", system, env, ok, want)
		}
		if exactlyOnce(system) != (want != "") {
			t.Errorf("%s: read as read_committed %v", system, exactlyOnce(system))
		}
	}
	for _, system := range []string{systemExactlyOnce + "@", systemExactlyOnce + "@fast", systemExactlyOnce + "@-1s", systemService + "@20ms", "exactly-once"} {
		if knownSystem(system) {
			t.Errorf("%q taken for a system", system)
		}
	}
	for _, system := range []string{systemWatermill, systemCeiling} {
		if _, ok := serviceEnv(system); ok || !knownSystem(system) || exactlyOnce(system) {
			t.Errorf("%s is not the service's binary, and is a system", system)
		}
	}
}

// With an exactly-once system, the tables give its drain's share of at-least-once's, the
// commits a second, and the spread of repeated runs.
func TestRenderGivesTheExactlyOnceShareAndCommits(t *testing.T) {
	o := options{rate: 1000, latencyFor: 8 * time.Second, warmUp: 3 * time.Second, requests: 100, runs: 2, latencyRuns: 2}
	table := render(o, 2*time.Millisecond, []result{
		{system: systemService, partitions: 4, perSecond: 40_000, slowest: 39_000, fastest: 41_000, runs: 2},
		{system: systemExactlyOnce, partitions: 4, perSecond: 30_000, slowest: 29_000, fastest: 31_000, runs: 2, commitsPerSecond: 9.5},
		{system: systemExactlyOnce, p50: 52 * time.Millisecond, p99: 102 * time.Millisecond, p50s: []time.Duration{51 * time.Millisecond, 53 * time.Millisecond},
			p99s: []time.Duration{101 * time.Millisecond, 103 * time.Millisecond}, writtenP50: 2 * time.Millisecond, writtenP99: 4 * time.Millisecond, commitsPerSecond: 10, runs: 2},
	})
	for _, row := range []string{
		"| service | 4 | 40000 (39000–41000) | – | – | – | 0.0 µs | 0.0 µs | 0.0 | – | – |",
		"| service-exactly-once | 4 | 30000 (29000–31000) | – | – | – | 0.0 µs | 0.0 µs | 0.0 | 75% | 9.5 |",
		"| service-exactly-once | 52.00 ms (51.00, 53.00) | 102.00 ms (101.00, 103.00) | 2.00 ms / 4.00 ms | 10.0 |",
		"read read_committed",
	} {
		if !strings.Contains(table, row) {
			t.Errorf("%q missing:\n%s", row, table)
		}
	}
	if plain := render(o, 0, []result{{system: systemService, partitions: 4, perSecond: 40_000}}); strings.Contains(plain, "commits/s") {
		t.Errorf("a table without exactly-once has a commits column:\n%s", plain)
	}
}

// A named block has markers of its own: the exactly-once comparison leaves the main figures of
// the same produce latency as they are.
func TestANamedBlockKeepsTheMainFigures(t *testing.T) {
	path := filepath.Join(t.TempDir(), "performance.md")
	for _, block := range []string{"", "exactly once", "exactly once"} {
		if err := writeFigures(path, block, 2*time.Millisecond, "figures of "+block+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	doc, _ := os.ReadFile(path)
	text := string(doc)
	if !strings.Contains(text, "<!-- figures, produce latency 2ms: written by go run ./bench -->\nfigures of \n") ||
		!strings.Contains(text, "<!-- figures, exactly once, produce latency 2ms: written by go run ./bench -->\nfigures of exactly once\n<!-- end of figures, exactly once, produce latency 2ms -->") ||
		strings.Count(text, "figures of exactly once") != 1 {
		t.Errorf("blocks not kept apart:\n%s", text)
	}
}

// A drain's rate counts the answers read after the first poll, over the time from it to the
// last: an exactly-once system's first poll brings a whole transaction's answers at once.
func TestSpanCountsTheFirstPollsAnswers(t *testing.T) {
	t0 := time.Now()
	r := &answerReader{first: t0, last: t0.Add(time.Second)}
	for _, at := range []time.Time{t0, t0, t0, t0.Add(time.Millisecond), t0.Add(time.Second)} {
		r.records = append(r.records, answerRecord{at: at})
	}
	if first, last, n := r.span(); !first.Equal(t0) || !last.Equal(t0.Add(time.Second)) || n != 3 {
		t.Errorf("span %v to %v, %d in the first poll; want 1s and 3", first, last, n)
	}
}

// With a produce latency, an exactly-once system's transactional requests wait as its writes do
// (with -delay-transactions), and each committed transaction is counted.
func TestTransactionsAreDelayedAndCounted(t *testing.T) {
	for _, delayTransactions := range []bool{true, false} {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "a.succeeded"))
		if err != nil {
			t.Fatal(err)
		}
		tb := &testbed{cluster: cluster}
		tb.control(delayTransactions)
		const latency = 50 * time.Millisecond
		tb.produceLatency.Store(int64(latency))
		cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.TransactionalID("bench-test"))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, commit := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort, kgo.TryCommit} {
			if err := cl.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "a.succeeded", Value: []byte("answer")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			began := time.Now()
			if err := cl.EndTransaction(ctx, commit); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(began); (took >= latency) != delayTransactions {
				t.Errorf("delayTransactions %v: ending a transaction took %v, with a produce latency of %v", delayTransactions, took, latency)
			}
		}
		if got := tb.commits.Load(); got != 2 {
			t.Errorf("%d commits counted, want 2", got)
		}
		cl.Close()
		cluster.Close()
	}
}
