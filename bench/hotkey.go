package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The hot-key scenario (issue 18): one partition gets a backlog of one record key at once, and
// requests of other keys arrive behind it at a steady rate while it drains. With KAFKA_ORDERING=key the other keys
// need not wait for the hot one; the scenario measures whether they do.
type hotKeyOptions struct {
	latencies []time.Duration // the broker's delay of each produce request of the service
	orderings []string        // KAFKA_ORDERING values
	records   int             // the hot key's backlog
	rate      int             // other keys' requests a second
	minFor    time.Duration   // the other keys are sent at least this long, and until the backlog is drained
}

// hotKeyResult is one run of the scenario.
type hotKeyResult struct {
	ordering string
	latency  time.Duration
	// others is how many requests of other keys were sent; their latencies, from sent to
	// answer read.
	others         int
	p50, p99, most time.Duration
	// hotDrain is the hot backlog's drain, from its first answer to its last.
	hotDrain time.Duration
	// cpuPerRequest is the service process's CPU time from the backlog's writing to the last
	// answer, by the requests answered.
	cpuPerRequest     time.Duration
	peakRSS           int64
	lost, dups, wrong int
}

// hotKey runs the scenario for each latency and ordering, each run on a broker of its own that
// delays the service's produce requests (not the load generator's) by the latency.
func hotKey(o hotKeyOptions, service string) ([]hotKeyResult, error) {
	var results []hotKeyResult
	for _, latency := range o.latencies {
		for _, ordering := range o.orderings {
			r, err := hotKeyRun(o, service, ordering, latency)
			if err != nil {
				return results, fmt.Errorf("hot key, KAFKA_ORDERING=%s, produce latency %v: %w", ordering, latency, err)
			}
			fmt.Fprintf(os.Stderr, "hot key KAFKA_ORDERING=%-9s produce latency %4v: other keys p50 %v, p99 %v, max %v (%d); hot drain %.2f s; CPU %s a request; lost %d\n",
				ordering, latency, r.p50, r.p99, r.most, r.others, r.hotDrain.Seconds(), µs(r.cpuPerRequest), r.lost)
			results = append(results, r)
		}
	}
	return results, nil
}

func hotKeyRun(o hotKeyOptions, service, ordering string, latency time.Duration) (hotKeyResult, error) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		return hotKeyResult{}, err
	}
	defer cluster.Close()
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if !writesRequestsOnly(req.(*kmsg.ProduceRequest)) {
			cluster.SleepControl(func() { time.Sleep(latency) })
		}
		return nil, nil, false
	})
	brokers := cluster.ListenAddrs()
	const prefix = "hotkey"
	if err := topics(cluster, prefix, 1); err != nil {
		return hotKeyResult{}, err
	}
	producer, err := client(brokers)
	if err != nil {
		return hotKeyResult{}, err
	}
	defer producer.Close()
	reader, err := newAnswerReader(brokers, prefix, false)
	if err != nil {
		return hotKeyResult{}, err
	}
	defer reader.close()

	p, err := start(service, systemService, brokers, prefix, "KAFKA_ORDERING="+ordering)
	if err != nil {
		return hotKeyResult{}, err
	}
	// The service has joined its group once this is answered: its start-up is no one's wait,
	// and its CPU time counts from here.
	joined := requests(prefix+"-joined", 1, 1)
	if err := produce(producer, prefix, joined); err != nil {
		_ = p.stop()
		return hotKeyResult{}, err
	}
	if !reader.waitFor(joined, time.Minute) {
		_ = p.stop()
		return hotKeyResult{}, errors.New("the first request was not answered within a minute")
	}
	cpuBefore := p.cpu()
	// The hot backlog, written at once: one record key, each request its own transaction id so
	// that its answer can be told apart. The other keys come behind it in the partition.
	hot := requests(prefix+"-hot", o.records, 1)
	for i := range hot {
		hot[i].Key = "hot"
	}
	if err := produce(producer, prefix, hot); err != nil {
		_ = p.stop()
		return hotKeyResult{}, err
	}
	others := []request{}
	sent := map[string]time.Time{}
	hotDrained := make(chan bool, 1)
	go func() { hotDrained <- reader.waitFor(hot, 5*time.Minute) }()
	interval := time.Second / time.Duration(o.rate)
	began, drained := time.Now(), false
	for i := 0; !drained || time.Since(began) < o.minFor; i++ {
		select {
		case ok := <-hotDrained:
			if !ok {
				_ = p.stop()
				return hotKeyResult{}, errors.New("the hot backlog was not drained within 5 minutes")
			}
			drained = true
		default:
		}
		r := requests(prefix+"-other", i+1, 1)[i]
		others = append(others, r)
		sent[r.Tag] = time.Now()
		producer.Produce(context.Background(), record(prefix, r), nil)
		time.Sleep(time.Until(began.Add(time.Duration(i+1) * interval)))
	}
	reader.waitFor(others, time.Minute)
	cpu := p.cpu() - cpuBefore
	peak := p.peakRSS()
	stopErr := p.stop()

	r := hotKeyResult{ordering: ordering, latency: latency, others: len(others), peakRSS: peak,
		cpuPerRequest: cpu / time.Duration(len(hot)+len(others))}
	for _, reqs := range [][]request{hot, others} {
		t := reader.tally(reqs)
		r.lost, r.dups, r.wrong = r.lost+len(t.Missing), r.dups+t.Duplicates, r.wrong+len(t.Wrong)
	}
	var delays []time.Duration
	for tag, at := range reader.firstAnswerAt(others) {
		delays = append(delays, at.Sub(sent[tag]))
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	if len(delays) > 0 {
		r.p50, r.p99, r.most = delays[len(delays)/2], delays[len(delays)*99/100], delays[len(delays)-1]
	}
	first, last := reader.spanOf(hot)
	r.hotDrain = last.Sub(first)
	return r, stopErr
}

// renderHotKey writes the scenario's results as the Markdown of docs/performance.md's figures.
func renderHotKey(o hotKeyOptions, results []hotKeyResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured by `go run ./bench` (`task bench`) on %s, %s, load average %s at the end of the run. One partition; once the service has joined its group, %d requests of one record key written at once, then requests of other keys at %d/s behind them until that backlog is drained (at least %v); each run on an in-process kfake broker of its own that adds the latency to every produce request of the service; the service is the built binary with its defaults but KAFKA_ORDERING.\n\n",
		machine(), time.Now().UTC().Format("2006-01-02"), loadAverage(), o.records, o.rate, o.minFor)
	b.WriteString("Other keys' latency is from a request's send to its answer's read, by an independent client; the hot drain from the backlog's first answer to its last. CPU a request is the service process's CPU time (user and system) from the backlog's writing to the last answer, by the requests answered.\n\n")
	b.WriteString("| produce latency | KAFKA_ORDERING | other keys | their p50 | their p99 | their max | hot drain | CPU a request | peak RSS | lost | duplicates | wrong |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %v | %s | %d | %s | %s | %s | %.2f s | %s | %.1f MiB | %d | %d | %d |\n", r.latency, r.ordering, r.others,
			ms(r.p50), ms(r.p99), ms(r.most), r.hotDrain.Seconds(), µs(r.cpuPerRequest), mib(r.peakRSS), r.lost, r.dups, r.wrong)
	}
	return b.String()
}
