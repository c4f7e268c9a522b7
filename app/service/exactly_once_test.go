package service_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/servicetest"
)

// exactlyOnce is the test configuration of KAFKA_DELIVERY=exactly-once on brokers; id names the
// instance's transactional id (instances of one test run on one host, so the default would be
// shared).
func exactlyOnce(t *testing.T, brokers []string, id string) config.Service {
	cfg := servicetest.Config(t, brokers)
	cfg.Transport.Delivery.Mode = config.DeliveryExactlyOnce
	cfg.Transport.Delivery.TransactionalID = id
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// readCommitted reads the answer topics as the docs tell a client of exactly-once mode to
// (servicetest's reader does, whatever the mode).
func readCommitted(t *testing.T, brokers []string) *servicetest.Reader {
	return servicetest.NewReader(t, brokers)
}

func TestExactlyOnceAnswersEachRequestOnce(t *testing.T) {
	const partitions = 4
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	reqs := servicetest.Mix("eos", 2000, partitions)
	servicetest.Produce(t, servicetest.Client(t, brokers), reqs)
	svc := servicetest.Start(t, exactlyOnce(t, brokers, "eos-a"))

	tally := readCommitted(t, brokers).Await(t, reqs, time.Minute)
	if len(tally.Missing) > 0 || tally.Duplicates > 0 || len(tally.Wrong) > 0 {
		t.Fatalf("%s; wrong: %v", tally, first(tally.Wrong, 5))
	}
	metrics := get(t, "http://"+svc.HTTPAddr()+"/metrics", http.StatusOK)
	if !strings.Contains(metrics, "pingpong_transactions_committed_total ") || strings.Contains(metrics, "pingpong_transactions_committed_total 0\n") {
		t.Errorf("no transaction counted as committed:\n%s", grepLines(metrics, "pingpong_transaction"))
	}
}

// Every other write of answers fails for a while: each transaction that meets a failure aborts, and its
// requests are answered again in a later one. A read_committed reader sees every request
// answered once; a read_uncommitted one sees the aborted answers too.
func TestExactlyOnceUnderPublishFailures(t *testing.T) {
	const partitions = 4
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	var failing atomic.Bool
	var failed, seen atomic.Int64
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		produce := req.(*kmsg.ProduceRequest)
		// Every other write fails: the transaction holds answers written before it aborts.
		if !failing.Load() || produce.TransactionID == nil || seen.Add(1)%2 == 0 {
			return nil, nil, false
		}
		failed.Add(1)
		return servicetest.RefusedProduce(produce, kerr.InvalidRecord.Code), nil, true
	})
	reqs := servicetest.Mix("eos-fail", 2000, partitions)
	servicetest.Produce(t, servicetest.Client(t, brokers), reqs[:1000])
	uncommitted := servicetest.NewReader(t, brokers, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	cfg := exactlyOnce(t, brokers, "eos-b")
	// The default retries (100 ms doubling, five): the aborted transactions back off as Retry
	// would, and a one-second fault poisons nothing.
	cfg.Retry.InitialInterval, cfg.Retry.MaxInterval = 100*time.Millisecond, 10*time.Second
	svc := servicetest.Start(t, cfg)
	failing.Store(true)
	time.AfterFunc(time.Second, func() { failing.Store(false) })
	servicetest.Produce(t, servicetest.Client(t, brokers), reqs[1000:])

	tally := readCommitted(t, brokers).Await(t, reqs, time.Minute)
	if len(tally.Missing) > 0 || tally.Duplicates > 0 || len(tally.Wrong) > 0 {
		t.Fatalf("read committed: %s; wrong: %v", tally, first(tally.Wrong, 5))
	}
	if failed.Load() == 0 {
		t.Fatal("no write failed: the test proves nothing")
	}
	if all := uncommitted.Await(t, reqs, 10*time.Second); all.Duplicates == 0 {
		t.Errorf("read uncommitted: %s; the aborted answers should show there", all)
	}
	metrics := get(t, "http://"+svc.HTTPAddr()+"/metrics", http.StatusOK)
	if strings.Contains(metrics, `pingpong_transactions_aborted_total{reason="publish_failed"} 0`) {
		t.Errorf("no abort counted for the failed writes:\n%s", grepLines(metrics, "pingpong_transaction"))
	}
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// The broker refuses some transactional offset commits and some ends of transactions: each such
// transaction aborts (commit_failed) and its requests are answered again in a later one, once.
func TestExactlyOnceWhenCommittingTransactionsFails(t *testing.T) {
	const partitions = 4
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	var commits, ends atomic.Int64
	cluster.ControlKey(int16(kmsg.TxnOffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if commits.Add(1)%3 != 0 {
			return nil, nil, false
		}
		commit := req.(*kmsg.TxnOffsetCommitRequest)
		resp := commit.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, topic := range commit.Topics {
			rt := kmsg.NewTxnOffsetCommitResponseTopic()
			rt.Topic, rt.TopicID = topic.Topic, topic.TopicID
			for _, p := range topic.Partitions {
				rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.UnknownServerError.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	cluster.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		end := req.(*kmsg.EndTxnRequest)
		if !end.Commit || ends.Add(1)%4 != 0 {
			return nil, nil, false
		}
		resp := end.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.UnknownServerError.Code // not applied: retried as an abort
		return resp, nil, true
	})
	reqs := servicetest.Mix("eos-commit", 3000, partitions)
	svc := servicetest.Start(t, exactlyOnce(t, brokers, "eos-c"))
	client := servicetest.Client(t, brokers)
	for i := 0; i < len(reqs); i += 300 { // a transaction's worth at a time
		servicetest.Produce(t, client, reqs[i:i+300])
		time.Sleep(150 * time.Millisecond)
	}
	tally := readCommitted(t, brokers).Await(t, reqs, time.Minute)
	if len(tally.Missing) > 0 || tally.Duplicates > 0 || len(tally.Wrong) > 0 {
		t.Fatalf("%s; wrong: %v", tally, first(tally.Wrong, 5))
	}
	metrics := get(t, "http://"+svc.HTTPAddr()+"/metrics", http.StatusOK)
	if strings.Contains(metrics, `pingpong_transactions_aborted_total{reason="commit_failed"} 0`) {
		t.Errorf("no abort counted for the failed commits (%d offset commits, %d commits ended):\n%s", commits.Load(), ends.Load(), grepLines(metrics, "pingpong_transaction"))
	}
}

// A stopped service leaves no transaction open: the last one is committed or aborted, so the
// next owner of its partitions reads them at once, not after the transaction timeout.
func TestExactlyOnceShutdownLeavesNoTransactionOpen(t *testing.T) {
	const partitions = 4
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	reqs := servicetest.Mix("eos-stop", 20000, partitions)
	servicetest.Produce(t, servicetest.Client(t, brokers), reqs)
	svc := servicetest.Start(t, exactlyOnce(t, brokers, "eos-stop"))
	reader := readCommitted(t, brokers)
	deadline := time.Now().Add(time.Minute)
	for len(reader.Await(t, nil, 20*time.Millisecond).Missing) == 0 && len(reader.Answers()) < 2000 && time.Now().Before(deadline) {
	}
	if err := svc.Stop(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(servicetest.Client(t, brokers))
	described, err := adm.DescribeTransactions(context.Background(), "eos-stop")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range described {
		if d.State == "Ongoing" || d.State == "PrepareCommit" || d.State == "PrepareAbort" {
			t.Fatalf("transaction %s left %s after the service stopped", d.TxnID, d.State)
		}
	}
	// The next instance answers the rest at once, each request once.
	servicetest.Start(t, exactlyOnce(t, brokers, "eos-next"))
	tally := reader.Await(t, reqs, time.Minute)
	if len(tally.Missing) > 0 || tally.Duplicates > 0 || len(tally.Wrong) > 0 {
		t.Fatalf("%s; wrong: %v", tally, first(tally.Wrong, 5))
	}
}

// Keyed requests, many per key, drained from a backlog: the engine releases a key's next request
// out of offset order, and a closed transaction waits for those below its highest offset. None
// may wait behind one that cannot join until the next transaction: every transaction commits,
// none aborts for want of an answer.
func TestExactlyOnceTransactionsOfKeyedBacklogsCommit(t *testing.T) {
	const partitions, n, ids = 4, 20000, 200
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	records := make([]*kgo.Record, n)
	for i := range records {
		id := fmt.Sprintf("k-%d", i%ids)
		records[i] = &kgo.Record{Topic: servicetest.Topics.Requested, Partition: int32(i % ids % partitions), Key: []byte(id),
			Value: []byte(`{"transaction-id": "` + id + `", "payload": {"message": "ping"}}`)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := servicetest.Client(t, brokers).ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	svc := servicetest.Start(t, exactlyOnce(t, brokers, "eos-keyed"))
	reader := readCommitted(t, brokers)
	for deadline := time.Now().Add(time.Minute); len(reader.Answers()) < n && time.Now().Before(deadline); {
		reader.Await(t, nil, 100*time.Millisecond)
	}
	if got := len(reader.Answers()); got != n {
		t.Fatalf("%d answers read committed for %d requests", got, n)
	}
	metrics := get(t, "http://"+svc.HTTPAddr()+"/metrics", http.StatusOK)
	if !strings.Contains(metrics, `pingpong_transactions_aborted_total{reason="not_answered"} 0`) {
		t.Errorf("transactions aborted waiting for answers:\n%s", grepLines(metrics, "pingpong_transaction"))
	}
}
