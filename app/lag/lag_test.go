package lag_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/lag"
)

const (
	topic = "dev.pingpong.requested"
	group = "pingpong"
)

// cluster is a kfake broker with the topic on three partitions, and an admin client on it.
func cluster(t *testing.T) (*kfake.Cluster, *kgo.Client, *kadm.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	client, err := kgo.NewClient(
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.DefaultProduceTopic(topic),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return c, client, kadm.NewClient(client)
}

// produce writes n records to the partition.
func produce(t *testing.T, client *kgo.Client, partition int32, n int) {
	t.Helper()
	var records []*kgo.Record
	for range n {
		records = append(records, &kgo.Record{Partition: partition, Value: []byte(`{"transaction-id": "1", "payload": {"message": "ping"}}`)})
	}
	if err := client.ProduceSync(context.Background(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// commit commits the group's offsets, as the service's consumer does after answering.
func commit(t *testing.T, adm *kadm.Client, offsets map[int32]int64) {
	t.Helper()
	os := make(kadm.Offsets)
	for p, at := range offsets {
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
	}
	if err := adm.CommitAllOffsets(context.Background(), group, os); err != nil {
		t.Fatal(err)
	}
}

// newCollector measures once at construction; Interval is long so that the test's own Poll
// calls are the only later measurements.
func newCollector(t *testing.T, adm *kadm.Client, cfg lag.Config) *lag.Collector {
	t.Helper()
	cfg.Group, cfg.Topic = group, topic
	if cfg.Interval == 0 {
		cfg.Interval = time.Hour
		cfg.StaleAfter = time.Hour
	}
	c := lag.NewCollector(adm, cfg)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestLagIsEndOffsetMinusCommittedOffset(t *testing.T) {
	_, client, adm := cluster(t)
	produce(t, client, 0, 10)
	produce(t, client, 1, 5)
	produce(t, client, 2, 3)
	commit(t, adm, map[int32]int64{0: 4, 1: 5}) // partition 2: never committed

	for _, tc := range []struct {
		name      string
		fromStart bool
		lag2      float64 // partition 2's lag
	}{
		{"earliest: an uncommitted partition is all lag", true, 3},
		{"latest: an uncommitted partition has no lag", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCollector(t, adm, lag.Config{UncommittedFromStart: tc.fromStart})
			if err := c.Poll(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := map[string]float64{
				"pingpong_consumer_lag{0}":                6,
				"pingpong_consumer_lag{1}":                0,
				"pingpong_consumer_lag{2}":                tc.lag2,
				"pingpong_consumer_end_offset{0}":         10,
				"pingpong_consumer_end_offset{1}":         5,
				"pingpong_consumer_end_offset{2}":         3,
				"pingpong_consumer_committed_offset{0}":   4,
				"pingpong_consumer_committed_offset{1}":   5,
				"pingpong_consumer_committed_offset{2}":   -1,
				"pingpong_consumer_lag_poll_errors_total": 0,
			}
			got := values(t, c)
			maps.DeleteFunc(got, func(name string, _ float64) bool {
				return strings.HasPrefix(name, "pingpong_consumer_stalled_seconds") // TestAStalledPartitionIsMeasured
			})
			if !maps.Equal(got, want) {
				t.Fatalf("metrics:\n got %v\nwant %v", got, want)
			}
			lintAndCheckLabels(t, c)
		})
	}
}

// A partition whose committed offset does not move while it has records to read is stalled
// for as long as that lasts; a partition with nothing to read is not, and a commit ends it.
func TestAStalledPartitionIsMeasured(t *testing.T) {
	_, client, adm := cluster(t)
	produce(t, client, 0, 10)
	produce(t, client, 1, 5)
	commit(t, adm, map[int32]int64{0: 4, 1: 5}) // 0 has lag, 1 has none
	logger, logs := test.NewNullLogger()
	c := newCollector(t, adm, lag.Config{StallLogAfter: 200 * time.Millisecond, Logger: logrus.NewEntry(logger)})
	time.Sleep(300 * time.Millisecond)
	if err := c.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := values(t, c)
	if s := got["pingpong_consumer_stalled_seconds{0}"]; s < 0.2 {
		t.Errorf("partition 0 has lag and no commit for 300 ms: stalled %v s", s)
	}
	if s := got["pingpong_consumer_stalled_seconds{1}"]; s != 0 {
		t.Errorf("partition 1 has nothing to read: stalled %v s, want 0", s)
	}
	commit(t, adm, map[int32]int64{0: 6})
	if err := c.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := values(t, c)["pingpong_consumer_stalled_seconds{0}"]; s != 0 {
		t.Errorf("after a commit: stalled %v s, want 0", s)
	}
	// Logged once when found stalled, once when it moved again: not at every poll.
	var lines []string
	for _, e := range logs.AllEntries() {
		lines = append(lines, e.Level.String()+": "+e.Message)
	}
	want := []string{"warning: Partition stalled: its committed offset has not moved while records wait", "info: Partition moving again"}
	if !slices.Equal(lines, want) {
		t.Errorf("log lines %q, want %q", lines, want)
	}
}

func TestLagFollowsCommitsAndNewRecords(t *testing.T) {
	_, client, adm := cluster(t)
	produce(t, client, 0, 10)
	c := newCollector(t, adm, lag.Config{UncommittedFromStart: true})

	poll := func() float64 {
		t.Helper()
		if err := c.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, p := range c.Partitions() {
			if p.Partition == 0 {
				return float64(p.Lag)
			}
		}
		t.Fatal("no measurement of partition 0")
		return 0
	}
	if got := poll(); got != 10 {
		t.Fatalf("lag before any commit = %v, want 10", got)
	}
	commit(t, adm, map[int32]int64{0: 7})
	if got := poll(); got != 3 {
		t.Fatalf("lag after committing 7 of 10 = %v, want 3", got)
	}
	produce(t, client, 0, 5)
	if got := poll(); got != 8 {
		t.Fatalf("lag after 5 more records = %v, want 8", got)
	}
	commit(t, adm, map[int32]int64{0: 15})
	if got := poll(); got != 0 {
		t.Fatalf("lag after committing everything = %v, want 0", got)
	}
}

func TestUncommittedLagCountsFromTheLogStart(t *testing.T) {
	_, client, adm := cluster(t)
	produce(t, client, 0, 10)
	// Retention deleted the first 4 records: a new group starting at earliest reads 6.
	deleted, err := adm.DeleteRecords(context.Background(), kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: 4}}})
	if err == nil {
		err = deleted.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector(t, adm, lag.Config{UncommittedFromStart: true})
	if err := c.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := values(t, c)["pingpong_consumer_lag{0}"]; got != 6 {
		t.Fatalf("lag of an uncommitted partition with its first 4 of 10 records deleted = %v, want 6", got)
	}
}

func TestBackgroundPollingAndStaleness(t *testing.T) {
	kc, client, adm := cluster(t)
	produce(t, client, 1, 3)
	c := newCollector(t, adm, lag.Config{
		UncommittedFromStart: true,
		Interval:             50 * time.Millisecond,
		Timeout:              200 * time.Millisecond,
		StaleAfter:           time.Second,
	})
	// The collector measures on its own, without Poll being called.
	waitFor(t, "the first background measurement", func() bool { return lagSeries(t, c) == 3 })
	if errs := pollErrors(t, c); errs != 0 {
		t.Fatalf("poll errors while the cluster answers = %v, want 0", errs)
	}

	// The cluster goes away: polls fail and are counted, the last lag stays for StaleAfter,
	// then it is gone rather than shown as current.
	kc.Close()
	start := time.Now()
	waitFor(t, "a failed poll to be counted", func() bool { return pollErrors(t, c) > 0 })
	if time.Since(start) < 500*time.Millisecond && lagSeries(t, c) != 3 {
		t.Fatal("the lag disappeared at the first failed poll, before it was stale")
	}
	waitFor(t, "the stale lag to disappear", func() bool { return lagSeries(t, c) == 0 })
	// The last good measurement was at most one interval (50ms) before the cluster closed.
	if elapsed := time.Since(start); elapsed < 900*time.Millisecond {
		t.Fatalf("the lag disappeared %v after the cluster closed, before StaleAfter (1s)", elapsed)
	}
}

func TestUnknownTopicIsAnErrorAndNoLag(t *testing.T) {
	_, _, adm := cluster(t)
	c := lag.NewCollector(adm, lag.Config{Group: group, Topic: "no.such.topic", Interval: time.Hour, Timeout: 2 * time.Second})
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Poll(context.Background()); err == nil {
		t.Fatal("Poll of a topic that does not exist succeeded")
	}
	if got := c.Partitions(); got != nil {
		t.Fatalf("partitions of a topic that does not exist = %v, want none", got)
	}
	// The first measurement (at construction, in the background) and ours both fail.
	waitFor(t, "two failed polls", func() bool { return pollErrors(t, c) == 2 })
	if got := values(t, c); len(got) != 1 {
		t.Fatalf("series for a topic that does not exist = %v, want only the error counter", got)
	}
}

func TestCloseStopsPolling(t *testing.T) {
	_, _, adm := cluster(t)
	c := lag.NewCollector(adm, lag.Config{Group: group, Topic: topic, Interval: 10 * time.Millisecond})
	done := make(chan struct{})
	go func() { _ = c.Close(); _ = c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
}

// lagSeries is the lag summed over the partitions, 0 when no lag is exported.
func lagSeries(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	var sum float64
	for key, v := range values(t, c) {
		if strings.HasPrefix(key, "pingpong_consumer_lag{") {
			sum += v
		}
	}
	return sum
}

func pollErrors(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	return values(t, c)["pingpong_consumer_lag_poll_errors_total"]
}

// values gathers the collector's series as name{partition} (or name) -> value.
func values(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "partition" {
					key += "{" + l.GetValue() + "}"
				}
			}
			out[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return out
}

// lintAndCheckLabels runs Prometheus's metric linter on the output and checks that every lag
// series names its group, topic and partition.
func lintAndCheckLabels(t *testing.T, c prometheus.Collector) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	if err != nil || len(problems) > 0 {
		t.Fatalf("the metrics break Prometheus's conventions: %v %v", problems, err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if f.GetName() != "pingpong_consumer_lag_poll_errors_total" && (labels["group"] != group || labels["topic"] != topic || labels["partition"] == "") {
				t.Errorf("%s has labels %v, want group=%s, topic=%s and a partition", f.GetName(), labels, group, topic)
			}
		}
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
