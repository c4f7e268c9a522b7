package reliability_test

import (
	"context"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/pingpong/pingpong/poison"
)

// productionRetries puts back the default retry policy (100 ms doubling to 1.6 s, five retries,
// about three seconds in all) that servicetest shortens: a fault shorter than that is absorbed
// by retries in production, and the scenarios show it.
func productionRetries(c *config.Service) {
	fs := pflag.NewFlagSet("defaults", pflag.ContinueOnError)
	var defaults config.Retry
	defaults.AddFlags(fs)
	_ = fs.Parse(nil)
	c.Retry = defaults
}

// faultyProduce fails every produce request to topic until removed, the way a broker that cannot
// write to a topic's partitions answers.
func faultyProduce(cluster *kfake.Cluster, topic string) *kfake.FaultHandle {
	return cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.UnknownServerError, Count: -1})
}

// TestTransientPublishFaults fails the publishing of answers to one topic for a second, less than
// the retries last: every request gets its normal answer.
func TestTransientPublishFaults(t *testing.T) {
	for _, topic := range []string{servicetest.Topics.Succeeded, servicetest.Topics.Failed} {
		t.Run(topic, func(t *testing.T) {
			cluster := servicetest.Cluster(t, partitions)
			brokers := cluster.ListenAddrs()
			svc := servicetest.Start(t, serviceConfig(t, brokers, productionRetries))
			reader := servicetest.NewReader(t, brokers)

			start := time.Now()
			ld := startLoad(t, brokers, servicetest.Mix("transient", 2000, partitions), 0, chunk, interval)
			waitFor(t, 30*time.Second, "a quarter of the load answered", func() bool { return handled(t, svc) >= 500 })
			fault := faultyProduce(cluster, topic)
			waitFor(t, 30*time.Second, "the fault to fail a publish", func() bool { return fault.Hits() > 0 })
			time.Sleep(time.Second) // the fault's length, not a wait for a result
			fault.Remove()
			reqs := ld.finish(t, time.Minute)
			tally, exhausted := collect(t, reader, reqs)
			figures{scenario: "publishing to " + topic + " fails for 1 s (" + itoa(fault.Hits()) + " produce requests failed)",
				fault: "transient publish failure", tally: tally, exhausted: exhausted, elapsed: time.Since(start), felt: []*servicetest.Running{svc}}.report(t)
			if exhausted > 0 {
				t.Errorf("%d requests were poisoned by a fault shorter than the retries", exhausted)
			}
			felt := metric(t, svc, "pingpong_retries_total") + metric(t, svc, "pingpong_nacks_total")
			if felt == 0 {
				t.Error("no retry and no redelivery: the fault was not felt, the scenario proves nothing")
			}
		})
	}
}

// TestPublishToSucceededFailsForGood fails every pong's publishing until ten pings were poisoned:
// each ping then gets the contract's answer for processing that failed for good, on .failed.
func TestPublishToSucceededFailsForGood(t *testing.T) {
	publishToSucceededFailsForGood(t, false)
}

