package main

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/servicetest"
)

// TestKcatReadsCommittedAnswersOnly holds the command docs/exactly-once.md gives the readers of
// an exactly-once service's answers: kcat with -X isolation.level=read_committed prints the
// answers of committed transactions and none of an aborted one, also when the aborted one lies
// between two committed ones. Without -X it does the same (librdkafka's default); with
// read_uncommitted it prints the aborted answer too, which is what the setting is for. The
// answers are written by franz-go in transactions, as the service writes them.
func TestKcatReadsCommittedAnswersOnly(t *testing.T) {
	kcat := servicetest.RequireTool(t, "kcat", "apt-get install kcat")
	cluster := servicetest.Cluster(t, 1)
	broker := cluster.ListenAddrs()[0]
	topic := servicetest.Topics.Succeeded
	answer := func(id string) string {
		return `{"transaction-id": "` + id + `", "payload": {"message": "pong"}}`
	}

	producer, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID("docs-exactly-once"), kgo.TransactionTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, txn := range []struct {
		id     string
		commit bool
	}{{"committed-1", true}, {"aborted-1", false}, {"committed-2", true}} {
		if err := producer.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := producer.ProduceSync(ctx, &kgo.Record{Key: []byte(txn.id), Value: []byte(answer(txn.id))}).FirstErr(); err != nil {
			t.Fatalf("producing %s: %v", txn.id, err)
		}
		if err := producer.EndTransaction(ctx, kgo.TransactionEndTry(txn.commit)); err != nil {
			t.Fatalf("ending the transaction of %s: %v", txn.id, err)
		}
	}

	read := func(extra ...string) []string {
		t.Helper()
		args := append([]string{"-C", "-b", broker, "-t", topic, "-e", "-K", " "}, extra...)
		out, err := exec.CommandContext(ctx, kcat, args...).Output()
		if err != nil {
			t.Fatalf("kcat %s: %v", strings.Join(args, " "), err)
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	committed := []string{"committed-1 " + answer("committed-1"), "committed-2 " + answer("committed-2")}
	all := []string{committed[0], "aborted-1 " + answer("aborted-1"), committed[1]}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-X", "isolation.level=read_committed"}, committed},
		{nil, committed},
		{[]string{"-X", "isolation.level=read_uncommitted"}, all},
	} {
		if got := read(tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("kcat -C -e %s printed\n  %s\nwant\n  %s", strings.Join(tc.args, " "), strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
		}
	}
}
