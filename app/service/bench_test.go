package service_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/servicetest"
)

// BenchmarkDrain drains a preloaded backlog through the service wired as the binary wires it,
// broker and client in the same process, at least once and exactly once (the answers then read
// read_committed), with the broker answering at once and taking 2 ms for each of the service's
// writes (its transactions' requests too). Exactly once waits more than it computes: where its
// time goes is in docs/performance.md. For profiles:
//
//	go test ./app/service -run '^$' -bench Drain -benchtime 1x -cpuprofile cpu.out
//	go test ./app/service -run '^$' -bench 'Drain/exactly-once/write=2ms/partitions=4' -benchtime 1x -cpuprofile cpu.out
func BenchmarkDrain(b *testing.B) {
	for _, delivery := range []string{config.DeliveryAtLeastOnce, config.DeliveryExactlyOnce} {
		for _, write := range []time.Duration{0, 2 * time.Millisecond} {
			for _, partitions := range []int{1, 4} {
				b.Run(fmt.Sprintf("%s/write=%v/partitions=%d", delivery, write, partitions), func(b *testing.B) {
					drain(b, delivery, write, partitions)
				})
			}
		}
	}
}

func drain(b *testing.B, delivery string, write time.Duration, partitions int) {
	const n = 50_000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cluster := servicetest.Cluster(b, partitions)
		if write > 0 {
			cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				for _, t := range req.(*kmsg.ProduceRequest).Topics {
					if !strings.HasSuffix(t.Topic, ".requested") { // the service's answers, not the backlog
						cluster.SleepControl(func() { time.Sleep(write) })
						break
					}
				}
				return nil, nil, false
			})
			// A transaction's own requests are replicated writes too on a real cluster, as
			// go run ./bench -delay-transactions has them.
			for _, key := range []kmsg.Key{kmsg.AddPartitionsToTxn, kmsg.AddOffsetsToTxn, kmsg.TxnOffsetCommit, kmsg.EndTxn} {
				cluster.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
					cluster.SleepControl(func() { time.Sleep(write) })
					return nil, nil, false
				})
			}
		}
		brokers := cluster.ListenAddrs()
		reqs := servicetest.Mix(fmt.Sprintf("bench%d", i), n, partitions)
		servicetest.Produce(b, servicetest.Client(b, brokers), reqs)
		cfg := servicetest.Config(b, brokers)
		cfg.Logging.Level = "warn" // as task bench runs the binary: rejections are logged at info
		var reader *servicetest.Reader
		if delivery == config.DeliveryExactlyOnce {
			cfg.Transport.Delivery.Mode = config.DeliveryExactlyOnce
			cfg.Transport.Delivery.TransactionalID = fmt.Sprintf("bench-%d", i)
			reader = servicetest.NewReader(b, brokers, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		} else {
			reader = servicetest.NewReader(b, brokers)
		}
		if err := cfg.Validate(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		svc := servicetest.Start(b, cfg)
		tally := reader.Await(b, reqs, 5*time.Minute)
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "requests/s")
		b.StopTimer()
		if len(tally.Missing) > 0 || len(tally.Wrong) > 0 || (delivery == config.DeliveryExactlyOnce && tally.Duplicates > 0) {
			b.Fatal(tally)
		}
		_ = svc.Stop()
		cluster.Close()
	}
}
