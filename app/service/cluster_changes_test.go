package service_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/servicetest"
)

// TestRecreatedRequestedTopicIsFollowed: an operator deletes the requested topic while the
// service runs and creates it again. While it is missing the service is not ready and its
// fetches stay few; once it exists again every request written to it is answered, read from
// the new topic's start, with either CONSUMER_OFFSET.
func TestRecreatedRequestedTopicIsFollowed(t *testing.T) {
	for _, offset := range []string{config.OffsetEarliest, config.OffsetLatest} {
		t.Run(offset, func(t *testing.T) { testRecreatedTopic(t, offset, true) })
	}
	// Deleted and created again at once, as a script would: the service never sees it missing.
	t.Run("at-once", func(t *testing.T) { testRecreatedTopic(t, config.OffsetEarliest, false) })
}

func testRecreatedTopic(t *testing.T, offset string, seenMissing bool) {
	const partitions = 4
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	cfg := servicetest.Config(t, brokers)
	cfg.ConsumerOffset = offset
	svc := servicetest.Start(t, cfg)
	base := "http://" + svc.HTTPAddr()
	client := servicetest.Client(t, brokers)
	admin := kadm.NewClient(client)
	ctx := context.Background()

	waitFor(t, 15*time.Second, func() bool { return status(base+"/readyz") == http.StatusOK })
	before := servicetest.Mix("before", 40, partitions)
	servicetest.Produce(t, client, before)
	if tally := servicetest.NewReader(t, brokers).Await(t, before, 30*time.Second); len(tally.Missing) > 0 {
		t.Fatalf("before the deletion: %s", tally)
	}

	if _, err := admin.DeleteTopic(ctx, servicetest.Topics.Requested); err != nil {
		t.Fatal(err)
	}
	if seenMissing {
		seeMissing(t, cluster, base)
	}

	recreated := time.Now()
	if _, err := admin.CreateTopic(ctx, partitions, 1, nil, servicetest.Topics.Requested); err != nil {
		t.Fatal(err)
	}
	// A new producer, as kcat would be: franz-go writes to the first instance of a topic only.
	after := servicetest.Mix("after", 40, partitions)
	servicetest.Produce(t, servicetest.Client(t, brokers), after)
	tally := servicetest.NewReader(t, brokers).Await(t, after, 30*time.Second)
	t.Logf("after the recreation: %s in %v", tally, time.Since(recreated).Round(100*time.Millisecond))
	if len(tally.Missing) > 0 || len(tally.Wrong) > 0 {
		t.Fatalf("after the recreation: %s\nmissing: %v\nwrong: %v", tally, head(tally.Missing), head(tally.Wrong))
	}
	waitFor(t, 15*time.Second, func() bool { return status(base+"/readyz") == http.StatusOK })
}

// seeMissing checks what an operator sees while the requested topic is missing: not ready,
// alive, and few fetches.
func seeMissing(t *testing.T, cluster *kfake.Cluster, base string) {
	t.Helper()
	waitFor(t, 15*time.Second, func() bool { return status(base+"/readyz") == http.StatusServiceUnavailable })
	if body := get(t, base+"/readyz", http.StatusServiceUnavailable); !strings.Contains(body, "does not exist") {
		t.Errorf("/readyz while the topic is missing: %q", body)
	}
	if status(base+"/healthz") != http.StatusOK {
		t.Error("the process is alive (healthz) while the topic is missing")
	}
	fetches := cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Count: -1, Observe: true})
	time.Sleep(2 * time.Second)
	perSecond := float64(fetches.Hits()) / 2
	fetches.Remove()
	t.Logf("%.1f fetch requests a second while the topic was missing", perSecond)
	if perSecond > 20 {
		t.Errorf("%.1f fetch requests a second while the topic was missing, want a few", perSecond)
	}
}

// TestAddedPartitionsAreConsumed: an operator adds partitions to the requested topic, as the
// runbook suggests when lag grows; requests written to the new partitions are answered within
// 30 s, even those written before the group took them with CONSUMER_OFFSET=latest.
func TestAddedPartitionsAreConsumed(t *testing.T) {
	cluster := servicetest.Cluster(t, 2)
	brokers := cluster.ListenAddrs()
	cfg := servicetest.Config(t, brokers)
	cfg.ConsumerOffset = config.OffsetLatest
	svc := servicetest.Start(t, cfg)
	base := "http://" + svc.HTTPAddr()
	client := servicetest.Client(t, brokers)
	waitFor(t, 15*time.Second, func() bool { return status(base+"/readyz") == http.StatusOK })

	if _, err := kadm.NewClient(client).CreatePartitions(context.Background(), 2, servicetest.Topics.Requested); err != nil {
		t.Fatal(err)
	}
	added := time.Now()
	reqs := servicetest.Mix("grown", 40, 4) // partitions 2 and 3 are the new ones
	servicetest.Produce(t, client, reqs)
	tally := servicetest.NewReader(t, brokers).Await(t, reqs, 30*time.Second)
	t.Logf("%s, %v after the partitions were added", tally, time.Since(added).Round(100*time.Millisecond))
	if len(tally.Missing) > 0 || len(tally.Wrong) > 0 {
		t.Fatalf("%s\nmissing: %v\nwrong: %v", tally, head(tally.Missing), head(tally.Wrong))
	}
}
