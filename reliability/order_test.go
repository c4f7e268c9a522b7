package reliability_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/pingpong/pingpong/poison"
)

// TestEachTransactionsAnswersKeepItsRequestsOrder: 20,000 pings over 200 transaction ids on four
// partitions, each keyed by its id and numbered in its correlation id, answered by the built
// binary with its defaults (KAFKA_ORDERING=key), with a second instance joining half-way (a
// rebalance): every id's pongs come in the order of its requests.
func TestEachTransactionsAnswersKeepItsRequestsOrder(t *testing.T) {
	const n, ids = 20_000, 200
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	records := orderedPings(n, ids)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	producer := servicetest.Client(t, brokers)
	if err := producer.ProduceSync(ctx, records[:n/2]...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	reader := servicetest.NewReader(t, brokers)
	startBinary(t, brokers)
	waitFor(t, time.Minute, "a sixth of the requests answered", func() bool {
		reader.Await(t, nil, 20*time.Millisecond)
		return len(reader.Answers()) >= n/6
	})
	// A second instance joins, and the group rebalances, while the rest of the requests arrive
	// over two seconds.
	second := startBinary(t, brokers)
	for chunk := range 20 {
		rest := records[n/2:]
		if err := producer.ProduceSync(ctx, rest[chunk*len(rest)/20:(chunk+1)*len(rest)/20]...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A loaded machine can take longer to start the second instance than the first takes to
	// answer: its assignment is awaited, not assumed.
	waitFor(t, time.Minute, "the second instance assigned partitions (a rebalance)", func() bool {
		return strings.Contains(second.Output.String(), `"msg":"Partitions assigned","partitions":[`)
	})
	waitFor(t, 2*time.Minute, "every request answered", func() bool {
		reader.Await(t, nil, 100*time.Millisecond)
		return len(reader.Answers()) >= n
	})
	checkOrder(t, reader.Answers(), ids)
}

// TestEachTransactionsAnswersKeepItsRequestsOrderUnderPublishFailures: the same pings, with every
// write to .succeeded failing for a second while they are answered (a key's answers after the
// failed one rewound and answered again from it): every id's pongs still come in the order of
// its requests, none twice.
func TestEachTransactionsAnswersKeepItsRequestsOrderUnderPublishFailures(t *testing.T) {
	const n, ids = 20_000, 200
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	producer := servicetest.Client(t, brokers)
	if err := producer.ProduceSync(ctx, orderedPings(n, ids)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	reader := servicetest.NewReader(t, brokers)
	startBinary(t, brokers)
	waitFor(t, time.Minute, "a sixth of the requests answered", func() bool {
		reader.Await(t, nil, 20*time.Millisecond)
		return len(reader.Answers()) >= n/6
	})
	fault := faultyProduce(cluster, servicetest.Topics.Succeeded)
	waitFor(t, 30*time.Second, "the fault to fail a publish", func() bool { return fault.Hits() > 0 })
	time.Sleep(time.Second) // the fault's length, shorter than the retries
	fault.Remove()
	waitFor(t, 2*time.Minute, "every request answered", func() bool {
		reader.Await(t, nil, 100*time.Millisecond)
		return len(reader.Answers()) >= n
	})
	t.Logf("%d produce requests failed", fault.Hits())
	checkOrder(t, reader.Answers(), ids)
}

// orderedPings are n pings over ids transaction ids, each keyed by its id and numbered in its
// correlation id.
func orderedPings(n, ids int) []*kgo.Record {
	records := make([]*kgo.Record, n)
	for i := range records {
		id := fmt.Sprintf("tx-%d", i%ids)
		records[i] = &kgo.Record{
			Topic: servicetest.Topics.Requested, Partition: int32(i % ids % partitions), Key: []byte(id),
			Value:   []byte(`{"transaction-id": "` + id + `", "payload": {"message": "ping"}}`),
			Headers: []kgo.RecordHeader{{Key: poison.HeaderCorrelationID, Value: []byte(strconv.Itoa(i))}},
		}
	}
	return records
}

// checkOrder fails the test unless every id's answers come in the order of its requests' numbers,
// each once.
func checkOrder(t *testing.T, answers []servicetest.Answer, ids int) {
	t.Helper()
	last := map[string]int{}
	outOfOrder := map[string]string{}
	for _, a := range answers {
		seq, err := strconv.Atoi(a.Headers[poison.HeaderCorrelationID])
		if err != nil {
			t.Fatalf("answer %q without the request's number: %v", a.Value, a.Headers)
		}
		if prev, ok := last[a.Key]; ok && seq <= prev {
			outOfOrder[a.Key] = fmt.Sprintf("request %d answered after %d", seq, prev)
		}
		last[a.Key] = seq
	}
	if len(last) != ids {
		t.Errorf("answers for %d transaction ids, want %d", len(last), ids)
	}
	if len(outOfOrder) > 0 {
		t.Errorf("%d of %d transaction ids answered out of request order (or twice), e.g. %v", len(outOfOrder), ids, first(outOfOrder))
	}
}

func first(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if len(out) == 3 {
			break
		}
		out[k] = v
	}
	return out
}