// publishToSucceededFailsForGood is TestPublishToSucceededFailsForGood, in exactly-once mode if
// exactlyOnce (TestExactlyOnceAnswersThatCannotBeWrittenArePoisoned).
func publishToSucceededFailsForGood(t *testing.T, exactlyOnce bool) {
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	svc := servicetest.Start(t, serviceConfig(t, brokers, func(c *config.Service) {
		if exactlyOnce {
			c.Transport.Delivery.Mode, c.Transport.Delivery.TransactionalID = config.DeliveryExactlyOnce, "eos-poisoned"
		}
	}))
	reader := servicetest.NewReader(t, brokers)

	start := time.Now()
	ld := startLoad(t, brokers, servicetest.Mix("poisoned", 2000, partitions), 0, chunk, interval)
	waitFor(t, 30*time.Second, "a quarter of the load answered", func() bool { return handled(t, svc) >= 500 })
	fault := faultyProduce(cluster, servicetest.Topics.Succeeded)
	// Ten pings answered as retries exhausted, as a reader sees them: in exactly-once mode a
	// poison record written in a transaction that then aborts is not one.
	waitFor(t, 30*time.Second, "ten pings poisoned", func() bool {
		reader.Await(t, nil, 20*time.Millisecond)
		n := 0
		for _, a := range reader.Answers() {
			if a.Headers[poison.HeaderReasonCode] == string(poison.ReasonRetriesExhausted) {
				n++
			}
		}
		return n >= 10
	})
	fault.Remove()
	reqs := ld.finish(t, time.Minute)
	tally, exhausted := collect(t, reader, reqs)
	figures{scenario: "publishing to .succeeded fails for good until 10 pings are poisoned",
		fault: "permanent publish failure", tally: tally, exhausted: exhausted, elapsed: time.Since(start), felt: []*servicetest.Running{svc},
		exactlyOnce: exactlyOnce}.report(t)
	if exhausted < 10 {
		t.Errorf("%d pings answered as retries exhausted, want at least 10", exhausted)
	}
}

// TestPublishToFailedFailsForGood fails every publishing to .failed, the poison queue itself:
// a rejection can then be answered nowhere, so it must not be acked. The test checks that no
// partition's committed offset passes an unanswered request while the fault lasts, and that
// every request is answered once it is removed.
func TestPublishToFailedFailsForGood(t *testing.T) {
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	cfg := serviceConfig(t, brokers)
	svc := servicetest.Start(t, cfg)
	reader := servicetest.NewReader(t, brokers)
	adm := kadm.NewClient(servicetest.Client(t, brokers))

	start := time.Now()
	ld := startLoad(t, brokers, servicetest.Mix("stuck", 2000, partitions), 0, chunk, interval)
	waitFor(t, 30*time.Second, "a quarter of the load answered", func() bool { return handled(t, svc) >= 500 })
	fault := faultyProduce(cluster, servicetest.Topics.Failed)
	waitFor(t, 30*time.Second, "twenty redeliveries", func() bool { return metric(t, svc, "pingpong_nacks_total") >= 20 })
	time.Sleep(1500 * time.Millisecond) // past the subscriber's one-second commit interval

	// Nothing answered, nothing committed: the committed offset of each partition is at most
	// the offset of its first request still without an answer.
	sent := ld.sent()
	reader.Await(t, nil, 500*time.Millisecond)
	pending := servicetest.Check(ld.pool[:sent], reader.Answers()).Missing
	firstPending := map[int32]int64{}
	isPending := map[string]bool{}
	for _, tag := range pending {
		isPending[tag] = true
	}
	for i, r := range ld.pool[:sent] {
		if _, seen := firstPending[r.Partition]; isPending[r.Tag] && !seen {
			firstPending[r.Partition] = ld.offset(i)
		}
	}
	if len(firstPending) == 0 {
		t.Fatal("every request was answered while .failed could not be written: the fault was not felt")
	}
	committed, err := adm.FetchOffsets(context.Background(), cfg.ConsumerGroup)
	if err != nil {
		t.Fatal(err)
	}
	for p, first := range firstPending {
		if c, ok := committed.Lookup(servicetest.Topics.Requested, p); ok && c.At > first {
			t.Errorf("partition %d: offset %d committed past request %d, which has no answer", p, c.At, first)
		}
	}
	stuck := len(pending)

	fault.Remove()
	reqs := ld.finish(t, time.Minute)
	tally, exhausted := collect(t, reader, reqs)
	figures{scenario: "publishing to .failed fails for good until 20 redeliveries (" + itoa(stuck) + " requests waiting), then recovers",
		fault: "poison queue unwritable", tally: tally, exhausted: exhausted, elapsed: time.Since(start), felt: []*servicetest.Running{svc}}.report(t)
}
