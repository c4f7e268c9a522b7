package service_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pingpong/pingpong/app/servicetest"
)

// BenchmarkDrain drains a preloaded backlog through the service wired as the binary wires it,
// broker and client in the same process. For profiles (docs/performance.md):
//
//	go test ./app/service -run '^$' -bench Drain -benchtime 1x -cpuprofile cpu.out
func BenchmarkDrain(b *testing.B) {
	for _, partitions := range []int{1, 4} {
		b.Run(fmt.Sprintf("partitions=%d", partitions), func(b *testing.B) {
			const n = 50_000
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				cluster := servicetest.Cluster(b, partitions)
				brokers := cluster.ListenAddrs()
				reqs := servicetest.Mix(fmt.Sprintf("bench%d", i), n, partitions)
				servicetest.Produce(b, servicetest.Client(b, brokers), reqs)
				reader := servicetest.NewReader(b, brokers)
				b.StartTimer()
				start := time.Now()
				cfg := servicetest.Config(b, brokers)
				cfg.Logging.Level = "warn" // as task bench runs the binary: rejections are logged at info
				svc := servicetest.Start(b, cfg)
				tally := reader.Await(b, reqs, 5*time.Minute)
				b.ReportMetric(float64(n)/time.Since(start).Seconds(), "requests/s")
				b.StopTimer()
				if len(tally.Missing) > 0 || len(tally.Wrong) > 0 {
					b.Fatal(tally)
				}
				_ = svc.Stop()
				cluster.Close()
			}
		})
	}
}
