package transport_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// At light load (four partitions, one record at a time) each record is fetched, dispatched and acked before the next one is written.
// The partition then stays in its fetch session all along: a partition dropped from it (paused)
// and added back waits for the next record until the fetch in flight without it returns, which
// is what made the service's latency tail at 1,000 requests/s three times the others'. The
// broker sees a dropped partition as a fetch that forgets it.
func TestLightlyLoadedPartitionsStayInTheirFetches(t *testing.T) {
	const partitions = 4
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, testTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	var fetches, forgetting atomic.Int64
	cluster.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		fetches.Add(1)
		if len(req.(*kmsg.FetchRequest).ForgottenTopics) > 0 {
			forgetting.Add(1)
		}
		return nil, nil, false
	})
	brokers := cluster.ListenAddrs()
	producer, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(testTopic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)

	_, msgs := subscribe(t, brokers, 64)
	const n = 200
	for i := range n {
		if err := producer.ProduceSync(context.Background(), &kgo.Record{Partition: int32(i % partitions), Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		msg := receive(t, msgs)
		if string(msg.Payload) != strconv.Itoa(i) {
			t.Fatalf("message %q, want %d", msg.Payload, i)
		}
		msg.Ack()
	}
	if fetches.Load() < n {
		t.Fatalf("%d fetches for %d records written one at a time", fetches.Load(), n)
	}
	// A partition may still leave the session once in a while (franz-go resets a session now and
	// then, and a batch can arrive while its worker is busy); pausing for every batch made 197
	// of 200 fetches forget one.
	if f := forgetting.Load(); f > n/20 {
		t.Errorf("%d of %d fetches dropped a partition from the fetch session while each had one record at a time", f, fetches.Load())
	}
}
