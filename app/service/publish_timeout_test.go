package service_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/servicetest"
)

// TestPublishTimeoutsThatStillWriteAnswerOnce: for three seconds the broker writes every answer
// to .succeeded but answers the write with REQUEST_TIMED_OUT (as a broker does when its
// replicas are slow to acknowledge). The producer's retries of a write are idempotent, so the
// broker keeps one copy of each answer, and a publish keeps retrying for KAFKA_TIMEOUT before it
// fails: each ping is answered once, with a pong and nothing on .failed, on either transport.
func TestPublishTimeoutsThatStillWriteAnswerOnce(t *testing.T) {
	for _, transport := range []string{config.TransportFranz, config.TransportWatermill} {
		t.Run(transport, func(t *testing.T) {
			testPublishTimeouts(t, transport, 3*time.Second, func(cfg *config.Service) {}, 1)
		})
	}
}

// TestPublishTimeoutsOutlastingTheRetriesAreBounded: the same, for longer than a publish and
// its retries take (KAFKA_TIMEOUT 1 s, RETRY_MAX_RETRIES 2). Each publish that times out may
// have written its answer, so a ping is answered at most once a publish: at most 3 pongs, and a
// processing failure on .failed once the retries are exhausted (docs/contract.md).
func TestPublishTimeoutsOutlastingTheRetriesAreBounded(t *testing.T) {
	for _, transport := range []string{config.TransportFranz, config.TransportWatermill} {
		t.Run(transport, func(t *testing.T) {
			testPublishTimeouts(t, transport, 6*time.Second, func(cfg *config.Service) {
				cfg.Kafka.Timeout = time.Second
				cfg.Retry.MaxRetries = 2
			}, 1+2+1)
		})
	}
}

func testPublishTimeouts(t *testing.T, transport string, window time.Duration, configure func(*config.Service), most int) {
	const n = 20
	cluster := servicetest.Cluster(t, 2)
	brokers := cluster.ListenAddrs()
	cfg := servicetest.Config(t, brokers)
	cfg.Transport.Name = transport
	configure(&cfg)
	servicetest.Start(t, cfg)

	var pings []servicetest.Request
	for _, r := range servicetest.Mix("timeout", 10*n, 2) {
		if r.Topic == servicetest.Topics.Succeeded && len(pings) < n && r.Tag[0] == 't' { // string ids only: the tag is the key
			pings = append(pings, r)
		}
	}
	fault := cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: servicetest.Topics.Succeeded, Err: kerr.RequestTimedOut, Count: -1})
	servicetest.Produce(t, servicetest.Client(t, brokers), pings)
	time.Sleep(window)
	fault.Remove()

	reader := servicetest.NewReader(t, brokers)
	tally := reader.Await(t, pings, 60*time.Second)
	// Later copies would come from retries still running: wait for them.
	time.Sleep(5 * time.Second)
	tally = reader.Await(t, pings, time.Second)
	perKey := map[string]map[string]int{}
	for _, a := range reader.Answers() {
		if perKey[a.Key] == nil {
			perKey[a.Key] = map[string]int{}
		}
		perKey[a.Key][a.Topic]++
	}
	var counts []string
	worst := 0
	for _, r := range pings {
		got := perKey[r.Tag]
		total := got[servicetest.Topics.Succeeded] + got[servicetest.Topics.Failed]
		worst = max(worst, total)
		counts = append(counts, fmt.Sprintf("%d+%d", got[servicetest.Topics.Succeeded], got[servicetest.Topics.Failed]))
		if most == 1 && got[servicetest.Topics.Failed] > 0 {
			t.Errorf("%s: %d answers on .failed besides %d pongs", r.Tag, got[servicetest.Topics.Failed], got[servicetest.Topics.Succeeded])
		}
	}
	sort.Strings(counts)
	t.Logf("%s; answers per ping (pongs+failures): %v", tally, counts)
	if len(tally.Missing) > 0 {
		t.Errorf("unanswered: %v", tally.Missing)
	}
	if worst > most {
		t.Errorf("a ping was answered %d times, want at most %d", worst, most)
	}
}
