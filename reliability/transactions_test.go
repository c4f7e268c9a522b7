package reliability_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/servicetest"
)

// TestOnlyCommittedRequestsAreAnswered: requests written in Kafka transactions, read by the built
// binary on each transport, and in exactly-once mode. An aborted transaction's requests are never
// answered, a committed one's all are, and a transaction held open delays its requests' answers
// until it commits.
func TestOnlyCommittedRequestsAreAnswered(t *testing.T) {
	for transport, env := range map[string][]string{
		"franz-go":        {"KAFKA_TRANSPORT=franz-go"},
		"watermill-kafka": {"KAFKA_TRANSPORT=watermill-kafka"},
		"exactly-once":    {"KAFKA_DELIVERY=exactly-once"},
	} {
		t.Run(transport, func(t *testing.T) {
			cluster := servicetest.Cluster(t, partitions)
			brokers := cluster.ListenAddrs()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			producer := servicetest.Client(t, brokers, kgo.TransactionalID("requests-"+transport))
			pings := func(run string) []*kgo.Record {
				var recs []*kgo.Record
				for i := range 20 {
					id := fmt.Sprintf("%s-%d", run, i)
					recs = append(recs, &kgo.Record{Topic: servicetest.Topics.Requested, Partition: int32(i % partitions), Key: []byte(id),
						Value: []byte(`{"transaction-id": "` + id + `", "payload": {"message": "ping"}}`)})
				}
				return recs
			}
			transaction := func(recs []*kgo.Record, end *kgo.TransactionEndTry) {
				t.Helper()
				if err := producer.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				if err := producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
				if end != nil {
					if err := producer.EndTransaction(ctx, *end); err != nil {
						t.Fatal(err)
					}
				}
			}
			abort, commit := kgo.TryAbort, kgo.TryCommit
			transaction(pings("aborted"), &abort)
			transaction(pings("committed"), &commit)
			transaction(pings("open"), nil) // written, not committed yet

			startBinaryWith(t, brokers, env...)
			reader := servicetest.NewReader(t, brokers)
			count := func(prefix string) int {
				n := 0
				for _, a := range reader.Answers() {
					if strings.HasPrefix(a.Key, prefix+"-") {
						n++
					}
				}
				return n
			}
			waitFor(t, time.Minute, "the committed transaction's requests answered", func() bool {
				reader.Await(t, nil, 100*time.Millisecond)
				return count("committed") == 20
			})
			reader.Await(t, nil, 2*time.Second)
			if n := count("open"); n > 0 {
				t.Fatalf("%d requests of a transaction still open were answered", n)
			}
			if err := producer.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatal(err)
			}
			waitFor(t, time.Minute, "the held transaction's requests answered once it committed", func() bool {
				reader.Await(t, nil, 100*time.Millisecond)
				return count("open") == 20
			})
			if n := count("aborted"); n > 0 {
				t.Errorf("%d requests of an aborted transaction were answered", n)
			}
			if n := len(reader.Answers()); n != 40 {
				t.Errorf("%d answers, want 40 (20 committed, 20 committed later)", n)
			}
		})
	}
}
