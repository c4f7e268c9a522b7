package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/servicetest"
)

// TestRecreatedAnswerTopicIsWrittenAgain: an operator deletes .succeeded while the service runs
// and creates it again. The pings sent after that are answered on the new topic, without a
// restart, on either transport.
func TestRecreatedAnswerTopicIsWrittenAgain(t *testing.T) {
	for _, transport := range []string{config.TransportFranz, config.TransportWatermill} {
		t.Run(transport, func(t *testing.T) { testRecreatedAnswerTopic(t, transport) })
	}
}

func testRecreatedAnswerTopic(t *testing.T, transport string) {
	const partitions = 2
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	cfg := servicetest.Config(t, brokers)
	cfg.Transport.Name = transport
	servicetest.Start(t, cfg)
	client := servicetest.Client(t, brokers)
	admin := kadm.NewClient(client)
	ctx := context.Background()

	before := servicetest.Mix("before", 20, partitions)
	servicetest.Produce(t, client, before)
	if tally := servicetest.NewReader(t, brokers).Await(t, before, 30*time.Second); len(tally.Missing) > 0 {
		t.Fatalf("before the recreation: %s", tally)
	}
	if _, err := admin.DeleteTopic(ctx, servicetest.Topics.Succeeded); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateTopic(ctx, partitions, 1, nil, servicetest.Topics.Succeeded); err != nil {
		t.Fatal(err)
	}
	recreated := time.Now()
	after := servicetest.Mix("after", 20, partitions)
	servicetest.Produce(t, client, after)
	tally := servicetest.NewReader(t, brokers).Await(t, after, 60*time.Second)
	t.Logf("after the recreation: %s in %v", tally, time.Since(recreated).Round(100*time.Millisecond))
	if len(tally.Missing) > 0 || len(tally.Wrong) > 0 {
		t.Fatalf("after the recreation: %s\nmissing: %v\nwrong: %v", tally, head(tally.Missing), head(tally.Wrong))
	}
}
